/**
 * Every stage's work fits its timeout by design, not by luck: with every function
 * stopped after 10 seconds (`--function-timeout 10`), a large blob carrying a
 * Content-MD5 (set after a staged upload, as `azcopy --put-md5` does) is copied
 * and verified, one whose Content-MD5 is wrong is failed with the reason and no
 * object left, and the report shows no invocation over the limit.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { patternStream, uploadBlob } from '../../lambdas/local/seed';
import { runCli } from '../helpers/cli';
import type { ObjectSink } from '../../lambdas/core/stores/types';
import { AFTER_TIMEOUT_MS } from '../../lambdas/local/pipeline';
import { DEFAULT_TUNING } from '../../lambdas/core/context';
import { copyLocally, emulators, expectExactCopies, expectNothingLeftOver, listCopies, newBucket, newContainer, s3 } from '../helpers/stores';

const MiB = 1024 * 1024;

async function md5Of(seed: string, size: number): Promise<Buffer> {
  const hash = createHash('md5');
  for await (const chunk of patternStream(seed, size)) hash.update(chunk as Buffer);
  return hash.digest();
}

describe('azs3copy copy --function-timeout', () => {
  it('copies and verifies a large blob with a Content-MD5, fails one whose Content-MD5 is wrong, no invocation over the limit', async () => {
    const container = await newContainer();
    const bucket = await newBucket();
    const good = { name: 'verified.bin', size: 200 * MiB + 5, singleShot: false };
    const bad = { name: 'wrong-md5.bin', size: 40 * MiB, singleShot: false };
    await uploadBlob(container, good);
    await uploadBlob(container, bad);
    await container.getBlobClient(good.name).setHTTPHeaders({ blobContentMD5: await md5Of(good.name, good.size) });
    await container.getBlobClient(bad.name).setHTTPHeaders({ blobContentMD5: await md5Of('other bytes', bad.size) });
    const report = join(mkdtempSync(join(tmpdir(), 'azs3copy-timeout-')), 'report.json');

    const result = await runCli([
      'copy', '--azure-connection-string', emulators().azurite.connectionString, '--container', container.containerName,
      '--s3-endpoint', emulators().s3Endpoint, '--bucket', bucket, '--large-blob-mib', '16', '--part-mib', '16',
      '--function-timeout', '10', '--quiet', '--report', report,
    ], {}, 240_000);

    expect(result.stderr).toBe('');
    expect(result.code).toBe(1);
    const written = JSON.parse(readFileSync(report, 'utf8'));
    expect(written).toMatchObject({ state: 'complete', copied: [good.name], outstanding: [] });
    expect(written.failed).toEqual([{ name: bad.name, reason: expect.stringMatching(/^the copy's MD5 .* differs from the blob's Content-MD5 .*; the copy was deleted$/) }]);
    for (const [stage, seen] of Object.entries(written.invocations as Record<string, { count: number; maxSeconds: number }>)) {
      expect(seen.maxSeconds, stage).toBeLessThan(10);
    }
    expect(Object.keys(written.invocations).sort()).toEqual(['find-blobs', 'largefile-initializer', 'parter', 'recombinator']);
    await expectExactCopies(s3(), bucket, [good]);
    expect(await listCopies(s3(), bucket)).toEqual([good.name]);
    await expectNothingLeftOver(s3(), bucket);
  });
});

describe('an invocation stopped at its timeout while it holds a claim', () => {
  it('leaves the claim to expire before its message comes back, so the work goes on (as a queue\'s visibility timeout does)', async () => {
    const container = await newContainer();
    const bucket = await newBucket();
    const blob = { name: 'held.bin', size: 12 * MiB + 3, singleShot: false };
    await uploadBlob(container, blob);
    await container.getBlobClient(blob.name).setHTTPHeaders({ blobContentMD5: await md5Of(blob.name, blob.size) });
    // The first read-back of the copy (the recombinator's check, under its verification claim) hangs past the
    // 3-second timeout: that invocation is stopped holding the claim.
    let hung = 0;
    const hanging = (sink: ObjectSink): ObjectSink => ({
      ...sink,
      async read(key, range) {
        if (hung++ === 0) await new Promise((r) => setTimeout(r, 8_000));
        return sink.read(key, range);
      },
    });
    const started = Date.now();
    // A verification's claim outlives its invocation by a margin (30 s by default; 4 s here, to keep the test short),
    // and the local queue, as SQS's visibility timeout does, gives the failed message back only after a wait longer
    // than it. With no wait the retry finds the claim held, drops the check as another's, and the blob is left
    // outstanding. The runner's default wait covers the default margins (a listing step's is 60 s).
    expect(AFTER_TIMEOUT_MS).toBeGreaterThan(60_000);
    expect(DEFAULT_TUNING.verificationLeaseMarginMs).toBeLessThan(AFTER_TIMEOUT_MS);
    const marginMs = 4_000;
    const { report } = await copyLocally(container, bucket, {
      largeBlobBytes: 8 * MiB, partBytes: 5 * MiB, functionTimeoutSeconds: 3, wrapSink: hanging,
      tuning: { verificationLeaseMarginMs: marginMs }, bus: { retryDelayMs: () => 10, afterTimeoutMs: marginMs + 2_000 },
    });
    expect(hung).toBeGreaterThanOrEqual(2);
    expect(report).toMatchObject({ state: 'complete', copied: [blob.name], failed: [], outstanding: [] });
    // Its message came back after the invocation's timeout and the claim's margin, not at once.
    expect(Date.now() - started).toBeGreaterThan(3_000 + marginMs);
    await expectExactCopies(s3(), bucket, [blob]);
    await expectNothingLeftOver(s3(), bucket);
  }, 180_000);
});
