/**
 * A blob that changes while it is being copied is never copied as a mix of two
 * versions: the upload of the old version is abandoned and the current version
 * copied, or, if it never stops changing, the blob is reported failed.
 */
import { describe, expect, it } from 'vitest';
import type { ContainerClient } from '@azure/storage-blob';
import type { BlobSource } from '../../lambdas/core/stores/types';
import { digestOf, patternStream, uploadBlob } from '../../lambdas/local/seed';
import { copyLocally, expectNothingLeftOver, listCopies, newBucket, newContainer, objectDigest, openUploads, s3 } from '../helpers/stores';

const MiB = 1024 * 1024;
const options = { largeBlobBytes: 6 * MiB, partBytes: 5 * MiB };

/** A source that rewrites `name` in Azure just before the chosen reads reach it. */
function changingSource(container: ContainerClient, name: string, changeOnRead: (n: number, ranged: boolean) => boolean, newSize: number) {
  let reads = 0;
  let version = 1;
  // One rewrite at a time: concurrent staged uploads of one blob would clash in Azure itself.
  let writing = Promise.resolve();
  return {
    wrap: (source: BlobSource): BlobSource => ({
      ...source,
      async read(blobName, etag, range) {
        if (blobName === name && changeOnRead(++reads, range !== undefined)) {
          writing = writing.then(async () => {
            version++;
            await uploadBlob(container, { name, size: newSize, seed: `${name}#v${version}`, singleShot: false });
          });
          await writing;
        }
        return source.read(blobName, etag, range);
      },
    }),
    version: () => version,
  };
}

describe('a blob that changes mid-copy', () => {
  const client = s3();

  it('abandons the multipart upload of the old version and copies the new one whole', async () => {
    const container = await newContainer();
    const bucket = await newBucket(client);
    const name = 'changing/large.bin';
    await uploadBlob(container, { name, size: 16 * MiB, seed: `${name}#v1`, singleShot: false });
    // Change it as the second part is read: part 1 of the old version may already be in.
    const changing = changingSource(container, name, (n, ranged) => ranged && n === 2, 13 * MiB + 3);

    const result = await copyLocally(container, bucket, { ...options, wrapSource: changing.wrap });

    expect(result.report.copied).toEqual([name]);
    expect(result.report.failed).toEqual([]);
    const [got, want] = await Promise.all([
      objectDigest(client, bucket, name),
      digestOf(patternStream(`${name}#v${changing.version()}`, 13 * MiB + 3)),
    ]);
    expect(got).toEqual(want);
    expect(await openUploads(client, bucket)).toEqual([]);
    await expectNothingLeftOver(client, bucket);
  });

  it('copies the current version of a small blob that changed after it was listed', async () => {
    const container = await newContainer();
    const bucket = await newBucket(client);
    const name = 'changing/small.txt';
    await uploadBlob(container, { name, size: 1000, seed: `${name}#v1` });
    const changing = changingSource(container, name, (n) => n === 1, 2000);

    const result = await copyLocally(container, bucket, { ...options, wrapSource: changing.wrap });

    expect(result.report.copied).toEqual([name]);
    expect(await objectDigest(client, bucket, name)).toEqual(await digestOf(patternStream(`${name}#v2`, 2000)));
  });

  it('reports a blob that never stops changing as failed, leaving no upload open', async () => {
    const container = await newContainer();
    const bucket = await newBucket(client);
    const name = 'changing/restless.bin';
    await uploadBlob(container, { name, size: 12 * MiB, seed: `${name}#v1`, singleShot: false });
    const changing = changingSource(container, name, (_n, ranged) => ranged, 12 * MiB);

    const result = await copyLocally(container, bucket, { ...options, wrapSource: changing.wrap });

    expect(result.report.copied).toEqual([]);
    expect(result.report.failed).toEqual([{ name, reason: expect.stringMatching(/changed 4 times while it was being copied/) }]);
    expect(await listCopies(client, bucket)).toEqual([]);
    expect(await openUploads(client, bucket)).toEqual([]);
  });
});
