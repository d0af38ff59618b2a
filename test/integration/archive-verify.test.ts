/**
 * A multipart copy into a class S3 cannot read back without a restore (DEEP_ARCHIVE,
 * GLACIER) is verified from the source: the blob is read again from Azure for its MD5
 * and for the composite CRC32C of its parts, which S3 (moto, through its wrapper)
 * computed from the bytes it stores. Checked here end to end: through the command line,
 * with one class or by the blob's tier, the report counts the copies verified so; a
 * good copy is verified without a read of the copy while a GLACIER_IR one in the same
 * run is still read back; a wrong Content-MD5 and a part whose bytes in S3 differ from
 * the blob's (sent with the CRC32C of the altered bytes, so S3 takes it) each fail the
 * blob with the check that failed and leave no object; a blob changed after its copy
 * was completed, before the check read it, has its copy deleted and its new version
 * copied and checked; and a check that outlasts an invocation goes on in the next ones.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { SOURCE_META } from '../../lambdas/core/attributes';
import { CompositeCrc32c } from '../../lambdas/core/composite-checksum';
import { crc32cBase64 } from '../../lambdas/core/crc32c';
import type { RunReport } from '../../lambdas/core/report';
import type { BlobSource, ObjectSink } from '../../lambdas/core/stores/types';
import { patternStream, uploadBlob } from '../../lambdas/local/seed';
import { runCli } from '../helpers/cli';
import { copyLocally, emulators, expectExactCopies, expectNothingLeftOver, head, listCopies, newBucket, newContainer, s3 } from '../helpers/stores';

const MiB = 1024 * 1024;
const PARTS = { largeBlobBytes: 6 * MiB, partBytes: 5 * MiB };

async function md5Of(seed: string, size: number): Promise<Buffer> {
  const hash = createHash('md5');
  for await (const chunk of patternStream(seed, size)) hash.update(chunk as Buffer);
  return hash.digest();
}

/** Who read what: the copy's key from S3, the blob's name from Azure. */
function counting() {
  const copyReads: string[] = [];
  const sourceReads: string[] = [];
  return {
    copyReads,
    sourceReads,
    wrapSink: (sink: ObjectSink): ObjectSink => ({
      ...sink,
      async read(key, range) {
        copyReads.push(key);
        return sink.read(key, range);
      },
    }),
    wrapSource: (source: BlobSource): BlobSource => ({
      ...source,
      async read(name, etag, range) {
        sourceReads.push(name);
        return source.read(name, etag, range);
      },
    }),
  };
}

const count = (names: string[], name: string) => names.filter((n) => n === name).length;

describe('verification of multipart copies S3 cannot read back', () => {
  const client = s3();

  it('through the command line: --storage-class GLACIER, and a tier map naming DEEP_ARCHIVE, verify from the source and the report counts them', async () => {
    const container = await newContainer();
    const hot = { name: 'hot/large.bin', size: 11 * MiB + 1, singleShot: true, tier: 'Hot' as const };
    const cool = { name: 'cool/large.bin', size: 6 * MiB + 9, singleShot: true, tier: 'Cool' as const };
    const small = { name: 'small.txt', size: 1000, tier: 'Hot' as const };
    for (const spec of [hot, cool, small]) await uploadBlob(container, spec);
    const dir = mkdtempSync(join(tmpdir(), 'azs3copy-archive-verify-'));
    const copy = async (bucket: string, args: string[]) => {
      const report = join(dir, `${bucket}.json`);
      const result = await runCli([
        'copy', '--azure-connection-string', emulators().azurite.connectionString, '--container', container.containerName,
        '--s3-endpoint', emulators().s3Endpoint, '--bucket', bucket, '--large-blob-mib', '6', '--part-mib', '5', '--quiet', '--report', report, ...args,
      ]);
      return { ...result, report: JSON.parse(readFileSync(report, 'utf8')) as RunReport };
    };

    // One class for all: both multipart copies are checked from the source; the small one went in one checked PUT.
    const glacier = await newBucket(client);
    const one = await copy(glacier, ['--storage-class', 'GLACIER']);
    expect(one.stderr).toBe('');
    expect(one.code).toBe(0);
    expect(one.report).toMatchObject({ state: 'complete', failed: [], verifiedFromSource: 2, settings: { storage: 'GLACIER' } });
    expect([...one.report.copied].sort()).toEqual([cool.name, hot.name, small.name]);
    expect(one.stdout).toMatch(/; 2 verified from the source \(GLACIER or DEEP_ARCHIVE: the blob read again from Azure\)/);
    for (const spec of [hot, cool, small]) expect((await head(client, glacier, spec.name)).StorageClass, spec.name).toBe('GLACIER');

    // By tier: the Hot blob's copy in DEEP_ARCHIVE is checked from the source, the Cool one's (GLACIER_IR) is read back.
    const mapped = await newBucket(client);
    const byTier = await copy(mapped, ['--tier-map', 'Hot=DEEP_ARCHIVE,Cool=GLACIER_IR']);
    expect(byTier.stderr).toBe('');
    expect(byTier.code).toBe(0);
    expect(byTier.report).toMatchObject({ state: 'complete', failed: [], verifiedFromSource: 1, settings: { storage: 'by tier: Hot=DEEP_ARCHIVE,Cool=GLACIER_IR' } });
    expect([...byTier.report.copied].sort()).toEqual([cool.name, hot.name, small.name]);
    expect(byTier.stdout).toMatch(/; 1 verified from the source/);
    expect((await head(client, mapped, hot.name)).StorageClass).toBe('DEEP_ARCHIVE');
    expect((await head(client, mapped, cool.name)).StorageClass).toBe('GLACIER_IR');
    await expectExactCopies(client, mapped, [cool]);

    // A class S3 reads back: nothing is verified from the source.
    const instant = await newBucket(client);
    const readBack = await copy(instant, ['--storage-class', 'GLACIER_IR']);
    expect(readBack.code).toBe(0);
    expect(readBack.report).toMatchObject({ failed: [], verifiedFromSource: 0 });
    expect(readBack.stdout).not.toMatch(/verified from the source/);
    for (const bucket of [glacier, mapped, instant]) await expectNothingLeftOver(client, bucket);
  });

  it('verifies a DEEP_ARCHIVE copy from Azure without reading it, while a GLACIER_IR copy in the same run is read back', async () => {
    const container = await newContainer();
    const bucket = await newBucket(client);
    const archived = { name: 'archived.bin', size: 11 * MiB + 3, singleShot: true, tier: 'Hot' as const };
    const instant = { name: 'instant.bin', size: 11 * MiB + 5, singleShot: true, tier: 'Cool' as const };
    await uploadBlob(container, archived);
    await uploadBlob(container, instant);
    const seen = counting();

    const result = await copyLocally(container, bucket, {
      ...PARTS,
      selection: { writing: { tierMap: { Hot: 'DEEP_ARCHIVE', Cool: 'GLACIER_IR' } } },
      wrapSink: seen.wrapSink,
      wrapSource: seen.wrapSource,
    });

    expect(result.report.failed).toEqual([]);
    expect(result.report.copied.sort()).toEqual([archived.name, instant.name]);
    expect(result.report.verifiedFromSource).toBe(1);
    expect((await head(client, bucket, archived.name)).StorageClass).toBe('DEEP_ARCHIVE');
    expect((await head(client, bucket, instant.name)).StorageClass).toBe('GLACIER_IR');
    // The archived copy: never read back; its blob read once more than its three parts (the check).
    expect(count(seen.copyReads, archived.name)).toBe(0);
    expect(count(seen.sourceReads, archived.name)).toBe(4);
    // The other: read back, its blob read for its parts only.
    expect(count(seen.copyReads, instant.name)).toBeGreaterThanOrEqual(1);
    expect(count(seen.sourceReads, instant.name)).toBe(3);
    await expectExactCopies(client, bucket, [instant]);
    await expectNothingLeftOver(client, bucket);
  });

  it('fails a DEEP_ARCHIVE copy whose blob does not match its Content-MD5, leaving no object', async () => {
    const container = await newContainer();
    const bucket = await newBucket(client);
    const blob = { name: 'wrong-md5.bin', size: 11 * MiB, singleShot: false };
    await uploadBlob(container, blob);
    await container.getBlobClient(blob.name).setHTTPHeaders({ blobContentMD5: await md5Of('other bytes', blob.size) });

    const result = await copyLocally(container, bucket, { ...PARTS, selection: { writing: { storageClass: 'DEEP_ARCHIVE' } } });

    expect(result.report.copied).toEqual([]);
    expect(result.report.failed).toEqual([{
      name: blob.name,
      reason: expect.stringMatching(/^the blob's MD5 \S+, read from Azure to check its copy, differs from its Content-MD5 \S+; the copy was deleted$/),
    }]);
    expect(await listCopies(client, bucket)).toEqual([]);
    await expectNothingLeftOver(client, bucket);
  });

  it('fails a DEEP_ARCHIVE copy one of whose parts holds other bytes than the blob\'s, leaving no object', async () => {
    const container = await newContainer();
    const bucket = await newBucket(client);
    const blob = { name: 'altered-part.bin', size: 11 * MiB, singleShot: true };
    await uploadBlob(container, blob);
    // Part 2 goes with one byte changed and the CRC32C of what is sent: S3 takes it, as it would the part's own.
    const altering = (sink: ObjectSink): ObjectSink => ({
      ...sink,
      async uploadPart(key, uploadId, partNumber, body, length, checksum) {
        if (partNumber !== 2 || !Buffer.isBuffer(body)) return sink.uploadPart(key, uploadId, partNumber, body, length, checksum);
        const altered = Buffer.from(body);
        altered[1000] ^= 0x01;
        return sink.uploadPart(key, uploadId, partNumber, altered, length, crc32cBase64(altered));
      },
    });

    const result = await copyLocally(container, bucket, { ...PARTS, selection: { writing: { storageClass: 'DEEP_ARCHIVE' } }, wrapSink: altering });

    expect(result.report.copied).toEqual([]);
    expect(result.report.failed).toEqual([{
      name: blob.name,
      reason: expect.stringMatching(/^the copy's composite CRC32C in S3 \S+-3 differs from \S+-3, computed from the blob read from Azure; the copy was deleted$/),
    }]);
    expect(await listCopies(client, bucket)).toEqual([]);
    await expectNothingLeftOver(client, bucket);
  });

  it('deletes the copy of a blob changed after its copy was completed, before the check read it, and copies and checks its new version', async () => {
    const container = await newContainer();
    const bucket = await newBucket(client);
    const before = { name: 'changing.bin', size: 11 * MiB, singleShot: true };
    const after = { name: before.name, size: 7 * MiB + 11, seed: 'the second version', singleShot: true };
    await uploadBlob(container, before);
    const seen = counting();
    let completions = 0;
    // The first completion is followed by a new version of the blob, as a writer in Azure might do at that moment.
    const changing = (sink: ObjectSink): ObjectSink => seen.wrapSink({
      ...sink,
      async complete(key, uploadId, parts) {
        const outcome = await sink.complete(key, uploadId, parts);
        if (++completions === 1) await uploadBlob(container, after);
        return outcome;
      },
    });

    const result = await copyLocally(container, bucket, {
      ...PARTS, selection: { writing: { storageClass: 'DEEP_ARCHIVE' } }, wrapSink: changing, wrapSource: seen.wrapSource,
    });

    expect(result.report.failed).toEqual([]);
    expect(result.report.copied).toEqual([before.name]);
    expect(result.report.verifiedFromSource).toBe(1);
    expect(completions).toBe(2);
    // Never read back from S3: the first copy went unchecked (deleted), the second was checked from Azure.
    expect(seen.copyReads).toEqual([]);
    // The copy is of the new version (S3 will not give its bytes back: its composite checksum says what they are).
    const copy = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: before.name, ChecksumMode: 'ENABLED' }));
    expect(copy.StorageClass).toBe('DEEP_ARCHIVE');
    expect(copy.ContentLength).toBe(after.size);
    expect(copy.Metadata?.[SOURCE_META.etag]).toBe((await container.getBlobClient(after.name).getProperties()).etag);
    const composite = new CompositeCrc32c(after.size, PARTS.partBytes);
    for await (const chunk of patternStream(after.seed, after.size)) composite.update(chunk as Buffer);
    expect(copy.ChecksumCRC32C).toBe(composite.value());
    await expectNothingLeftOver(client, bucket);
  });

  it('goes on checking across invocations when reading the blob again outlasts one (5-second functions, Azure read at 4 MiB/s)', async () => {
    const container = await newContainer();
    const bucket = await newBucket(client);
    const blob = { name: 'slow.bin', size: 24 * MiB + 7, singleShot: true };
    await uploadBlob(container, blob);
    const seen = counting();

    const result = await copyLocally(container, bucket, {
      ...PARTS,
      selection: { writing: { storageClass: 'DEEP_ARCHIVE' } },
      functionTimeoutSeconds: 5,
      wrapSink: seen.wrapSink,
      wrapSource: (source) => seen.wrapSource(throttled(source, 4 * MiB)),
    });

    expect(result.report.failed).toEqual([]);
    expect(result.report.copied).toEqual([blob.name]);
    expect(result.report.verifiedFromSource).toBe(1);
    expect(seen.copyReads).toEqual([]);
    // One invocation completes and starts the check; at 4 MiB/s no invocation of 5 s reads 24 MiB, so at least
    // one more goes on with it, however fast the machine (a slower one only takes more).
    expect(result.report.invocations?.recombinator?.count).toBeGreaterThanOrEqual(2);
    expect(count(seen.sourceReads, blob.name)).toBeGreaterThanOrEqual(5 + 2);
    for (const [stage, seenStage] of Object.entries(result.report.invocations ?? {})) expect(seenStage.maxSeconds, stage).toBeLessThan(5);
    expect((await head(client, bucket, blob.name)).StorageClass).toBe('DEEP_ARCHIVE');
    await expectNothingLeftOver(client, bucket);
  });
});

/** Every read of the source delivers at most `bytesPerSecond`. */
function throttled(source: BlobSource, bytesPerSecond: number): BlobSource {
  return {
    ...source,
    async read(name, etag, range) {
      const read = await source.read(name, etag, range);
      const body = read.body.pipe(new Transform({
        transform(chunk: Buffer, _encoding, done) {
          sleep((chunk.length / bytesPerSecond) * 1000).then(() => done(null, chunk), done);
        },
      }));
      read.body.on('error', (error) => body.destroy(error));
      return { ...read, body };
    },
  };
}
