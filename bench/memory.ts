/**
 * Memory flat in the number of blobs: the azs3copy command copies 2,000 and then
 * 200,000 tiny blobs (1-256 bytes) from and to the fast stand-in stores
 * (bench/fast-stores.ts: the emulators would take most of an hour over 200,000),
 * and the two peaks are compared: the larger copy's peak RSS must be within 10% of
 * the smaller's. Node's heap figures are sampled through the run too, so a growth
 * can be told apart (V8 heap, Buffers, or neither).
 *
 *   npx tsx bench/memory.ts [counts...]       (default 2000 200000; part of npm run bench)
 *   BENCH_HEAP_SNAPSHOT_AT=60,300             also write heap snapshots (SIGUSR2) at those seconds of the largest run
 *   BENCH_NODE_ARGS=--trace-gc                Node flags for the copier (its stdout is kept beside the report)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { CreateBucketCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { AZURITE_KEY, useEmulatorAwsCredentials } from '../lambdas/local/emulators';
import { ROOT, azs3copyArgs, buildCli, copierEnv, runTimed, type Timed } from './cli';
import { FAST_ACCOUNT, fastContainer, tinySize } from './fast-stores';

export interface MemoryRun {
  blobs: number;
  bytes: number;
  timed: Timed;
  verified: string;
  peakHeapUsedMiB?: number;
  peakExternalMiB?: number;
  /** Peak RSS sampled until the run ended (its report's finishedAt): the copy without its closing report. */
  copyingRssMiB?: number;
}

export interface MemoryResult {
  runs: MemoryRun[];
  flat: boolean;
  growth: number;
}

async function startStores(): Promise<{ azure: string; s3: string; pid: number; stop: () => void }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/fast-stores.ts')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`bench/fast-stores.ts exited ${code}`)));
  });
  const kill = () => child.kill('SIGKILL');
  process.once('exit', kill);
  return { ...JSON.parse(line), pid: child.pid!, stop: () => (process.removeListener('exit', kill), kill()) };
}

async function verify(s3: S3Client, bucket: string, blobs: number, bytes: number): Promise<string> {
  let objects = 0;
  let total = 0;
  let token: string | undefined;
  do {
    const out = await s3.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    for (const o of out.Contents ?? []) {
      if (o.Key!.startsWith('.azs3copy-state/')) continue;
      objects++;
      total += o.Size ?? 0;
    }
    token = out.NextContinuationToken;
  } while (token);
  return objects === blobs && total === bytes ? 'ok' : `MISMATCH: ${objects} objects, ${total} bytes; want ${blobs}, ${bytes}`;
}

export async function benchMemory(counts: number[], say: (line: string) => void, dir = mkdtempSync(join(tmpdir(), 'azs3copy-mem-'))): Promise<MemoryResult> {
  useEmulatorAwsCredentials();
  buildCli();
  const stores = await startStores();
  const s3 = new S3Client({ endpoint: stores.s3, forcePathStyle: true, region: 'us-east-1' });
  const runs: MemoryRun[] = [];
  const snapshotsAt = (process.env.BENCH_HEAP_SNAPSHOT_AT ?? '').split(',').filter(Boolean).map(Number);
  try {
    for (const blobs of counts) {
      const bucket = `mem-${blobs}`;
      await s3.send(new CreateBucketCommand({ Bucket: bucket }));
      let bytes = 0;
      for (let i = 0; i < blobs; i++) bytes += tinySize(i);
      say(`memory: azs3copy copy of ${blobs.toLocaleString('en')} tiny blobs (fast stand-in stores)`);
      const connectionString = `DefaultEndpointsProtocol=http;AccountName=${FAST_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${stores.azure};`;
      const largest = blobs === Math.max(...counts);
      const nodeArgs = [
        ...(process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean),
        ...(largest && snapshotsAt.length ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${dir}`] : []),
      ];
      const timed = await runTimed(process.execPath, [...nodeArgs, ...azs3copyArgs({
        connectionString, container: fastContainer(blobs), bucket, s3Endpoint: stores.s3, report: join(dir, `report-${blobs}.json`),
      })], {
        dir, label: `mem-${blobs}`, heapEveryMs: 1000,
        env: copierEnv(),
        signals: largest ? snapshotsAt.map((atSeconds) => ({ atSeconds, signal: 'SIGUSR2' as const })) : [],
      });
      if (timed.code !== 0) throw new Error(`azs3copy exited ${timed.code} on ${blobs} blobs: ${timed.stderr.slice(-1500)}${timed.stdout.slice(-500)}`);
      const report = JSON.parse(readFileSync(join(dir, `report-${blobs}.json`), 'utf8')) as { copiedCount: number; finishedAt?: string };
      const endedAt = report.finishedAt ? (Date.parse(report.finishedAt) - timed.startedAtMs) / 1000 : Infinity;
      const copying = timed.rssSamples.filter((s) => s.t <= endedAt);
      const verified = report.copiedCount === blobs ? await verify(s3, bucket, blobs, bytes) : `report says ${report.copiedCount} copied`;
      const heap = timed.heapSamples ?? [];
      runs.push({
        blobs, bytes, timed, verified,
        peakHeapUsedMiB: heap.length ? Math.max(...heap.map((h) => h.heapUsed)) : undefined,
        peakExternalMiB: heap.length ? Math.max(...heap.map((h) => h.external)) : undefined,
        copyingRssMiB: copying.length ? Math.max(...copying.map((s) => s.rssMiB)) : undefined,
      });
      say(`memory: ${blobs} blobs in ${timed.wallSeconds.toFixed(1)} s, peak RSS ${timed.maxRssMiB.toFixed(0)} MiB, ${verified}`);
    }
  } finally {
    s3.destroy();
    stores.stop();
  }
  const small = runs[0].timed.maxRssMiB;
  const large = runs[runs.length - 1].timed.maxRssMiB;
  return { runs, growth: large / small - 1, flat: large <= small * 1.1 };
}

export function memoryTable(result: MemoryResult): string {
  const f = (n: number | undefined, d = 0) => (n === undefined ? '-' : n.toFixed(d));
  const rows = [
    ['blobs (1-256 B)', 'wall s', 'blobs/s', 'CPU s', 'CPU ms/blob', 'peak RSS MiB', 'of it until the run ended', 'peak heap used MiB', 'peak external MiB', 'copy verified'],
    ...result.runs.map((r) => [
      r.blobs.toLocaleString('en'), f(r.timed.wallSeconds, 1), f(r.blobs / r.timed.wallSeconds), f(r.timed.cpuSeconds, 1),
      f((1000 * r.timed.cpuSeconds) / r.blobs, 2), f(r.timed.maxRssMiB), f(r.copyingRssMiB), f(r.peakHeapUsedMiB), f(r.peakExternalMiB), r.verified,
    ]),
  ];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const lines = rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  '));
  const [a, b] = [result.runs[0], result.runs[result.runs.length - 1]];
  lines.push(`${result.flat ? 'met ' : 'NOT '} peak RSS flat in the number of blobs: ${f(a.timed.maxRssMiB)} MiB (${a.blobs.toLocaleString('en')}) -> ${f(b.timed.maxRssMiB)} MiB (${b.blobs.toLocaleString('en')}), ${result.growth >= 0 ? '+' : ''}${(100 * result.growth).toFixed(1)}% (bound +10%)`);
  if (a.copyingRssMiB !== undefined && b.copyingRssMiB !== undefined) {
    lines.push(`     until each run ended (without the closing report): ${f(a.copyingRssMiB)} -> ${f(b.copyingRssMiB)} MiB, ${(100 * (b.copyingRssMiB / a.copyingRssMiB - 1)).toFixed(1)}%`);
  }
  return lines.join('\n');
}

if (process.argv[1]?.endsWith('memory.ts')) {
  const counts = process.argv.slice(2).map(Number).filter((n) => n > 0);
  const t0 = Date.now();
  const say = (line: string) => process.stderr.write(`[memory ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${line}\n`);
  const dir = mkdtempSync(join(tmpdir(), 'azs3copy-mem-'));
  const result = await benchMemory(counts.length ? counts : [2000, 200_000], say, dir);
  process.stdout.write(memoryTable(result) + '\n');
  for (const r of result.runs) {
    const heap = r.timed.heapSamples ?? [];
    const every = Math.max(1, Math.floor(heap.length / 12));
    process.stdout.write(`${r.blobs}: heap over time (s: rss/heapUsed/external MiB) ${heap.filter((_, i) => i % every === 0 || i === heap.length - 1).map((h) => `${h.t.toFixed(0)}: ${h.rss}/${h.heapUsed}/${h.external}`).join(', ')}\n`);
  }
  say(`files in ${dir}`);
}
