/**
 * Several destinations: each blob read from Azure once and written to every
 * destination, by a scheduled copy and by blob events alike. The Azure side's
 * access log (every request Azurite received, through a proxy) shows the bytes of
 * each blob asked for exactly once; each destination holds exact copies under its
 * own prefix; each is compared on its own (a copy missing from one destination is
 * written there alone, read once more), and reported on its own.
 */
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PlanReport } from '../../lambdas/core/cost/plan-report';
import type { ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf, patternStream, uploadBlob, type BlobSpec } from '../../lambdas/local/seed';
import { runCli, startCli } from '../helpers/cli';
import { deliver, eventGridBatch, type BlobChange } from '../helpers/event-grid';
import { proxiedConnectionString, startFaultProxy, type FaultProxy, type ProxiedRequest } from '../helpers/fault-proxy';
import { copyLocally, emulators, listCopies, newBucket, newContainer, objectDigest, openUploads, s3, sourceOf } from '../helpers/stores';

const MiB = 1024 * 1024;
const KEY = 'test-webhook-key-destinations-1';

/** Azure's access log, as a proxy in front of Azurite saw it: the bytes of each blob each GET asked for. */
function accessLog() {
  const reads: { blob: string; start: number; end?: number }[] = [];
  return {
    reads,
    onRequest(r: ProxiedRequest) {
      if (r.method !== 'GET' || r.query.has('comp') || r.query.has('restype')) return;
      const blob = r.decodedPath.split('/').slice(3).join('/');
      const range = /bytes=(\d+)-(\d*)/.exec(String(r.headers['x-ms-range'] ?? r.headers.range ?? ''));
      reads.push({ blob, start: range ? Number(range[1]) : 0, end: range?.[2] ? Number(range[2]) : undefined });
    },
    /** Bytes asked for of each blob, and in how many requests. */
    bytesRead(specs: BlobSpec[]) {
      return Object.fromEntries(specs.map((spec) => {
        const mine = reads.filter((r) => r.blob === spec.name);
        const bytes = mine.reduce((n, r) => n + Math.min(r.end ?? spec.size - 1, spec.size - 1) - r.start + 1, 0);
        return [spec.name, bytes];
      }));
    },
  };
}

async function proxiedSource(log: ReturnType<typeof accessLog>): Promise<{ proxy: FaultProxy; connectionString: string }> {
  const { azurite } = emulators();
  const proxy = await startFaultProxy({ target: azurite.endpoint, service: 'azure', onRequest: (r) => log.onRequest(r) });
  return { proxy, connectionString: proxiedConnectionString(azurite.connectionString, proxy.endpoint) };
}

async function expectCopiesUnder(bucket: string, prefix: string, specs: BlobSpec[]) {
  for (const spec of specs) {
    const [got, want] = await Promise.all([objectDigest(s3(), bucket, prefix + spec.name), digestOf(patternStream(spec.seed ?? spec.name, spec.size))]);
    expect({ key: prefix + spec.name, ...got }).toEqual({ key: prefix + spec.name, ...want });
  }
}

const CORPUS: BlobSpec[] = [
  { name: 'small/a.txt', size: 1 },
  { name: 'small/b ü %2F.bin', size: 70_000 },
  { name: 'small/empty', size: 0 },
  { name: 'small/c.bin', size: 3 * MiB + 5 },
  // Over 8 MiB and under the large-blob size: streamed once, split to both PUTs.
  { name: 'streamed/d.bin', size: 11 * MiB + 3 },
  // The multipart path: each 5 MiB range read once, written to both uploads.
  { name: 'large/e.bin', size: 17 * MiB + 9, singleShot: false },
];

describe('a scheduled copy to two destinations', () => {
  let container: ContainerClient;
  let first: string;
  let second: string;
  let proxy: FaultProxy;
  const log = accessLog();

  beforeAll(async () => {
    container = await newContainer();
    [first, second] = await Promise.all([newBucket(), newBucket()]);
    await Promise.all(CORPUS.map((spec) => uploadBlob(container, spec)));
    const source = await proxiedSource(log);
    proxy = source.proxy;
  });
  afterAll(async () => {
    await proxy?.stop();
  });

  const copy = () => copyLocally(container, first, {
    source: { ...sourceOf(container), blobEndpoint: proxy.endpoint, credentials: { kind: 'connection-string', connectionString: proxiedConnectionString(emulators().azurite.connectionString, proxy.endpoint) } },
    prefix: 'one/',
    also: [{ bucket: second, prefix: 'two/' }],
    largeBlobBytes: 16 * MiB,
    partBytes: 5 * MiB,
  });

  it('writes every blob to both, reading each byte of each blob from Azure once, and reports each destination', async () => {
    // The plan first: it counts each destination's writes and one read.
    const { azurite, s3Endpoint } = emulators();
    const planFile = join(mkdtempSync(join(tmpdir(), 'azs3copy-dest-')), 'plan.json');
    const planned = await runCli([
      'plan', '--azure-connection-string', azurite.connectionString, '--container', container.containerName, '--s3-endpoint', s3Endpoint,
      '--bucket', first, '--prefix', 'one/', '--also-to', `${second}/two/`, '--large-blob-mib', '16', '--part-mib', '5', '--report', planFile,
    ]);
    expect(planned.stderr).toBe('');
    const plan = JSON.parse(readFileSync(planFile, 'utf8')) as PlanReport;
    const { report, requests } = await copy();
    const predicted = plan.local.requests;
    for (const [service, op] of [['azure', 'GetBlob'], ['azure', 'BytesRead'], ['s3', 'PutObject'], ['s3', 'UploadPart'], ['s3', 'CreateMultipartUpload'], ['s3', 'CompleteMultipartUpload'], ['s3', 'BytesWritten']]) {
      const p = predicted[service]?.[op] ?? 0;
      const c = requests?.[service]?.[op] ?? 0;
      expect({ service, op, p, close: Math.abs(p - c) <= 0.1 * c }).toEqual({ service, op, p, close: true });
    }
    expect(predicted.s3.UploadPart).toBe(8);
    expect(predicted.azure.BytesRead).toBe(CORPUS.reduce((n, c) => n + c.size, 0));
    expect(report.failed).toEqual([]);
    expect(report.copied).toHaveLength(CORPUS.length);
    await expectCopiesUnder(first, 'one/', CORPUS);
    await expectCopiesUnder(second, 'two/', CORPUS);
    // Azure's log: each blob's bytes asked for once in all (the large one range by range).
    expect(log.bytesRead(CORPUS)).toEqual(Object.fromEntries(CORPUS.map((s) => [s.name, s.size])));
    expect(log.reads.filter((r) => r.blob === 'large/e.bin')).toHaveLength(4);
    expect(report.destinations).toEqual([
      { destination: `s3://${first}/one/`, copied: 6, unchanged: 0, skipped: 0, failed: 0, outstanding: 0 },
      { destination: `s3://${second}/two/`, copied: 6, unchanged: 0, skipped: 0, failed: 0, outstanding: 0 },
    ]);
    expect(await openUploads(s3(), first)).toEqual([]);
    expect(await openUploads(s3(), second)).toEqual([]);
  }, 180_000);

  it('compares each destination on its own: copies missing from one are written there alone, read once more', async () => {
    await s3().send(new DeleteObjectCommand({ Bucket: second, Key: 'two/small/c.bin' }));
    await s3().send(new DeleteObjectCommand({ Bucket: second, Key: 'two/large/e.bin' }));
    const before = log.reads.length;
    const firstCopies = await Promise.all(['small/c.bin', 'large/e.bin', 'small/a.txt'].map((n) => objectDigest(s3(), first, `one/${n}`)));
    const { report } = await copy();
    expect(report.failed).toEqual([]);
    expect([...report.copied].sort()).toEqual(['large/e.bin', 'small/c.bin']);
    expect(report.unchanged).toBe(4);
    expect(report.destinations).toEqual([
      { destination: `s3://${first}/one/`, copied: 0, unchanged: 6, skipped: 0, failed: 0, outstanding: 0 },
      { destination: `s3://${second}/two/`, copied: 2, unchanged: 4, skipped: 0, failed: 0, outstanding: 0 },
    ]);
    await expectCopiesUnder(second, 'two/', CORPUS);
    expect(await Promise.all(['small/c.bin', 'large/e.bin', 'small/a.txt'].map((n) => objectDigest(s3(), first, `one/${n}`)))).toEqual(firstCopies);
    const again = accessLog();
    log.reads.slice(before).forEach((r) => again.reads.push(r));
    const missing = CORPUS.filter((s) => s.name === 'small/c.bin' || s.name === 'large/e.bin');
    expect(again.bytesRead(CORPUS)).toEqual(Object.fromEntries(CORPUS.map((s) => [s.name, missing.includes(s) ? s.size : 0])));
  }, 180_000);

  it('goes on writing the others when one destination refuses a blob, and reports the blob failed there, by name', async () => {
    const [one, two] = await Promise.all([newBucket(), newBucket()]);
    // S3 refuses the second destination's writes of the streamed blob and of the large blob's parts (its upload
    // is created), and nothing else.
    const s3Proxy = await startFaultProxy({
      target: emulators().s3Endpoint,
      service: 's3',
      rule: (r) => (r.method === 'PUT' && r.decodedPath.startsWith(`/${two}/two/`) && /(streamed|large)\//.test(r.decodedPath) ? 'denied' : 'pass'),
    });
    try {
      const { report } = await copyLocally(container, one, {
        s3Endpoint: s3Proxy.endpoint, prefix: 'one/', also: [{ bucket: two, prefix: 'two/' }], largeBlobBytes: 16 * MiB, partBytes: 5 * MiB,
      });
      expect(report.failed.map((f) => f.name).sort()).toEqual(['large/e.bin', 'streamed/d.bin']);
      for (const f of report.failed) expect(f.reason).toMatch(new RegExp(`^s3://${two}/two/: .*(403|AccessDenied)`));
      expect(report.copied.sort()).toEqual(CORPUS.map((c) => c.name).filter((n) => !/^(large|streamed)\//.test(n)).sort());
      expect(report.destinations).toEqual([
        { destination: `s3://${one}/one/`, copied: 6, unchanged: 0, skipped: 0, failed: 0, outstanding: 0 },
        { destination: `s3://${two}/two/`, copied: 4, unchanged: 0, skipped: 0, failed: 2, outstanding: 0 },
      ]);
      await expectCopiesUnder(one, 'one/', CORPUS);
      expect((await listCopies(s3(), two)).sort()).toEqual(CORPUS.filter((c) => !/^(large|streamed)\//.test(c.name)).map((c) => `two/${c.name}`).sort());
      // The refused upload abandoned, none left open in either.
      expect(await openUploads(s3(), two)).toEqual([]);
      expect(await openUploads(s3(), one)).toEqual([]);
    } finally {
      await s3Proxy.stop();
    }
  }, 180_000);

  it('refuses a destination it cannot write with one line, before copying anything', async () => {
    const { azurite, s3Endpoint } = emulators();
    const out = await runCli([
      'copy', '--azure-connection-string', azurite.connectionString, '--container', container.containerName,
      '--s3-endpoint', s3Endpoint, '--bucket', first, '--prefix', 'refused/', '--also-to', 'no-such-bucket-azs3copy/x/',
    ]);
    expect(out.code).not.toBe(0);
    expect(out.stderr.trim().split('\n')).toHaveLength(1);
    expect(out.stderr).toMatch(/no-such-bucket-azs3copy/);
    expect(await listCopies(s3(), first, 'refused/')).toEqual([]);
  }, 60_000);

  it('takes "destinations" in a form it understands, and names the fault in one line when not', async () => {
    const { azurite, s3Endpoint } = emulators();
    const out = await runCli([
      'copy', '--azure-connection-string', azurite.connectionString, '--container', container.containerName,
      '--s3-endpoint', s3Endpoint, '--bucket', first, '--also-to', 's3://Not_A_Bucket/x/',
    ]);
    expect(out.code).toBe(2);
    expect(out.stderr).toBe('azs3copy: --also-to names "Not_A_Bucket", not a valid S3 bucket name: use 3-63 lowercase letters, digits, dots and hyphens\n');
  }, 60_000);
});

describe('blob events to two destinations', () => {
  let container: ContainerClient;
  let first: string;
  let second: string;
  let proxy: FaultProxy;
  let stop: () => Promise<unknown>;
  let url: string;
  const log = accessLog();
  let sequence = 0;

  beforeAll(async () => {
    container = await newContainer();
    [first, second] = await Promise.all([newBucket(), newBucket()]);
    const source = await proxiedSource(log);
    proxy = source.proxy;
    const { s3Endpoint } = emulators();
    const { child, done } = startCli([
      'watch', '--listen', '0', '--azure-connection-string', source.connectionString, '--container', container.containerName,
      '--s3-endpoint', s3Endpoint, '--bucket', first, '--also-to', `${second}/events/`, '--webhook-key', KEY,
      '--large-blob-mib', '8', '--part-mib', '5',
    ]);
    let out = '';
    url = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (d) => {
        out += d;
        const m = /at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
        if (m) resolve(m[1]);
      });
      void done.then((r) => reject(new Error(`watch ended early (${r.code}): ${r.stderr}`)));
    });
    stop = async () => {
      child.kill('SIGINT');
      return done;
    };
  });
  afterAll(async () => {
    await stop?.();
    await proxy?.stop();
  });

  it('puts each written blob in both buckets within seconds, reading it from Azure once', async () => {
    const specs: BlobSpec[] = [
      ...Array.from({ length: 20 }, (_, i) => ({ name: `ev/${i}.bin`, size: 1 + i * 1000 })),
      { name: 'ev/large.bin', size: 12 * MiB + 1, singleShot: false },
    ];
    await Promise.all(specs.map((spec) => uploadBlob(container, spec)));
    const changes: BlobChange[] = specs.map((s) => ({ container: container.containerName, name: s.name, kind: 'created', sequencer: ++sequence, size: s.size }));
    const at = Date.now();
    expect((await deliver(url, eventGridBatch(changes), { key: KEY })).status).toBe(200);
    const until = Date.now() + 120_000;
    for (;;) {
      const [a, b] = await Promise.all([listCopies(s3(), first), listCopies(s3(), second, 'events/')]);
      if (a.length === specs.length && b.length === specs.length) break;
      if (Date.now() > until) throw new Error(`timed out: ${a.length} and ${b.length} of ${specs.length}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    console.log(`21 BlobCreated events -> objects in both destinations in ${((Date.now() - at) / 1000).toFixed(2)} s`);
    await expectCopiesUnder(first, '', specs);
    await expectCopiesUnder(second, 'events/', specs);
    expect(log.bytesRead(specs)).toEqual(Object.fromEntries(specs.map((s) => [s.name, s.size])));
  }, 180_000);
});
