/**
 * Header values that are not ASCII. Node sends a header value as latin1 bytes,
 * while a SigV4 signer hashes the canonical request as UTF-8: a Content-Disposition
 * or metadata value with "é" (as Azure hands it over, its UTF-8 bytes read as
 * latin1) would be signed over other bytes than those sent, and real S3 refuses
 * the PUT with SignatureDoesNotMatch. A local server here checks the signature the
 * way S3 does, over the bytes that arrive, for the small-blob PUT and for the
 * SDK's requests alike.
 */
import { createHash, createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setEnv } from '../helpers/env';
import { s3Sink } from '../../lambdas/core/stores/s3-sink';

const SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';

interface Arrived {
  path: string;
  /** Each header's value as the bytes that arrived. */
  headers: Map<string, Buffer>;
  signatureValid: boolean;
}

/** Check a request's SigV4 signature over the bytes received, as S3 does. */
function verify(method: string, url: string, rawHeaders: string[]): Arrived {
  const headers = new Map<string, Buffer>();
  for (let i = 0; i < rawHeaders.length; i += 2) headers.set(rawHeaders[i].toLowerCase(), Buffer.from(rawHeaders[i + 1], 'latin1'));
  const auth = headers.get('authorization')!.toString('latin1');
  const [, scope, signed, signature] = /Credential=[^/]+\/([^,]+), SignedHeaders=([^,]+), Signature=([0-9a-f]+)/.exec(auth)!;
  const [path, query = ''] = url.split('?');
  const canonicalQuery = query.split('&').filter(Boolean).map((p) => (p.includes('=') ? p : `${p}=`)).sort().join('&');
  const parts: Buffer[] = [Buffer.from(`${method}\n${path}\n${canonicalQuery}\n`)];
  for (const name of signed.split(';')) {
    const value = Buffer.from(headers.get(name)!.toString('latin1').trim().replace(/\s+/g, ' '), 'latin1');
    parts.push(Buffer.from(`${name}:`), value, Buffer.from('\n'));
  }
  parts.push(Buffer.from(`\n${signed}\n${headers.get('x-amz-content-sha256')!.toString('latin1')}`));
  const date = headers.get('x-amz-date')!.toString('latin1');
  const toSign = `AWS4-HMAC-SHA256\n${date}\n${scope}\n${createHash('sha256').update(Buffer.concat(parts)).digest('hex')}`;
  const [day, region, service] = scope.split('/');
  const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();
  const key = hmac(hmac(hmac(hmac(`AWS4${SECRET}`, day), region), service), 'aws4_request');
  return { path, headers, signatureValid: createHmac('sha256', key).update(toSign).digest('hex') === signature };
}

let server: Server;
let endpoint: string;
const arrived: Arrived[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      arrived.push(verify(req.method!, req.url!, req.rawHeaders));
      const isCreate = req.method === 'POST' && req.url!.includes('uploads');
      res.writeHead(200, { 'content-type': 'application/xml' });
      res.end(isCreate ? '<InitiateMultipartUploadResult><Bucket>dest</Bucket><Key>k</Key><UploadId>up-1</UploadId></InitiateMultipartUploadResult>' : '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  restoreKeys = setEnv({ AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: SECRET });
});

afterAll(async () => {
  restoreKeys();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

let restoreKeys = () => {};

// As Node reads Azure's answer: the UTF-8 bytes of "Rapport é.pdf" and "Zoë", each byte a latin1 character.
const asRead = (text: string) => Buffer.from(text, 'utf8').toString('latin1');
const attributes = {
  contentType: 'application/pdf',
  contentDisposition: asRead('attachment; filename="Rapport é.pdf"'),
  metadata: { author: asRead('Zoë'), plain: 'ascii only' },
};
const encoded = (text: string) => `=?UTF-8?B?${Buffer.from(text, 'utf8').toString('base64')}?=`;

describe('non-ASCII header values', () => {
  it.each([
    ['the small-blob PUT', (sink: ReturnType<typeof s3Sink>) => sink.put('k', Buffer.from('data'), attributes, { length: 4 })],
    ['a streamed PUT (the SDK)', (sink: ReturnType<typeof s3Sink>) => sink.put('k', Readable.from([Buffer.from('data')]), attributes, { length: 4 })],
    ['a multipart upload\'s creation (the SDK)', (sink: ReturnType<typeof s3Sink>) => sink.createUpload('k', attributes)],
  ])('go as RFC 2047 encoded words, so %s is signed over the bytes sent', async (_what, send) => {
    arrived.length = 0;
    await send(s3Sink({ bucket: 'dest', endpoint }));
    expect(arrived).toHaveLength(1);
    const [request] = arrived;
    expect(request.signatureValid).toBe(true);
    expect(request.headers.get('content-disposition')!.toString('latin1')).toBe(encoded('attachment; filename="Rapport é.pdf"'));
    expect(request.headers.get('x-amz-meta-author')!.toString('latin1')).toBe(encoded('Zoë'));
    expect(request.headers.get('x-amz-meta-plain')!.toString('latin1')).toBe('ascii only');
  });
});
