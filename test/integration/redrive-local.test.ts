/**
 * Dead letters of a local run are kept and can be sent again: a copy whose writes
 * under blocked/ keep breaking dead-letters their messages (a batch of small blobs,
 * the parts of a large one) and keeps them in the bucket; once the store behaves,
 * `azs3copy redrive` finishes the work, the upload the first run left open
 * included, and removes the dead letters.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reportKeys } from '../../lambdas/core/report';
import type { ContainerClient } from '@azure/storage-blob';
import { DEAD_LETTER_PREFIX } from '../../lambdas/local/dead-letters';
import { uploadBlob, type BlobSpec } from '../../lambdas/local/seed';
import { runCli, type CliResult } from '../helpers/cli';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy';
import type { LocalRunResult } from '../../lambdas/local/runner';
import { copyLocally, emulators, expectExactCopies, expectNothingLeftOver, listKeys, newBucket, newContainer, openUploads, s3 } from '../helpers/stores';

const MiB = 1024 * 1024;
const BLOBS: BlobSpec[] = [
  ...[1, 2, 3].map((i) => ({ name: `ok/${i}.txt`, size: 1000 * i })),
  { name: 'ok/large.bin', size: 11 * MiB, singleShot: false },
  { name: 'blocked/small.bin', size: 200_000 },
  { name: 'blocked/large.bin', size: 11 * MiB + 5, singleShot: false },
];
const BLOCKED = ['blocked/large.bin', 'blocked/small.bin'];

describe('azs3copy redrive of a local run\'s dead letters', () => {
  const client = s3();
  let container: ContainerClient;
  let bucket: string;
  let proxy: FaultProxy;
  let copy: LocalRunResult;
  let keptAfterCopy: string[];
  let openAfterCopy: number;
  let redrive: CliResult;
  let redriveReport: { runId: string; state: string; copied: string[]; failed: unknown[]; outstanding: unknown[] };
  let again: CliResult;

  beforeAll(async () => {
    container = await newContainer();
    bucket = await newBucket(client);
    await Promise.all(BLOBS.map((spec) => uploadBlob(container, spec)));
    let blocked = true;
    // Every write under blocked/ is cut part way, however often it is tried.
    proxy = await startFaultProxy({
      target: emulators().s3Endpoint, service: 's3',
      rule: (r) => (blocked && r.method === 'PUT' && r.decodedPath.startsWith(`/${bucket}/blocked/`) ? 'resetRequest' : 'pass'),
    });
    // Retries cut short, so that the messages reach the dead-letter list in seconds, not minutes.
    copy = await copyLocally(container, bucket, {
      s3Endpoint: proxy.endpoint, largeBlobBytes: 6 * MiB, partBytes: 5 * MiB,
      s3MaxAttempts: 1, tuning: { retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 } },
    });
    keptAfterCopy = await listKeys(client, bucket, DEAD_LETTER_PREFIX);
    openAfterCopy = (await openUploads(client, bucket)).length;

    blocked = false;
    const dir = mkdtempSync(join(tmpdir(), 'azs3copy-redrive-'));
    const args = (report: string) => [
      'redrive', '--azure-connection-string', emulators().azurite.connectionString, '--container', container.containerName,
      '--bucket', bucket, '--s3-endpoint', proxy.endpoint, '--large-blob-mib', '6', '--part-mib', '5', '--quiet', '--report', join(dir, report),
    ];
    redrive = await runCli(args('redrive.json'));
    redriveReport = JSON.parse(readFileSync(join(dir, 'redrive.json'), 'utf8'));
    again = await runCli(args('again.json'));
  });

  afterAll(() => proxy?.stop());

  it('ends the run stalled, naming the blocked blobs as outstanding and where their letters are kept', () => {
    expect(copy.report.state).toBe('stalled');
    expect(copy.report.failed).toEqual([]);
    expect(copy.report.outstanding.map((f) => f.name)).toEqual(BLOCKED);
    const kept = `s3://${bucket}/${DEAD_LETTER_PREFIX}${copy.report.runId}.json`;
    for (const blob of copy.report.outstanding) {
      expect(blob.where).toMatch(/^dead-lettered after 5 attempts in (download|parter) /);
      expect(blob.where).toContain(`kept ${kept}`);
    }
    expect(copy.report.copied).toEqual(BLOBS.map((b) => b.name).filter((n) => !BLOCKED.includes(n)).sort());
    // One batch of small blobs and the three parts of the large one.
    expect(copy.deadLetters.map((l) => l.topic).sort()).toEqual(['download', 'parter', 'parter', 'parter']);
    expect(keptAfterCopy).toEqual([`${DEAD_LETTER_PREFIX}${copy.report.runId}.json`]);
    expect(copy.deadLettersKeptAt).toBe(`s3://${bucket}/${DEAD_LETTER_PREFIX}${copy.report.runId}.json`);
    // The large blob's upload waits, open, for its parts.
    expect(openAfterCopy).toBe(1);
  });

  it('finishes the stalled run on redrive: complete, with every blob copied; exits 0 and removes the dead letters', async () => {
    expect(redrive.stderr).toBe('');
    expect(redrive.code).toBe(0);
    expect(redrive.stdout).toMatch(/sent 4 dead-lettered messages back to their stages\n/);
    expect(redriveReport).toMatchObject({ runId: copy.report.runId, state: 'complete', failed: [], outstanding: [] });
    expect(redriveReport.copied).toEqual(BLOBS.map((b) => b.name).sort());
    // The run's report in the bucket says so too.
    const inBucket = await client.send(new GetObjectCommand({ Bucket: bucket, Key: reportKeys(copy.report.runId).json }));
    expect(JSON.parse(await inBucket.Body!.transformToString())).toMatchObject({ state: 'complete', copied: BLOBS.map((b) => b.name).sort() });
    expect(await listKeys(client, bucket, DEAD_LETTER_PREFIX)).toEqual([]);
  });

  it('leaves every blob byte for byte, no upload open and no state behind', async () => {
    await expectExactCopies(client, bucket, BLOBS);
    await expectNothingLeftOver(client, bucket);
  });

  it('has nothing to do the second time', () => {
    expect(again.code).toBe(0);
    expect(again.stdout).toBe(`nothing to redrive: no dead letters are kept in s3://${bucket}/${DEAD_LETTER_PREFIX}\n`);
  });
});
