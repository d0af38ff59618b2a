/**
 * Make blobs for demos, tests and benchmarks: deterministic pseudo-random bytes of
 * any size, streamed (never built whole in memory), with headers, metadata, tags,
 * tiers and every blob kind.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { BlobHTTPHeaders, ContainerClient } from '@azure/storage-blob';

const CHUNK = 1024 * 1024;

/** The same seed and size always give the same bytes (AES-CTR keystream: fast and incompressible). */
export function patternStream(seed: string, size: number, chunkBytes = CHUNK): Readable {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(chunkBytes);
  let left = size;
  return new Readable({
    highWaterMark: chunkBytes,
    read() {
      if (left <= 0) return void this.push(null);
      const n = Math.min(left, chunkBytes);
      left -= n;
      this.push(cipher.update(zeros.subarray(0, n)));
    },
  });
}

export async function patternBytes(seed: string, size: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of patternStream(seed, size)) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

export async function digestOf(stream: Readable | NodeJS.ReadableStream, algorithm = 'sha256'): Promise<{ digest: string; bytes: number }> {
  const hash = createHash(algorithm);
  let bytes = 0;
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { digest: hash.digest('hex'), bytes };
}

export interface BlobSpec {
  name: string;
  size: number;
  /** Seed of the bytes; the name by default. */
  seed?: string;
  kind?: 'block' | 'page' | 'append';
  headers?: BlobHTTPHeaders;
  metadata?: Record<string, string>;
  tags?: Record<string, string>;
  tier?: 'Hot' | 'Cool' | 'Archive';
  /**
   * Upload in one request, so Azure stores a Content-MD5 (true by default up to 64 MiB);
   * staged uploads have none, as in Azure.
   */
  singleShot?: boolean;
}

export async function uploadBlob(container: ContainerClient, spec: BlobSpec): Promise<void> {
  const seed = spec.seed ?? spec.name;
  const kind = spec.kind ?? 'block';
  const options = { blobHTTPHeaders: spec.headers, metadata: spec.metadata, tags: spec.tags };
  if (kind === 'page') {
    if (spec.size % 512 !== 0) throw new Error('a page blob is a whole number of 512-byte pages');
    const page = container.getPageBlobClient(spec.name);
    await page.create(spec.size, options);
    await writeChunks(seed, spec.size, 4 * CHUNK, (chunk, offset) => page.uploadPages(chunk, offset, chunk.length).then(() => undefined));
  } else if (kind === 'append') {
    const append = container.getAppendBlobClient(spec.name);
    await append.create(options);
    await writeChunks(seed, spec.size, 4 * CHUNK, (chunk) => append.appendBlock(chunk, chunk.length).then(() => undefined));
  } else {
    const block = container.getBlockBlobClient(spec.name);
    const singleShot = spec.singleShot ?? spec.size <= 64 * CHUNK;
    if (singleShot) {
      await block.upload(await patternBytes(seed, spec.size), spec.size, options);
    } else {
      await block.uploadStream(patternStream(seed, spec.size), 8 * CHUNK, 4, options);
    }
  }
  if (spec.tier) await container.getBlobClient(spec.name).setAccessTier(spec.tier);
}

async function writeChunks(seed: string, size: number, chunkBytes: number, write: (chunk: Buffer, offset: number) => Promise<void>) {
  let offset = 0;
  for await (const chunk of patternStream(seed, size, chunkBytes)) {
    await write(chunk as Buffer, offset);
    offset += (chunk as Buffer).length;
  }
}

/** A zero-byte directory marker, as accounts with a hierarchical namespace have. */
export async function uploadDirectoryMarker(container: ContainerClient, name: string): Promise<void> {
  await container.getBlockBlobClient(name).upload('', 0, { metadata: { hdi_isfolder: 'true' } });
}
