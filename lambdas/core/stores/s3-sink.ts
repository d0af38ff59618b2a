/**
 * Amazon S3 (or any S3-compatible server) as an ObjectSink. Every write carries a
 * CRC32C that S3 checks on arrival, and a Content-MD5 when the source has one, so
 * bytes that differ from the source are refused by the store instead of stored.
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type StorageClass,
} from '@aws-sdk/client-s3';
import { Crc32c, crc32cBase64 } from '../crc32c';
import { ConfigError, codeOf, errorMessage, statusOf } from '../errors';
import { STATE_PREFIX } from '../keys';
import { unquotaedRetryStrategy } from './s3-retry';
import { httpExchange } from './http-exchange';
import { s3Putter } from './s3-put';
import type { ObjectAttributes, ObjectSink, PutOptions, UploadedPart } from './types';

export interface S3SinkOptions {
  bucket: string;
  /** An S3-compatible endpoint (implies path-style addressing). */
  endpoint?: string;
  region?: string;
  maxAttempts?: number;
  /** Sockets per host; enough for every part and blob in flight. */
  maxSockets?: number;
}

export function s3Client(options: Omit<S3SinkOptions, 'bucket'>): S3Client {
  const maxSockets = options.maxSockets ?? 64;
  // Bodies in memory go through s3Putter (unsigned payload, CRC32C in the header); a part goes to the SDK as a
  // stream, which it already signs as UNSIGNED-PAYLOAD.
  return new S3Client({
    region: options.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
    endpoint: options.endpoint,
    forcePathStyle: options.endpoint !== undefined,
    retryStrategy: unquotaedRetryStrategy({ maxAttempts: options.maxAttempts ?? 8 }),
    // The SDK otherwise writes warnings to the console; the stages log failures themselves.
    logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {} },
    // The SDK's CRC32C is byte-at-a-time JavaScript; ours is native where it loads, and 2-3 times faster JavaScript elsewhere.
    checksumAlgorithms: { CRC32C: Crc32c },
    requestHandler: {
      httpAgent: new HttpAgent({ keepAlive: true, maxSockets }),
      httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets }),
      connectionTimeout: 10_000,
      requestTimeout: 120_000,
    },
  });
}

/** S3's tagging header is a URL query string. */
function taggingHeader(tags: Record<string, string> | undefined): string | undefined {
  if (!tags || Object.keys(tags).length === 0) return undefined;
  return Object.entries(tags)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join('&');
}

/**
 * A header value as ASCII. Node sends header values as latin1 bytes, and a value read from Azure's headers
 * is the UTF-8 bytes of its text, one latin1 character each; but a SigV4 signer (ours and the SDK's) hashes
 * the value as UTF-8 text, so a value with a byte over 0x7F is signed over other bytes than it is sent as,
 * and S3 refuses the request. Such a value goes as an RFC 2047 encoded word of its UTF-8 bytes, the form S3
 * itself documents (and returns) for non-ASCII metadata.
 */
export function asciiHeaderValue(value: string): string;
export function asciiHeaderValue(value: string | undefined): string | undefined;
export function asciiHeaderValue(value: string | undefined): string | undefined {
  if (value === undefined || !/[^\x00-\x7f]/.test(value)) return value;
  // Characters beyond latin1 can only be text (from a listing's XML, say), never bytes read from a header.
  const bytes = /[^\u0000-\u00ff]/.test(value) ? Buffer.from(value, 'utf8') : Buffer.from(value, 'latin1');
  return `=?UTF-8?B?${bytes.toString('base64')}?=`;
}

function asciiMetadata(metadata: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(metadata).map(([k, v]) => [k, asciiHeaderValue(v)]));
}

function headerFields(attributes: ObjectAttributes) {
  return {
    ContentType: asciiHeaderValue(attributes.contentType),
    ContentEncoding: asciiHeaderValue(attributes.contentEncoding),
    ContentLanguage: asciiHeaderValue(attributes.contentLanguage),
    ContentDisposition: asciiHeaderValue(attributes.contentDisposition),
    CacheControl: asciiHeaderValue(attributes.cacheControl),
    Metadata: asciiMetadata(attributes.metadata),
    Tagging: taggingHeader(attributes.tags),
    StorageClass: attributes.storageClass as StorageClass | undefined,
  };
}

const isMissing = (error: unknown) => {
  const code = codeOf(error);
  return statusOf(error) === 404 || code === 'NoSuchUpload' || code === 'NotFound' || code === 'NoSuchKey';
};

/** The call's answer, or `fallback` when S3 says the key or the upload does not exist. */
async function orIfMissing<T, F>(call: Promise<T>, fallback: F): Promise<T | F> {
  try {
    return await call;
  } catch (error) {
    if (isMissing(error)) return fallback;
    throw refusedHead(error);
  }
}

/**
 * A HEAD answer has no body, so the SDK names a refusal "UnknownError" (403): say what it is, and what to allow,
 * keeping the status for whoever decides by it.
 */
function refusedHead(error: unknown): unknown {
  if (statusOf(error) !== 403 || codeOf(error) !== 'UnknownError') return error;
  const named = new Error('S3 refused the request (403 AccessDenied): allow s3:GetObject and s3:ListBucket on the bucket to the AWS identity the copy runs as', { cause: error });
  named.name = 'AccessDenied';
  Object.assign(named, { $metadata: (error as { $metadata?: unknown }).$metadata });
  return named;
}

/** PutObject's headers for a body sent by s3Putter (the SDK maps the same fields to the same headers). */
export function putHeaders(attributes: ObjectAttributes, put: PutOptions, checksumCrc32c: string): Record<string, string> {
  const headers: Record<string, string> = { 'x-amz-checksum-crc32c': checksumCrc32c, 'x-amz-sdk-checksum-algorithm': 'CRC32C' };
  const set = (name: string, value: string | undefined) => {
    if (value !== undefined) headers[name] = asciiHeaderValue(value);
  };
  set('content-md5', put.contentMd5);
  set('content-type', attributes.contentType);
  set('content-encoding', attributes.contentEncoding);
  set('content-language', attributes.contentLanguage);
  set('content-disposition', attributes.contentDisposition);
  set('cache-control', attributes.cacheControl);
  set('x-amz-tagging', taggingHeader(attributes.tags));
  set('x-amz-storage-class', attributes.storageClass);
  for (const [key, value] of Object.entries(attributes.metadata)) headers[`x-amz-meta-${key.toLowerCase()}`] = asciiHeaderValue(value);
  return headers;
}

export function s3Sink(options: S3SinkOptions, client: S3Client = s3Client(options)): ObjectSink {
  const Bucket = options.bucket;
  // Bodies in memory (small blobs) skip the SDK's layers: one signed request each (see s3-put.ts).
  const putter = s3Putter(client, httpExchange({ maxSockets: options.maxSockets ?? 64 }), { bucket: Bucket, maxAttempts: options.maxAttempts ?? 8 });

  const uploadExists = (key: string, uploadId: string) =>
    orIfMissing(client.send(new ListPartsCommand({ Bucket, Key: key, UploadId: uploadId, MaxParts: 1 })).then(() => true), false);

  return {
    async check() {
      try {
        await client.send(new HeadBucketCommand({ Bucket }));
      } catch (error) {
        throw explainBucketError(error, Bucket, options.endpoint);
      }
    },

    async put(key, body, attributes, put) {
      if (Buffer.isBuffer(body)) {
        return putter.put({ key, body, headers: putHeaders(attributes, put, put.checksumCrc32c ?? crc32cBase64(body)) });
      }
      const out = await client.send(
        new PutObjectCommand({
          Bucket,
          Key: key,
          Body: body,
          ContentLength: put.length,
          ContentMD5: put.contentMd5,
          ChecksumAlgorithm: 'CRC32C',
          // Computed while the body was read: sent as a header, so the SDK neither recomputes it nor streams a trailer.
          ChecksumCRC32C: put.checksumCrc32c,
          ...headerFields(attributes),
        }),
      );
      return { checksumCrc32c: out.ChecksumCRC32C };
    },

    async head(key) {
      // Checksum mode: the object's checksum too (a HEAD works on objects in every class, archived or not).
      const out = await orIfMissing(client.send(new HeadObjectCommand({ Bucket, Key: key, ChecksumMode: 'ENABLED' })), undefined);
      if (!out) return undefined;
      return {
        key,
        size: out.ContentLength ?? 0,
        lastModified: (out.LastModified ?? new Date(0)).toISOString(),
        metadata: out.Metadata ?? {},
        checksumCrc32c: out.ChecksumCRC32C,
        storageClass: out.StorageClass,
      };
    },

    async list(prefix, startAfter, maxKeys) {
      // Keys come URL-encoded: a key may hold characters XML 1.0 cannot carry (control characters), which S3
      // otherwise puts raw into the answer.
      const out = await client.send(
        new ListObjectsV2Command({ Bucket, Prefix: prefix, StartAfter: startAfter, MaxKeys: maxKeys, EncodingType: 'url' }),
      );
      return {
        objects: (out.Contents ?? []).map((o) => ({
          key: decodeListedKey(o.Key!),
          size: o.Size ?? 0,
          lastModified: (o.LastModified ?? new Date(0)).toISOString(),
          etag: o.ETag,
        })),
        truncated: out.IsTruncated === true,
      };
    },

    async read(key, range) {
      const Range = range ? `bytes=${range.start}-${range.end}` : undefined;
      const out = await client.send(new GetObjectCommand({ Bucket, Key: key, Range }));
      return out.Body as Readable;
    },

    async delete(key) {
      await client.send(new DeleteObjectCommand({ Bucket, Key: key }));
    },

    async deleteMany(keys) {
      if (keys.length === 0) return [];
      const out = await client.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true } }));
      return (out.Errors ?? []).map((e) => ({ key: e.Key!, reason: `${e.Code ?? 'Error'}: ${e.Message ?? ''}`.trim() }));
    },

    async deleteState(key) {
      await client.send(new DeleteObjectCommand({ Bucket, Key: stateKey(key) }));
    },

    async putText(key, text, contentType) {
      await client.send(new PutObjectCommand({ Bucket, Key: stateKey(key), Body: text, ContentType: contentType }));
    },

    async createUpload(key, attributes) {
      const out = await client.send(
        new CreateMultipartUploadCommand({ Bucket, Key: key, ChecksumAlgorithm: 'CRC32C', ...headerFields(attributes) }),
      );
      return out.UploadId!;
    },

    async uploadPart(key, uploadId, partNumber, body, length, checksumCrc32c) {
      const out = await client.send(
        new UploadPartCommand({
          Bucket,
          Key: key,
          UploadId: uploadId,
          PartNumber: partNumber,
          // A part in memory still goes as a stream: the SDK does not retry a streamed request itself, so a 5xx
          // is looked into below (the upload may be gone) before the stage retries, rather than retried blindly
          // for a minute. With its CRC32C in the header it goes as a plain body, unsigned, without aws-chunked.
          Body: Buffer.isBuffer(body) ? Readable.from([body], { objectMode: false }) : body,
          ContentLength: length,
          ChecksumAlgorithm: 'CRC32C',
          ChecksumCRC32C: checksumCrc32c,
        }),
      ).catch(async (error: unknown) => {
        // Some servers answer a part for a finished upload with a 500, not NoSuchUpload: look before retrying.
        if ((statusOf(error) ?? 0) >= 500 && !(await uploadExists(key, uploadId))) {
          throw Object.assign(new Error(`upload ${uploadId} no longer exists`, { cause: error }), { name: 'NoSuchUpload' });
        }
        throw error;
      });
      return { partNumber, etag: out.ETag!, size: length, checksumCrc32c: out.ChecksumCRC32C };
    },

    async listParts(key, uploadId, stopEarly) {
      const parts: UploadedPart[] = [];
      let marker: string | undefined;
      for (;;) {
        const out = await orIfMissing(
          client.send(new ListPartsCommand({ Bucket, Key: key, UploadId: uploadId, PartNumberMarker: marker, MaxParts: 1000 })),
          undefined,
        );
        if (!out) return undefined;
        for (const p of out.Parts ?? []) {
          parts.push({ partNumber: p.PartNumber!, etag: p.ETag!, size: p.Size ?? 0, checksumCrc32c: p.ChecksumCRC32C });
        }
        if (!out.IsTruncated) return parts;
        if (stopEarly?.(parts)) return parts;
        marker = out.NextPartNumberMarker;
      }
    },

    async listUploads(key) {
      const uploads: { uploadId: string; initiated?: string }[] = [];
      let keyMarker: string | undefined;
      let uploadIdMarker: string | undefined;
      for (;;) {
        const out = await client.send(
          new ListMultipartUploadsCommand({ Bucket, Prefix: key, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }),
        );
        for (const u of out.Uploads ?? []) {
          if (u.Key === key) uploads.push({ uploadId: u.UploadId!, initiated: u.Initiated?.toISOString() });
        }
        if (!out.IsTruncated) return uploads;
        keyMarker = out.NextKeyMarker;
        uploadIdMarker = out.NextUploadIdMarker;
      }
    },

    async complete(key, uploadId, parts) {
      const completion = client.send(
        new CompleteMultipartUploadCommand({
          Bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: {
            Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag, ChecksumCRC32C: p.checksumCrc32c })),
          },
        }),
      );
      return orIfMissing(completion.then(() => 'completed' as const), 'missing' as const);
    },

    async abort(key, uploadId) {
      await orIfMissing(client.send(new AbortMultipartUploadCommand({ Bucket, Key: key, UploadId: uploadId })), undefined);
    },

    async getJson<T>(key: string) {
      const out = await orIfMissing(client.send(new GetObjectCommand({ Bucket, Key: stateKey(key) })), undefined);
      return out ? (JSON.parse(await out.Body!.transformToString('utf8')) as T) : undefined;
    },

    async putJson(key, value, opts) {
      try {
        await client.send(
          new PutObjectCommand({
            Bucket,
            Key: stateKey(key),
            Body: JSON.stringify(value),
            ContentType: 'application/json',
            IfNoneMatch: opts?.ifAbsent ? '*' : undefined,
          }),
        );
        return true;
      } catch (error) {
        if (opts?.ifAbsent && (statusOf(error) === 412 || codeOf(error) === 'PreconditionFailed')) return false;
        throw error;
      }
    },
  };
}

/** A key from a listing with EncodingType=url: percent-encoded, a space possibly as '+' (a real '+' is %2B). */
export function decodeListedKey(key: string): string {
  return decodeURIComponent(key.replace(/\+/g, '%20'));
}

/** State objects live under the state prefix and nowhere else (their grants say so too). */
function stateKey(key: string): string {
  if (!key.startsWith(STATE_PREFIX)) throw new Error(`state object ${key} is not under ${STATE_PREFIX}`);
  return key;
}

export function explainBucketError(error: unknown, bucket: string, endpoint?: string): unknown {
  const status = statusOf(error);
  const code = codeOf(error);
  if (status === 404 || code === 'NoSuchBucket' || code === 'NotFound') {
    return new ConfigError(`S3 bucket "${bucket}" does not exist: create it, or check the bucket name`);
  }
  if (status === 403 || code === 'AccessDenied' || code === 'Forbidden') {
    return new ConfigError(`access to S3 bucket "${bucket}" is denied: check the AWS credentials and allow s3:PutObject and s3:ListBucket on it`);
  }
  if (status === 301 || code === 'PermanentRedirect') {
    return new ConfigError(`S3 bucket "${bucket}" is in another region: set AWS_REGION to the bucket's region`);
  }
  if (code === 'CredentialsProviderError') {
    return new ConfigError('no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)');
  }
  const message = errorMessage(error);
  if (/ECONNREFUSED|ENOTFOUND|EAI_AGAIN|connect/i.test(`${code} ${message}`)) {
    return new ConfigError(`cannot reach S3${endpoint ? ` at ${endpoint}` : ''} (${code ?? message}): check the endpoint and that the server is running`);
  }
  return error;
}
