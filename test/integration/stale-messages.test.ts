/**
 * Messages that arrive late, or about a blob that has changed since, on the real
 * emulators: each of these lost or damaged a copy before its fix.
 * - A late large-blob message about an older version must not abort the upload of
 *   the newer one.
 * - A small blob that grew past the large-blob size after it was listed goes the
 *   multipart way, not as one PUT (which S3 refuses over 5 GiB).
 * - A part whose upload was aborted under it (the bucket's lifecycle rule, while the
 *   message waited in a dead-letter queue) plans the blob again, so the blob is
 *   still copied.
 */
import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../lambdas/core/log';
import { MESSAGE_VERSION, type LargeBlobMessage } from '../../lambdas/core/messages';
import { largefileInitializer } from '../../lambdas/core/stages/largefile-initializer';
import { azureSource } from '../../lambdas/core/stores/azure-source';
import { s3Sink } from '../../lambdas/core/stores/s3-sink';
import type { BlobSource, ObjectSink } from '../../lambdas/core/stores/types';
import { readManifest } from '../../lambdas/core/uploads';
import { digestOf, patternStream, uploadBlob } from '../../lambdas/local/seed';
import { runSettings, stageContext } from '../helpers/context';
import { copyLocally, emulators, expectExactCopies, expectNothingLeftOver, newBucket, newContainer, openUploads, s3, sourceOf } from '../helpers/stores';

const MiB = 1024 * 1024;

describe('late and stale messages', () => {
  it('a late message about an older version leaves the newer version\'s upload alone', async () => {
    const container = await newContainer();
    const bucket = await newBucket();
    const name = 'big.bin';
    await uploadBlob(container, { name, size: 11 * MiB, singleShot: false, seed: 'v1' });
    const source = azureSource(sourceOf(container));
    const sink = s3Sink({ bucket, endpoint: emulators().s3Endpoint }, s3());
    const settings = runSettings({ bucket, container: container.containerName, largeBlobBytes: 6 * MiB, partBytes: 5 * MiB });
    const { ctx, published } = stageContext({ source, sink, settings });
    ctx.log = createLogger({}, { write: () => undefined });
    const messageOf = async (): Promise<LargeBlobMessage> => {
      const props = await source.properties(name);
      return {
        v: MESSAGE_VERSION, kind: 'large-blob', runId: ctx.runId, run: settings, unit: 'u', replans: 0,
        blob: { name, etag: props.etag, size: props.size, lastModified: props.lastModified },
      };
    };
    const v1 = await messageOf();
    await largefileInitializer(ctx, v1);
    await uploadBlob(container, { name, size: 12 * MiB, singleShot: false, seed: 'v2' });
    const v2 = await messageOf();
    await largefileInitializer(ctx, v2);
    const current = (await readManifest(sink, name))!;
    expect(current.blob.etag).toBe(v2.blob.etag);

    published.length = 0;
    await largefileInitializer(ctx, v1); // the late one

    expect((await openUploads(s3(), bucket)).map((u) => u.UploadId)).toEqual([current.uploadId]);
    expect((await readManifest(sink, name))?.uploadId).toBe(current.uploadId);
    // It was taken for what it is: a message about a version gone, planned again as the current one.
    expect(published).toEqual([expect.objectContaining({ kind: 'large-blob', unit: 'u', replans: 1, blob: expect.objectContaining({ etag: v2.blob.etag }) })]);
  });

  it('copies a small blob that grew past the large-blob size after it was listed by the multipart path', async () => {
    const container = await newContainer();
    const bucket = await newBucket();
    await uploadBlob(container, { name: 'grows.bin', size: 1000, seed: 'small' });
    // Between the listing and the copy, the blob is rewritten at 13 MiB.
    let grown = false;
    const growing = (inner: BlobSource): BlobSource => ({
      ...inner,
      async read(name, etag, range) {
        if (name === 'grows.bin' && !grown) {
          grown = true;
          await uploadBlob(container, { name, size: 13 * MiB, singleShot: false, seed: 'large' });
        }
        return inner.read(name, etag, range);
      },
    });
    const result = await copyLocally(container, bucket, { largeBlobBytes: 6 * MiB, partBytes: 5 * MiB, wrapSource: growing });

    expect(result.report).toMatchObject({ state: 'complete', copied: ['grows.bin'], failed: [] });
    const copy = await s3().send(new HeadObjectCommand({ Bucket: bucket, Key: 'grows.bin' }));
    expect(copy.ContentLength).toBe(13 * MiB);
    expect(copy.ETag).toMatch(/-3"$/); // three parts: the multipart path
    const got = await digestOf((await s3().send(new GetObjectCommand({ Bucket: bucket, Key: 'grows.bin' }))).Body as NodeJS.ReadableStream);
    expect(got).toEqual(await digestOf(patternStream('large', 13 * MiB)));
    await expectNothingLeftOver(s3(), bucket);
  });

  it('plans a blob again when its upload was aborted under a waiting part, and copies it', async () => {
    const container = await newContainer();
    const bucket = await newBucket();
    const spec = { name: 'aborted-under.bin', size: 11 * MiB, singleShot: false };
    await uploadBlob(container, spec);
    // The first part to arrive finds its upload aborted, as the lifecycle rule would have done.
    let aborted = false;
    const aborting = (inner: ObjectSink): ObjectSink => ({
      ...inner,
      async uploadPart(key, uploadId, ...rest) {
        if (!aborted) {
          aborted = true;
          await inner.abort(key, uploadId);
        }
        return inner.uploadPart(key, uploadId, ...rest);
      },
    });
    const result = await copyLocally(container, bucket, { largeBlobBytes: 6 * MiB, partBytes: 5 * MiB, wrapSink: aborting });

    expect(aborted).toBe(true);
    expect(result.report).toMatchObject({ state: 'complete', copied: [spec.name], failed: [], outstanding: [] });
    await expectExactCopies(s3(), bucket, [spec]);
    await expectNothingLeftOver(s3(), bucket);
  });
});
