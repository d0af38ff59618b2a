/**
 * Two fast stand-ins for the stores, for measuring the copier at volume (memory over
 * 200,000 blobs), where the emulators would set the time instead: Azurite spends
 * about 2.7 ms and moto about 7 ms of CPU per small blob here (bench/profile.ts),
 * so a copy of 200,000 would take them most of an hour; these answer in a small
 * fraction of that. They speak the same HTTP the copier sends to the real services
 * (nothing in the copier knows), and only as much of it as a copy uses:
 *
 * - a Blob service whose container `tiny-N` holds N generated blobs (no seeding: blob i's
 *   name, size, bytes and Content-MD5 follow from i): List Blobs pages with
 *   NextMarker, Get Blob (If-Match, x-ms-range), Get Blob Properties; auth is not
 *   checked.
 * - an S3 bucket in memory, path-style: PutObject (If-None-Match: *, If-Match;
 *   aws-chunked bodies), GetObject, HeadObject, DeleteObject, ListObjectsV2
 *   (prefix, start-after, continuation, max-keys, encoding-type=url), HeadBucket,
 *   CreateBucket. Objects outside .azs3copy-state/ keep their size and ETag, not
 *   their bytes.
 *
 * Run as its own process so its CPU stays out of the bench's event loop:
 *   node --import tsx bench/fast-stores.ts   (prints {"azure": URL, "s3": URL} and serves)
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export const FAST_ACCOUNT = 'devstoreaccount1';
/** The container `tiny-N` holds N blobs. */
export const fastContainer = (count: number) => `tiny-${count}`;
const LAST_MODIFIED = new Date('2024-01-02T03:04:05Z').toUTCString();
const POOL = createHash('sha512').update('pool').digest();
const BYTES = Buffer.concat(Array.from({ length: 8 }, (_, i) => createHash('sha512').update(`${i}`).digest()));

/** Blob i: 1-256 bytes, spread evenly and deterministically. */
export const tinySize = (i: number) => 1 + (((i * 2654435761) >>> 0) % 256);
export const tinyName = (i: number) => `tiny/${String(Math.floor(i / 1000)).padStart(4, '0')}/blob-${String(i).padStart(7, '0')}.bin`;
const bytesOf = (i: number) => BYTES.subarray(i % 256, (i % 256) + tinySize(i));
const etagOf = (i: number) => `"0x8DC${(POOL.readUInt32BE(i % 60) ^ i).toString(16).toUpperCase().padStart(12, '0')}"`;
const md5Of = (b: Buffer) => createHash('md5').update(b).digest('base64');

function indexOfName(name: string, count: number): number | undefined {
  const m = /^tiny\/\d{4}\/blob-(\d{7})\.bin$/.exec(name);
  const i = m ? Number(m[1]) : -1;
  return i >= 0 && i < count && tinyName(i) === name ? i : undefined;
}

const xmlEscape = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);

function send(res: ServerResponse, status: number, headers: Record<string, string | number>, body?: Buffer | string) {
  res.writeHead(status, { 'content-length': body === undefined ? 0 : Buffer.byteLength(body), ...headers });
  res.end(body);
}

function blobService() {
  const blobXml = (i: number) => {
    const body = bytesOf(i);
    return `<Blob><Name>${tinyName(i)}</Name><Properties><Creation-Time>${LAST_MODIFIED}</Creation-Time><Last-Modified>${LAST_MODIFIED}</Last-Modified>` +
      `<Etag>${etagOf(i).slice(1, -1)}</Etag><Content-Length>${body.length}</Content-Length><Content-Type>application/octet-stream</Content-Type>` +
      `<Content-MD5>${md5Of(body)}</Content-MD5><BlobType>BlockBlob</BlobType><AccessTier>Hot</AccessTier><AccessTierInferred>true</AccessTierInferred>` +
      '<LeaseStatus>unlocked</LeaseStatus><LeaseState>available</LeaseState><ServerEncrypted>true</ServerEncrypted></Properties><Metadata /></Blob>';
  };
  return (req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    const url = new URL(req.url!, 'http://x');
    const [, account, container, ...rest] = url.pathname.split('/');
    const common = { 'x-ms-version': '2024-11-04', 'x-ms-request-id': '0' };
    const count = Number(/^tiny-(\d+)$/.exec(container)?.[1] ?? -1);
    if (account !== FAST_ACCOUNT || count < 0) return send(res, 404, { ...common, 'x-ms-error-code': 'ContainerNotFound' });
    if (rest.length === 0) {
      if (url.searchParams.get('comp') !== 'list') return send(res, 200, common);
      const max = Math.min(Number(url.searchParams.get('maxresults') ?? 5000), 5000);
      const from = Number(url.searchParams.get('marker') || 0);
      const to = Math.min(from + max, count);
      const blobs: string[] = [];
      for (let i = from; i < to; i++) blobs.push(blobXml(i));
      const xml = `<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="http://127.0.0.1/${FAST_ACCOUNT}" ContainerName="${container}">` +
        `<MaxResults>${max}</MaxResults><Blobs>${blobs.join('')}</Blobs><NextMarker>${to < count ? to : ''}</NextMarker></EnumerationResults>`;
      return send(res, 200, { ...common, 'content-type': 'application/xml' }, xml);
    }
    const i = indexOfName(decodeURIComponent(rest.join('/')), count);
    if (i === undefined) return send(res, 404, { ...common, 'x-ms-error-code': 'BlobNotFound' });
    const body = bytesOf(i);
    const ifMatch = req.headers['if-match'];
    if (ifMatch && ifMatch !== etagOf(i)) return send(res, 412, { ...common, 'x-ms-error-code': 'ConditionNotMet' });
    const headers = {
      ...common, etag: etagOf(i), 'last-modified': LAST_MODIFIED, 'content-type': 'application/octet-stream', 'x-ms-blob-type': 'BlockBlob',
      'content-md5': md5Of(body),
    };
    if (req.method === 'HEAD') {
      res.writeHead(200, { ...headers, 'content-length': body.length });
      return res.end();
    }
    const range = /bytes=(\d+)-(\d*)/.exec(String(req.headers['x-ms-range'] ?? req.headers.range ?? ''));
    if (range) {
      const start = Number(range[1]);
      const end = range[2] ? Math.min(Number(range[2]), body.length - 1) : body.length - 1;
      const { 'content-md5': _, ...rangeHeaders } = headers;
      return send(res, 206, { ...rangeHeaders, 'x-ms-blob-content-md5': md5Of(body), 'content-range': `bytes ${start}-${end}/${body.length}` }, body.subarray(start, end + 1));
    }
    return send(res, 200, headers, body);
  };
}

interface S3Object {
  size: number;
  etag: string;
  lastModified: string;
  body?: Buffer;
}

/** An aws-chunked body's payload: `hex-size[;ext]\r\n bytes \r\n` ... `0\r\n` trailers. */
function unchunk(raw: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = raw.indexOf('\r\n', at);
    const size = parseInt(raw.subarray(at, eol).toString('latin1').split(';')[0], 16);
    if (!size) return Buffer.concat(parts);
    parts.push(raw.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}

function s3Service() {
  const buckets = new Map<string, Map<string, S3Object>>();
  const sorted = new Map<string, string[]>();
  const keysOf = (bucket: string) => {
    let keys = sorted.get(bucket);
    if (!keys) sorted.set(bucket, (keys = [...buckets.get(bucket)!.keys()].sort()));
    return keys;
  };
  const error = (res: ServerResponse, status: number, code: string) =>
    send(res, status, { 'content-type': 'application/xml' }, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${code}</Message></Error>`);
  const encode = (key: string, url: boolean) => (url ? key.split('/').map(encodeURIComponent).join('/') : xmlEscape(key));

  return async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const url = new URL(req.url!, 'http://x');
    const slash = url.pathname.indexOf('/', 1);
    const bucketName = decodeURIComponent(url.pathname.slice(1, slash < 0 ? undefined : slash));
    const key = slash < 0 ? '' : decodeURIComponent(url.pathname.slice(slash + 1));
    if (!key) {
      if (req.method === 'PUT') {
        if (!buckets.has(bucketName)) buckets.set(bucketName, new Map());
        return send(res, 200, {});
      }
      const bucket = buckets.get(bucketName);
      if (!bucket) return error(res, 404, 'NoSuchBucket');
      if (req.method === 'HEAD') return send(res, 200, {});
      const q = url.searchParams;
      const prefix = q.get('prefix') ?? '';
      const after = q.get('continuation-token') ?? q.get('start-after') ?? '';
      const max = Math.min(Number(q.get('max-keys') ?? 1000), 1000);
      const asUrl = q.get('encoding-type') === 'url';
      const keys = keysOf(bucketName);
      // First key after `after` (and at or after the prefix), by binary search over the sorted keys.
      // (Keys here are ASCII, where string order is S3's byte order.)
      const start = after > prefix ? after : prefix;
      let lo = 0;
      let hi = keys.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (keys[mid] < start || (keys[mid] === start && after > prefix)) lo = mid + 1;
        else hi = mid;
      }
      const contents: string[] = [];
      let i = lo;
      for (; i < keys.length && contents.length < max && keys[i].startsWith(prefix); i++) {
        const o = bucket.get(keys[i])!;
        contents.push(`<Contents><Key>${encode(keys[i], asUrl)}</Key><LastModified>${o.lastModified}</LastModified><ETag>${xmlEscape(o.etag)}</ETag><Size>${o.size}</Size><StorageClass>STANDARD</StorageClass></Contents>`);
      }
      const truncated = i < keys.length && keys[i].startsWith(prefix) && contents.length === max;
      const xml = `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>${bucketName}</Name><Prefix>${encode(prefix, asUrl)}</Prefix><KeyCount>${contents.length}</KeyCount>` +
        `<MaxKeys>${max}</MaxKeys>${asUrl ? '<EncodingType>url</EncodingType>' : ''}<IsTruncated>${truncated}</IsTruncated>${contents.join('')}` +
        `${truncated ? `<NextContinuationToken>${xmlEscape(keys[i - 1])}</NextContinuationToken>` : ''}</ListBucketResult>`;
      return send(res, 200, { 'content-type': 'application/xml' }, xml);
    }
    const bucket = buckets.get(bucketName);
    if (!bucket) return error(res, 404, 'NoSuchBucket');
    const current = bucket.get(key);
    if (req.method === 'PUT') {
      if (req.headers['if-none-match'] === '*' && current) return error(res, 412, 'PreconditionFailed');
      if (req.headers['if-match'] && req.headers['if-match'] !== current?.etag) return error(res, current ? 412 : 404, current ? 'PreconditionFailed' : 'NoSuchKey');
      const raw = Buffer.concat(chunks);
      const body = String(req.headers['content-encoding'] ?? '').includes('aws-chunked') ? unchunk(raw) : raw;
      const etag = `"${createHash('md5').update(body).digest('hex')}"`;
      if (!bucket.has(key)) sorted.delete(bucketName);
      bucket.set(key, { size: body.length, etag, lastModified: new Date().toISOString(), body: key.startsWith('.azs3copy-state/') ? body : undefined });
      return send(res, 200, { etag });
    }
    if (req.method === 'DELETE') {
      if (bucket.delete(key)) sorted.delete(bucketName);
      return send(res, 204, {});
    }
    if (!current) return req.method === 'HEAD' ? send(res, 404, {}) : error(res, 404, 'NoSuchKey');
    const headers = { etag: current.etag, 'last-modified': new Date(current.lastModified).toUTCString(), 'content-type': 'application/octet-stream' };
    if (req.method === 'HEAD') {
      res.writeHead(200, { ...headers, 'content-length': current.size });
      return res.end();
    }
    return send(res, 200, headers, current.body ?? Buffer.alloc(current.size));
  };
}

function listen(server: Server): Promise<number> {
  server.keepAliveTimeout = 30_000;
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

export async function startFastStores() {
  const azure = createServer(blobService());
  const s3Handler = s3Service();
  const s3 = createServer((req, res) => void s3Handler(req, res).catch((e) => send(res, 500, {}, String(e))));
  const [azurePort, s3Port] = await Promise.all([listen(azure), listen(s3)]);
  return {
    azure: `http://127.0.0.1:${azurePort}/${FAST_ACCOUNT}`,
    s3: `http://127.0.0.1:${s3Port}`,
    close: () => Promise.all([azure, s3].map((s) => new Promise((r) => (s.closeAllConnections(), s.close(r))))),
  };
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const stores = await startFastStores();
  process.stdout.write(JSON.stringify({ azure: stores.azure, s3: stores.s3 }) + '\n');
}
