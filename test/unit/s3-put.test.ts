/**
 * The small-blob PUT, sent without the SDK's layers, must be the same request the
 * SDK would send: same host, same path for every odd key, signed for the same
 * region and service, with the same headers for the same attributes. Both are sent
 * to one local server that records what arrives.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setEnv } from '../helpers/env';
import { crc32cBase64 } from '../../lambdas/core/crc32c';
import { httpExchange } from '../../lambdas/core/stores/http-exchange';
import { encodeKeyPath, resolveTarget, s3Putter } from '../../lambdas/core/stores/s3-put';
import { putHeaders, s3Client } from '../../lambdas/core/stores/s3-sink';
import { sigV4Signer } from '../../lambdas/core/stores/sigv4';
import { SignatureV4 } from '@smithy/signature-v4';
import type { ChecksumConstructor } from '@smithy/types';

/** The hash the S3 client gives its own signer. */
const Sha256 = new S3Client({ region: 'us-east-1' }).config.sha256 as ChecksumConstructor;

interface Seen {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

const KEYS = [
  'plain.bin',
  'dir/sub/file name with spaces.txt',
  "odd +%#?'\"!*()~[]{}$&=;:@,.bin",
  'ünïcødé/日本語/😀.dat',
  ' leading space/.hidden',
  'a//double/slash/',
  'tab\there',
];

let server: Server;
let endpoint: string;
const seen: Seen[] = [];
let answer: { status: number; body: string } = { status: 200, body: '' };

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method!, path: req.url!, headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(answer.status, { 'x-amz-checksum-crc32c': String(req.headers['x-amz-checksum-crc32c'] ?? '') });
      res.end(answer.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  restoreKeys = setEnv({ AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' });
});

afterAll(async () => {
  restoreKeys();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

let restoreKeys = () => {};

const body = Buffer.from('the bytes of a small blob');
const attributes = {
  contentType: 'text/plain; charset=utf-8',
  contentEncoding: 'gzip',
  contentLanguage: 'en-GB',
  contentDisposition: 'attachment; filename="a b.txt"',
  cacheControl: 'max-age=60',
  metadata: { owner: 'data-team', 'azs3copy-source-etag': '"0x8DC"' },
  tags: { project: 'migration one', 'cost/centre': '42&7' },
};

async function viaSdk(key: string): Promise<Seen> {
  const client = s3Client({ endpoint });
  await client.send(new PutObjectCommand({
    Bucket: 'dest', Key: key, Body: body, ContentLength: body.length, ContentMD5: 'q83vEjRWeJA=',
    ChecksumAlgorithm: 'CRC32C', ChecksumCRC32C: crc32cBase64(body),
    ContentType: attributes.contentType, ContentEncoding: attributes.contentEncoding, ContentLanguage: attributes.contentLanguage,
    ContentDisposition: attributes.contentDisposition, CacheControl: attributes.cacheControl, Metadata: attributes.metadata,
    Tagging: 'project=migration%20one&cost%2Fcentre=42%267',
  }));
  client.destroy();
  return seen.pop()!;
}

async function viaPutter(key: string): Promise<Seen> {
  const client = s3Client({ endpoint });
  const exchange = httpExchange();
  await s3Putter(client, exchange, { bucket: 'dest' }).put({
    key, body, headers: putHeaders(attributes, { length: body.length, contentMd5: 'q83vEjRWeJA=' }, crc32cBase64(body)),
  });
  exchange.destroy();
  client.destroy();
  return seen.pop()!;
}

/** `AWS4-HMAC-SHA256 Credential=AKID/20261123/us-east-1/s3/aws4_request, ...`: the scope, without the date. */
const scopeOf = (auth: unknown) => /Credential=([^/]+)\/\d{8}\/([^,]+),/.exec(String(auth))?.slice(1);

describe('SigV4 for the small-blob PUT', () => {
  const date = new Date('2026-11-23T06:15:30.123Z');
  const cases: { path: string; headers: Record<string, string>; sessionToken?: string; region: string }[] = [
    { path: '/dest/plain.bin', region: 'us-east-1', headers: { host: 'dest.s3.us-east-1.amazonaws.com', 'content-length': '25', 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } },
    {
      path: `/${encodeKeyPath("dir/odd +%#?'\"!*()~ ünï 😀.bin")}`,
      region: 'eu-west-1',
      sessionToken: 'FQoGZXIvYXdzEXAMPLE//TOKEN==',
      headers: {
        host: 'my-bucket.s3.eu-west-1.amazonaws.com', 'content-length': '1048576', 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD',
        'content-md5': 'q83vEjRWeJA=', 'x-amz-checksum-crc32c': 'yZRlqg==', 'x-amz-sdk-checksum-algorithm': 'CRC32C',
        'content-type': 'text/plain;  charset=utf-8', 'cache-control': 'max-age=60', 'content-disposition': ' attachment; filename="a\tb.txt" ',
        'x-amz-meta-owner': 'data   team', 'x-amz-meta-azs3copy-source-etag': '"0x8DC"', 'x-amz-tagging': 'a=b&c%2Fd=e',
      },
    },
  ];
  it.each(cases)('signs exactly as @smithy/signature-v4 does (%#)', async ({ path, headers, sessionToken, region }) => {
    const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', sessionToken };
    const reference = await new SignatureV4({ service: 's3', region, credentials, sha256: Sha256, uriEscapePath: false, applyChecksum: false })
      .sign({ method: 'PUT', protocol: 'https:', hostname: headers.host, path, query: {}, headers: { ...headers } }, { signingDate: date });
    const ours = sigV4Signer('s3', region)('PUT', path, headers, credentials, date);
    expect(ours.authorization).toBe(reference.headers.authorization);
    expect(ours['x-amz-date']).toBe(reference.headers['x-amz-date']);
    expect(ours['x-amz-security-token']).toBe(reference.headers['x-amz-security-token']);
    // The key is kept for the day: a second request signs alike.
    const signer = sigV4Signer('s3', region);
    signer('PUT', '/other', headers, credentials, date);
    expect(signer('PUT', path, headers, credentials, date).authorization).toBe(reference.headers.authorization);
  });
});

describe('the small-blob PUT without the SDK', () => {
  it.each(KEYS)('sends the path, host, headers and body the SDK sends for %j', async (key) => {
    const sdk = await viaSdk(key);
    const ours = await viaPutter(key);
    expect(ours.method).toBe('PUT');
    // The SDK adds ?x-id=PutObject, a marker S3 ignores.
    expect(ours.path).toBe(sdk.path.replace(/\?x-id=PutObject$/, ''));
    expect(ours.path).toBe(`/dest/${encodeKeyPath(key)}`);
    expect(ours.body.equals(body)).toBe(true);
    expect(scopeOf(ours.headers.authorization)).toEqual(scopeOf(sdk.headers.authorization));
    for (const name of [
      'host', 'content-length', 'content-md5', 'content-type', 'content-encoding', 'content-language', 'content-disposition',
      'cache-control', 'x-amz-meta-owner', 'x-amz-meta-azs3copy-source-etag', 'x-amz-tagging', 'x-amz-checksum-crc32c',
    ]) {
      expect([name, ours.headers[name]]).toEqual([name, sdk.headers[name]]);
    }
    expect(ours.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
    expect(String(ours.headers.authorization)).toMatch(/SignedHeaders=[^,]*host[^,]*x-amz-checksum-crc32c[^,]*x-amz-content-sha256;x-amz-date/);
  });

  it('signs with a session token when the credentials have one', async () => {
    process.env.AWS_SESSION_TOKEN = 'FQoGZXIvYXdzEXAMPLETOKEN';
    try {
      const ours = await viaPutter('k');
      expect(ours.headers['x-amz-security-token']).toBe('FQoGZXIvYXdzEXAMPLETOKEN');
      expect(String(ours.headers.authorization)).toContain('x-amz-security-token');
    } finally {
      delete process.env.AWS_SESSION_TOKEN;
    }
  });

  it('turns an S3 error into one with its status and code, and retries 503 SlowDown', async () => {
    answer = { status: 403, body: '<?xml version="1.0"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>' };
    try {
      await expect(viaPutter('denied')).rejects.toMatchObject({ code: 'AccessDenied', statusCode: 403, message: 'Access Denied' });
      expect(seen.splice(0)).toHaveLength(1); // a 403 is not retried
      let calls = 0;
      const flaky = createServer((req, res) => {
        req.resume();
        req.on('end', () => {
          calls++;
          if (calls < 3) res.writeHead(503).end('<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>');
          else res.writeHead(200).end();
        });
      });
      await new Promise<void>((resolve) => flaky.listen(0, '127.0.0.1', resolve));
      const client = s3Client({ endpoint: `http://127.0.0.1:${(flaky.address() as AddressInfo).port}` });
      const exchange = httpExchange();
      await s3Putter(client, exchange, { bucket: 'dest' }).put({ key: 'k', body, headers: {} });
      expect(calls).toBe(3);
      exchange.destroy();
      client.destroy();
      await new Promise<void>((resolve) => flaky.close(() => resolve()));
    } finally {
      answer = { status: 200, body: '' };
    }
  });

  it('resolves the endpoint with the SDK rules: virtual-hosted in AWS, path-style for dotted buckets and custom endpoints', async () => {
    const target = async (bucket: string, region: string, custom?: string) => {
      const client = new S3Client({ region, endpoint: custom, forcePathStyle: custom !== undefined });
      const t = await resolveTarget(client, bucket);
      client.destroy();
      return { host: t.origin.host, protocol: t.origin.protocol, basePath: t.basePath, region: t.region };
    };
    expect(await target('my-bucket', 'eu-west-1')).toEqual({ host: 'my-bucket.s3.eu-west-1.amazonaws.com', protocol: 'https:', basePath: '', region: 'eu-west-1' });
    expect(await target('my.bucket', 'us-east-1')).toEqual({ host: 's3.us-east-1.amazonaws.com', protocol: 'https:', basePath: '/my.bucket', region: 'us-east-1' });
    expect(await target('dest', 'us-east-1', 'http://127.0.0.1:9000')).toEqual({ host: '127.0.0.1:9000', protocol: 'http:', basePath: '/dest', region: 'us-east-1' });
  });

  it('takes the endpoint from AWS_ENDPOINT_URL when the client is given none, as the SDK does', async () => {
    const saved = process.env.AWS_ENDPOINT_URL;
    process.env.AWS_ENDPOINT_URL = 'http://127.0.0.1:9001';
    const client = new S3Client({ region: 'eu-west-1' });
    try {
      const t = await resolveTarget(client, 'dest');
      expect({ host: t.origin.host, basePath: t.basePath }).toEqual({ host: '127.0.0.1:9001', basePath: '/dest' });
    } finally {
      client.destroy();
      if (saved === undefined) delete process.env.AWS_ENDPOINT_URL;
      else process.env.AWS_ENDPOINT_URL = saved;
    }
  });
});
