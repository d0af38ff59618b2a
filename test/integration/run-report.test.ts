/**
 * A run accounted for from end to end, on the emulators: the report in the bucket
 * names exactly what was copied, skipped and failed (and a browser shows it, names
 * escaped), duplicate and retried deliveries change no count, `azs3copy status`
 * follows a run that is going (running, with an ETA) to its end, a second start
 * while it runs starts nothing, and a run whose messages are dead-lettered ends
 * stalled, naming the blobs and where their messages are.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { Transform } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { reportKeys, type RunReport } from '../../lambdas/core/report';
import type { BlobSource, ObjectSink } from '../../lambdas/core/stores/types';
import { uploadBlob, uploadDirectoryMarker } from '../../lambdas/local/seed';
import { chromium, renderedDom } from '../helpers/chromium';
import { runCli } from '../helpers/cli';
import { copyLocally, emulators, expectExactCopies, newBucket, newContainer, s3 } from '../helpers/stores';

const MiB = 1024 * 1024;
const LONG = `fail/<b>"quoted" & 'odd'</b>${'n'.repeat(1000)}`;

async function bucketReport(bucket: string, runId: string, which: 'json' | 'html'): Promise<string> {
  const out = await s3().send(new GetObjectCommand({ Bucket: bucket, Key: reportKeys(runId)[which] }));
  return out.Body!.transformToString('utf8');
}

/** A transient S3 error, as the SDK raises it. */
function slowDown(): Error {
  return Object.assign(new Error('Please reduce your request rate.'), { name: 'SlowDown', $metadata: { httpStatusCode: 503 } });
}

/** Flip the first byte read of one blob, so its MD5 check fails. */
function corrupting(name: string) {
  return (source: BlobSource): BlobSource => ({
    ...source,
    async read(blobName, etag, range) {
      const read = await source.read(blobName, etag, range);
      if (blobName !== name) return read;
      let flipped = false;
      const body = read.body.pipe(new Transform({
        transform(chunk: Buffer, _e, done) {
          if (!flipped && chunk.length > 0) {
            chunk = Buffer.from(chunk);
            chunk[0] ^= 0xff;
            flipped = true;
          }
          done(null, chunk);
        },
      }));
      return { ...read, body };
    },
  });
}

describe('a run accounted for', () => {
  it('writes a report to the bucket naming exactly what was copied, skipped and failed, with counts no duplicate changes', async () => {
    const container = await newContainer();
    const bucket = await newBucket();
    const ok = [1, 2, 3].map((i) => ({ name: `ok/${i}.txt`, size: 1000 * i }));
    const large = { name: 'ok/large.bin', size: 7 * MiB, singleShot: false };
    await Promise.all([...ok, large].map((b) => uploadBlob(container, b)));
    await uploadBlob(container, { name: 'skip/archived.bin', size: 10, tier: 'Archive' });
    await uploadDirectoryMarker(container, 'skip/dir');
    await uploadBlob(container, { name: 'fail/corrupt.bin', size: 5000 });
    await uploadBlob(container, { name: LONG, size: 3 });
    // The first PUT of ok/2.txt meets throttling that outlasts its request's own retries: that blob alone goes round again.
    let throttled = false;
    const throttling = (sink: ObjectSink): ObjectSink => ({
      ...sink,
      async put(key, body, attributes, options) {
        if (key === 'ok/2.txt' && !throttled) {
          throttled = true;
          throw slowDown();
        }
        return sink.put(key, body, attributes, options);
      },
    });

    const result = await copyLocally(container, bucket, {
      largeBlobBytes: 6 * MiB, partBytes: 5 * MiB, wrapSink: throttling, wrapSource: corrupting('fail/corrupt.bin'),
      bus: { duplicateRate: 1, retryDelayMs: () => 10 },
    });

    const report = result.report;
    expect(report.state).toBe('complete');
    expect(report.copied).toEqual(['ok/1.txt', 'ok/2.txt', 'ok/3.txt', 'ok/large.bin']);
    expect(report.skipped).toEqual([
      { name: 'skip/archived.bin', reason: expect.stringMatching(/^archived/) },
      { name: 'skip/dir', reason: expect.stringMatching(/directory marker/) },
    ]);
    expect(report.failed).toEqual([
      { name: LONG, reason: expect.stringMatching(/S3 key would be 10\d\d bytes/) },
      { name: 'fail/corrupt.bin', reason: expect.stringMatching(/not the blob's Content-MD5/) },
    ]);
    expect(report.outstanding).toEqual([]);
    expect(report.bytes).toBe(6000 + 7 * MiB);
    expect(report.listed).toBe(8);
    expect(throttled).toBe(true);
    // Every message was delivered twice, and ok/2.txt's went round again: still each blob counted once.
    expect(result.bus.duplicated).toBeGreaterThan(5);
    const status = JSON.parse((await runCli(['status', '--bucket', bucket, '--s3-endpoint', emulators().s3Endpoint, '--json'])).stdout);
    expect(status).toMatchObject({ runId: report.runId, state: 'complete', copied: 4, skipped: 2, failed: 2, unchanged: 0, bytesCopied: 6000 + 7 * MiB, etaSeconds: 0 });
    await expectExactCopies(s3(), bucket, [...ok, large]);

    // The report in the bucket is the one the run returned.
    const inBucket = JSON.parse(await bucketReport(bucket, report.runId, 'json')) as RunReport;
    expect(inBucket).toEqual(JSON.parse(JSON.stringify(report)));

    // And a browser shows the failed blob's name as text, not as markup.
    const html = await bucketReport(bucket, report.runId, 'html');
    const browser = chromium();
    if (!browser.path) {
      console.warn(`skipping the browser check of the HTML report: ${browser.why}`);
      return;
    }
    const file = join(mkdtempSync(join(tmpdir(), 'azs3copy-report-')), 'report.html');
    writeFileSync(file, html);
    const dom = renderedDom(browser.path, file);
    const asText = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
    expect(dom).toContain(`<td class="name">${asText(LONG)}</td>`);
    expect(dom).toContain('<td class="name">fail/corrupt.bin</td>');
    expect(dom).toContain('Failed (2)');
    expect(dom).not.toContain('<b>"quoted"');
  });

  it('shows a run going, with an ETA, refuses a second start meanwhile, and shows it complete after', async () => {
    const container = await newContainer();
    const bucket = await newBucket();
    const blobs = Array.from({ length: 12 }, (_, i) => ({ name: `slow/${String(i).padStart(2, '0')}.bin`, size: 20_000 }));
    await Promise.all(blobs.map((b) => uploadBlob(container, b)));
    // Reads one at a time, in small messages; after the first four, they wait until the test has seen the run
    // going and a second start refused (however busy the machine, the run is still going then).
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let reads = 0;
    const slow = (source: BlobSource): BlobSource => ({
      ...source,
      read: async (...args) => {
        if (++reads > 4) await gate;
        await new Promise((r) => setTimeout(r, 100));
        return source.read(...args);
      },
    });
    let runId: string | undefined;
    const copying = copyLocally(container, bucket, {
      wrapSource: slow, concurrency: { download: 1 }, tuning: { blobsPerMessage: 2, downloadConcurrency: 1 },
      onStart: (run) => void (runId = run.runId),
    });
    const args = ['--bucket', bucket, '--s3-endpoint', emulators().s3Endpoint];
    let going: Record<string, unknown> | undefined;
    for (let tries = 0; tries < 100 && !going; tries++) {
      await new Promise((r) => setTimeout(r, 200));
      const status = await runCli(['status', ...args, '--json']);
      if (status.code !== 0) continue;
      const parsed = JSON.parse(status.stdout);
      if (parsed.state === 'running' && parsed.copied > 0 && parsed.listingDone) going = parsed;
    }
    expect(going).toMatchObject({ runId, state: 'running', etaSeconds: expect.any(Number), routed: 12 });
    expect(going!.etaSeconds as number).toBeGreaterThan(0);
    const text = await runCli(['status', ...args]);
    expect(text.stdout).toMatch(new RegExp(`^run ${runId}: running\\n`));
    expect(text.stdout).toMatch(/\n {2}ETA: {5}(\d+s|\d+m \d\ds)\n/);

    const second = await runCli(['copy', '--azure-connection-string', emulators().azurite.connectionString, '--container', container.containerName, ...args]);
    expect(second.code).toBe(0);
    expect(second.stdout).toBe(`run not started: run ${runId} of this pipeline is still in progress (started ${(going as { startedAt: string }).startedAt}): not starting another\n`);

    release();
    const result = await copying;
    expect(result.report).toMatchObject({ runId, state: 'complete', failed: [] });
    expect(result.report.copied).toHaveLength(12);
    const after = JSON.parse((await runCli(['status', ...args, '--json'])).stdout);
    expect(after).toMatchObject({ runId, state: 'complete', copied: 12, etaSeconds: 0 });
    const runs = await runCli(['runs', ...args]);
    expect(runs.stdout).toMatch(new RegExp(`^${runId} {2}complete {2}copied 12/12 `));
  });

  it('ends a run whose messages are dead-lettered as stalled, naming the blobs and where their messages are', async () => {
    const container = await newContainer();
    const bucket = await newBucket();
    await uploadBlob(container, { name: 'fine.txt', size: 10 });
    await uploadBlob(container, { name: 'blocked.txt', size: 10 });
    const blocking = (sink: ObjectSink): ObjectSink => ({
      ...sink,
      put: async (key, ...rest) => {
        if (key === 'blocked.txt') throw slowDown();
        return sink.put(key, ...rest);
      },
    });
    const result = await copyLocally(container, bucket, { wrapSink: blocking, tuning: { blobsPerMessage: 1 }, bus: { retryDelayMs: () => 10 } });
    expect(result.report).toMatchObject({ state: 'stalled', copied: ['fine.txt'], failed: [] });
    expect(result.report.stalledReason).toBe('1 message was dead-lettered, so blobs are outstanding');
    expect(result.report.outstanding).toEqual([{
      name: 'blocked.txt',
      where: `dead-lettered after 5 attempts in download (1 of 1 blobs hit passing errors, first "blocked.txt": Please reduce your request rate.); ` +
        `kept s3://${bucket}/.azs3copy-state/dead-letters/${result.report.runId}.json: fix the cause, then run "azs3copy redrive" with the same options`,
    }]);
    const status = await runCli(['status', '--bucket', bucket, '--s3-endpoint', emulators().s3Endpoint]);
    expect(status.stdout).toMatch(new RegExp(`^run ${result.report.runId}: STALLED: 1 message was dead-lettered, so blobs are outstanding\\n`));
    expect(await bucketReport(bucket, result.report.runId, 'html')).toContain('<td class="name">blocked.txt</td>');
  });
});
