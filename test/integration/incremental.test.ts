/**
 * A re-run over unchanged data copies nothing and costs listings, not a request per
 * blob; a changed blob is copied again; begindate filters on top.
 */
import { describe, expect, it } from 'vitest';
import type { ObjectSink } from '../../lambdas/core/stores/types';
import { digestOf, patternStream, uploadBlob } from '../../lambdas/local/seed';
import { copyLocally, newBucket, newContainer, objectDigest, s3 } from '../helpers/stores';

const MiB = 1024 * 1024;

/** Count every call the stages make to the sink, by method. */
function countingSink() {
  const calls: Record<string, number> = {};
  return {
    calls,
    wrap: (sink: ObjectSink): ObjectSink =>
      Object.fromEntries(
        Object.entries(sink).map(([method, fn]) => [
          method,
          (...args: unknown[]) => {
            calls[method] = (calls[method] ?? 0) + 1;
            return (fn as (...a: unknown[]) => unknown)(...args);
          },
        ]),
      ) as unknown as ObjectSink,
  };
}

describe('incremental runs', () => {
  const client = s3();
  const options = { largeBlobBytes: 6 * MiB, partBytes: 5 * MiB };

  it('copies nothing again when nothing changed, and only what changed when something did', async () => {
    const container = await newContainer();
    const bucket = await newBucket(client);
    const small = Array.from({ length: 30 }, (_, i) => ({ name: `data/${String(i).padStart(2, '0')}.bin`, size: 100 + i }));
    for (const spec of small) await uploadBlob(container, spec);
    await uploadBlob(container, { name: 'data/large.bin', size: 7 * MiB, singleShot: false });

    const first = await copyLocally(container, bucket, options);
    expect(first.report.copied).toHaveLength(31);

    const counter = countingSink();
    const again = await copyLocally(container, bucket, { ...options, wrapSink: counter.wrap });
    expect(again.report).toMatchObject({ copied: [], skipped: [], failed: [], bytes: 0, unchanged: 31, listed: 31 });
    // Single-shot blobs carry an MD5 that matches S3's ETag: settled by the listing alone.
    // The multipart copy was written moments ago, inside the copy window: one HEAD settles it.
    // The one write is the run's pointer to its state, beside its report (the run's state has its own requests).
    expect(counter.calls).toEqual({ check: 1, putJson: 1, list: 1, head: 1 });

    await uploadBlob(container, { name: 'data/07.bin', size: 5000, seed: 'changed' });
    const third = await copyLocally(container, bucket, options);
    expect(third.report).toMatchObject({ copied: ['data/07.bin'], unchanged: 30, bytes: 5000 });
    expect(await objectDigest(client, bucket, 'data/07.bin')).toEqual(await digestOf(patternStream('changed', 5000)));
  });

  it('copies only blobs modified after begindate', async () => {
    const container = await newContainer();
    const bucket = await newBucket(client);
    await uploadBlob(container, { name: 'old.txt', size: 10 });
    const props = await container.getBlobClient('old.txt').getProperties();
    // Azure's last-modified has one-second resolution: make sure the next blob is later.
    await new Promise((r) => setTimeout(r, 1100));
    await uploadBlob(container, { name: 'new.txt', size: 10 });

    const result = await copyLocally(container, bucket, { ...options, beginDate: props.lastModified!.toISOString() });

    expect(result.report).toMatchObject({ copied: ['new.txt'], beforeBeginDate: 1, skipped: [], failed: [] });
  });
});
