/**
 * The whole chain against Azurite and moto: every name, size, kind and tier, with
 * duplicate deliveries, compared byte for byte, header for header.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { GetObjectTaggingCommand } from '@aws-sdk/client-s3';
import type { ContainerClient } from '@azure/storage-blob';
import { SOURCE_META } from '../../lambdas/core/attributes';
import { STATE_PREFIX } from '../../lambdas/core/keys';
import type { LocalRunResult } from '../../lambdas/local/runner';
import { digestOf, patternStream, uploadBlob, uploadDirectoryMarker, type BlobSpec } from '../../lambdas/local/seed';
import { copyLocally, expectNothingLeftOver, head, listKeys, newBucket, newContainer, objectDigest, openUploads, s3 } from '../helpers/stores';

const MiB = 1024 * 1024;
const LARGE = 6 * MiB; // threshold for the multipart path in this test
const PART = 5 * MiB; // the smallest part S3 allows

const NAMES = [
  'plain.txt',
  'with space.txt',
  'plus+sign.txt',
  'percent%25literal%zz.txt',
  'hash#and?question.txt',
  "quote'single.txt",
  'quote"double.txt',
  'ünïcödé/日本語/😀.txt',
  '.leading-dot',
  ' leading space',
  'trailing space ',
  'a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/deep.txt',
  'double//slash.txt',
  'ampersand&equals=.txt',
  'tab\tchar.txt',
];

const SIZES: BlobSpec[] = [
  { name: 'size/zero', size: 0 },
  { name: 'size/one', size: 1 },
  { name: 'size/below-threshold', size: LARGE - 1 },
  { name: 'size/at-threshold', size: LARGE, singleShot: false },
  { name: 'size/above-threshold', size: LARGE + 1, singleShot: false },
  { name: 'size/two-whole-parts', size: 2 * PART + 0, singleShot: false },
  { name: 'size/two-parts-and-a-byte', size: 2 * PART + 1, singleShot: false },
  { name: 'size/three-parts-less-a-byte', size: 3 * PART - 1, singleShot: false },
  // Single-shot uploads carry a Content-MD5: the large path checks the finished object against it.
  { name: 'size/large-with-md5', size: LARGE + 12_345, singleShot: true },
];

const KINDS: BlobSpec[] = [
  { name: 'kind/page.vhd', size: 512 * 40, kind: 'page' },
  { name: 'kind/append.log', size: 70_001, kind: 'append' },
  { name: 'kind/page-large.vhd', size: 2 * PART + 512, kind: 'page' },
];

const HEADERS: BlobSpec = {
  name: 'headers/all.html',
  size: 2048,
  headers: {
    blobContentType: 'text/html; charset=utf-8',
    blobContentEncoding: 'identity',
    blobContentLanguage: 'en-GB',
    blobContentDisposition: 'attachment; filename="all.html"',
    blobCacheControl: 'public, max-age=600',
  },
  metadata: { Owner: 'finance', retention: '7y' },
  tags: { project: 'migration', 'cost center': 'a b/c' },
};

const LARGE_HEADERS: BlobSpec = { ...HEADERS, name: 'headers/large.bin', size: LARGE + 7, singleShot: false };

const ARCHIVED: BlobSpec = { name: 'tier/archived.bin', size: 100, tier: 'Archive' };
const COOL: BlobSpec = { name: 'tier/cool.bin', size: 100, tier: 'Cool' };
const TOO_LONG: BlobSpec = { name: `long/${'é'.repeat(510)}`, size: 5 }; // 5 + 1020 bytes of UTF-8
const LONGEST_OK: BlobSpec = { name: `long/${'x'.repeat(1019)}`, size: 5 }; // exactly 1024 bytes

const COPIED: BlobSpec[] = [
  ...NAMES.map((name, i) => ({ name: `names/${name}`, size: 10 + i })),
  ...SIZES, ...KINDS, HEADERS, LARGE_HEADERS, COOL, LONGEST_OK,
];

describe('the copy chain, end to end', () => {
  const client = s3();
  let container: ContainerClient;
  let bucket: string;
  let result: LocalRunResult;

  beforeAll(async () => {
    container = await newContainer();
    bucket = await newBucket(client);
    for (const spec of [...COPIED, ARCHIVED, TOO_LONG]) await uploadBlob(container, spec);
    await uploadDirectoryMarker(container, 'names');
    // Every message is delivered twice: the stages must be idempotent.
    result = await copyLocally(container, bucket, {
      largeBlobBytes: LARGE, partBytes: PART, bus: { duplicateRate: 1, retryDelayMs: () => 10 },
    });
  });

  it('copies every copyable blob and reports each of the rest with its reason', () => {
    expect(result.report.copied.sort()).toEqual(COPIED.map((b) => b.name).sort());
    expect(result.report.skipped).toEqual([
      { name: 'names', reason: expect.stringMatching(/directory marker/) },
      { name: ARCHIVED.name, reason: expect.stringMatching(/^archived/) },
    ]);
    expect(result.report.failed).toEqual([{ name: TOO_LONG.name, reason: expect.stringMatching(/1025 bytes.*1024/) }]);
    expect(result.report.bytes).toBe(COPIED.reduce((n, b) => n + b.size, 0));
    expect(result.deadLetters).toEqual([]);
    expect(result.bus.duplicated).toBeGreaterThan(0);
  });

  it('writes the exact bytes of every blob under its exact name', async () => {
    const keys = (await listKeys(client, bucket)).filter((k) => !k.startsWith(STATE_PREFIX));
    expect(keys.sort()).toEqual(COPIED.map((b) => b.name).sort());
    for (const spec of COPIED) {
      const [got, want] = await Promise.all([objectDigest(client, bucket, spec.name), digestOf(patternStream(spec.name, spec.size))]);
      expect({ name: spec.name, ...got }).toEqual({ name: spec.name, ...want });
    }
  });

  it('carries the five content headers, metadata, tags and the source identity', async () => {
    for (const spec of [HEADERS, LARGE_HEADERS]) {
      const object = await head(client, bucket, spec.name);
      expect(object.ContentType).toBe('text/html; charset=utf-8');
      expect(object.ContentEncoding).toBe('identity');
      expect(object.ContentLanguage).toBe('en-GB');
      expect(object.ContentDisposition).toBe('attachment; filename="all.html"');
      expect(object.CacheControl).toBe('public, max-age=600');
      const props = await container.getBlobClient(spec.name).getProperties();
      expect(object.Metadata).toEqual({
        owner: 'finance',
        retention: '7y',
        [SOURCE_META.etag]: props.etag,
        [SOURCE_META.lastModified]: props.lastModified!.toISOString(),
        [SOURCE_META.size]: String(spec.size),
      });
      const tags = await client.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: spec.name }));
      expect(Object.fromEntries(tags.TagSet!.map((t) => [t.Key, t.Value]))).toEqual(spec.tags);
    }
  });

  it('leaves no multipart upload open and no upload manifest behind', async () => {
    expect(await openUploads(client, bucket)).toEqual([]);
    await expectNothingLeftOver(client, bucket);
  });
});
