/**
 * Bytes that differ from the blob's Content-MD5 never stay in S3: a corruption
 * between Azure and S3 (simulated by flipping one byte of the read) fails the blob
 * with the reason, and no object is left, on both copy paths.
 */
import { Transform } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { BlobSource } from '../../lambdas/core/stores/types';
import { uploadBlob } from '../../lambdas/local/seed';
import { copyLocally, listCopies, newBucket, newContainer, openUploads, s3 } from '../helpers/stores';

const MiB = 1024 * 1024;

/** Flip one byte in every read of `name`, as a faulty network or disk might. */
function corrupting(name: string) {
  return (source: BlobSource): BlobSource => ({
    ...source,
    async read(blobName, etag, range) {
      const read = await source.read(blobName, etag, range);
      if (blobName !== name) return read;
      let flipped = false;
      const body = read.body.pipe(
        new Transform({
          transform(chunk: Buffer, _e, done) {
            if (!flipped && chunk.length > 0) {
              chunk = Buffer.from(chunk);
              chunk[0] ^= 0xff;
              flipped = true;
            }
            done(null, chunk);
          },
        }),
      );
      return { ...read, body };
    },
  });
}

describe('end-to-end integrity against Content-MD5', () => {
  const client = s3();

  it('fails a small blob whose bytes were corrupted on the way, leaving no object', async () => {
    const container = await newContainer();
    const bucket = await newBucket(client);
    await uploadBlob(container, { name: 'good.bin', size: 1000 });
    await uploadBlob(container, { name: 'bad.bin', size: 1000 });

    const result = await copyLocally(container, bucket, { wrapSource: corrupting('bad.bin') });

    expect(result.report.copied).toEqual(['good.bin']);
    expect(result.report.failed).toEqual([{ name: 'bad.bin', reason: expect.stringMatching(/not the blob's Content-MD5 .*(nothing was written|the copy was deleted)/) }]);
    expect(await listCopies(client, bucket)).toEqual(['good.bin']);
  });

  it('fails a large blob whose part was corrupted, deleting the completed object', async () => {
    const container = await newContainer();
    const bucket = await newBucket(client);
    await uploadBlob(container, { name: 'large.bin', size: 11 * MiB, singleShot: true });

    const result = await copyLocally(container, bucket, { largeBlobBytes: 6 * MiB, partBytes: 5 * MiB, wrapSource: corrupting('large.bin') });

    expect(result.report.copied).toEqual([]);
    expect(result.report.failed).toEqual([{ name: 'large.bin', reason: expect.stringMatching(/differs from the blob's Content-MD5 .*the copy was deleted/) }]);
    expect(await listCopies(client, bucket)).toEqual([]);
    expect(await openUploads(client, bucket)).toEqual([]);
  });
});
