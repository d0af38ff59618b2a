/**
 * `npm run bench -- --wan`: the copiers across a wide-area network. Both stores sit
 * behind bench/proxy.ts (in order delivery, added one-way latency, a bandwidth cap
 * per connection), Azure far away and S3 near, as for a copier running in AWS next
 * to its bucket:
 *
 *   Azure: BENCH_WAN_AZURE_MS (20) ms each way, BENCH_WAN_AZURE_MIBS (25) MiB/s per connection
 *   S3:    BENCH_WAN_S3_MS (1) ms each way, BENCH_WAN_S3_MIBS (0: no cap) MiB/s per connection
 *
 * and copies, with azs3copy, rclone (defaults) and rclone --transfers 32, each on a
 * fresh moto: 1,000 small blobs (1-64 KiB), and a large set (one 512 MiB blob and
 * three near the 100 MiB large-blob size: 99, 100, 101 MiB). Rounds interleave the
 * copiers (BENCH_WAN_ROUNDS, 2 by default; the fastest of each is reported).
 * BENCH_COPIERS and BENCH_WAN_SETS=small,large choose what runs; BENCH_KEEP_LOGS=1 keeps each
 * copier's output (with BENCH_AZS3COPY_ARGS="--verbose", azs3copy's log).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { BlobServiceClient } from '@azure/storage-blob';
import { mapLimit } from '../lambdas/core/batching';
import { MiB } from '../lambdas/core/context';
import { uploadBlob } from '../lambdas/local/seed';
import { buildCli } from './cli';
import { COPIER_LABEL, runCopier, type CopierName, type RunResult } from './copiers';
import { cpuSecondsOf, startCountingAzurite, startCountingMoto, type CountingAzurite } from './emulators';
import { startProxy, type Route, type RouteStats } from './proxy';

const num = (name: string, fallback: number) => (process.env[name] === undefined ? fallback : Number(process.env[name]));
export const WAN = {
  azure: { latencyMs: num('BENCH_WAN_AZURE_MS', 20), mibPerSecond: num('BENCH_WAN_AZURE_MIBS', 25) },
  s3: { latencyMs: num('BENCH_WAN_S3_MS', 1), mibPerSecond: num('BENCH_WAN_S3_MIBS', 0) },
};
const ROUNDS = Math.max(1, num('BENCH_WAN_ROUNDS', 2));
const SMALL_COUNT = num('BENCH_WAN_SMALL', 1000);
const COPIERS = (process.env.BENCH_COPIERS ?? 'azs3copy,rclone,rclone32').split(',') as CopierName[];
const WAN_SETS = (process.env.BENCH_WAN_SETS ?? 'small,large').split(',') as WanSet[];

export const SETS = {
  small: { container: 'wan-small', label: `${SMALL_COUNT.toLocaleString('en')} small blobs (1-64 KiB)` },
  large: { container: 'wan-large', label: 'large: 512 MiB + 99, 100, 101 MiB' },
} as const;
export type WanSet = keyof typeof SETS;

const smallSize = (i: number) => 1024 + (((i * 2654435761) >>> 0) % (63 * 1024));
const LARGE = [
  { name: 'large/blob-512m.bin', size: 512 * MiB },
  { name: 'large/blob-099m.bin', size: 99 * MiB },
  { name: 'large/blob-100m.bin', size: 100 * MiB },
  { name: 'large/blob-101m.bin', size: 101 * MiB },
];

function want(set: WanSet) {
  if (set === 'large') return { objects: LARGE.length, bytes: LARGE.reduce((n, b) => n + b.size, 0) };
  let bytes = 0;
  for (let i = 0; i < SMALL_COUNT; i++) bytes += smallSize(i);
  return { objects: SMALL_COUNT, bytes };
}

export async function seed(azure: BlobServiceClient, sets: WanSet[] = WAN_SETS) {
  const small = azure.getContainerClient(SETS.small.container);
  const large = azure.getContainerClient(SETS.large.container);
  await Promise.all([small.createIfNotExists(), large.createIfNotExists()]);
  await Promise.all([
    sets.includes('small') ? mapLimit(Array.from({ length: SMALL_COUNT }, (_, i) => i), 32, (i) =>
      uploadBlob(small, { name: `small/${String(i % 20).padStart(2, '0')}/blob-${String(i).padStart(5, '0')}.bin`, size: smallSize(i), singleShot: true })) : [],
    ...(sets.includes('large') ? LARGE.map((b) => uploadBlob(large, { ...b, singleShot: false })) : []),
  ]);
}

export interface WanRun extends RunResult {
  /** Connections each copier opened through the proxies, to Azure and to S3. */
  azureConnections: number;
  s3Connections: number;
  /** CPU seconds both proxies spent on the copy (the proxies run on the same two cores). */
  proxyCpu: number;
}

interface WanResults {
  small: (WanRun | undefined)[];
  large: (WanRun | undefined)[];
}

export const route = (target: string, w: { latencyMs: number; mibPerSecond: number }): Route => ({ target, ...w });
export const hostPort = (url: string) => new URL(url).host;
const delta = (after: RouteStats, before: RouteStats) => after.connections - before.connections;

/** One copy on a fresh moto, both stores reached through the proxies. */
async function copyAcross(copier: CopierName, set: WanSet, azurite: CountingAzurite, azureProxy: Awaited<ReturnType<typeof startProxy>>, dir: string, tag: string): Promise<WanRun> {
  const moto = await startCountingMoto();
  const s3Proxy = await startProxy([route(hostPort(moto.endpoint), WAN.s3)]);
  try {
    const client = new S3Client({ endpoint: moto.endpoint, forcePathStyle: true, region: 'us-east-1' });
    await client.send(new CreateBucketCommand({ Bucket: 'dest' }));
    client.destroy();
    const [azBefore] = await azureProxy.stats();
    const [s3Before] = await s3Proxy.stats();
    const proxyCpu = () => cpuSecondsOf(azureProxy.pid) + cpuSecondsOf(s3Proxy.pid);
    const proxyCpu0 = proxyCpu();
    const run = await runCopier({
      copier, container: SETS[set].container, bucket: 'dest', azurite, moto, want: want(set), dir, label: `wan-${copier}-${set}-${tag}`,
      at: { azure: `http://127.0.0.1:${azureProxy.ports[0]}/${azurite.account}`, s3: `http://127.0.0.1:${s3Proxy.ports[0]}` },
    });
    const [azAfter] = await azureProxy.stats();
    const [s3After] = await s3Proxy.stats();
    return { ...run, azureConnections: delta(azAfter, azBefore), s3Connections: delta(s3After, s3Before), proxyCpu: proxyCpu() - proxyCpu0 };
  } finally {
    s3Proxy.stop();
    await moto.stop();
  }
}

export async function benchWan(say: (line: string) => void, dir = mkdtempSync(join(tmpdir(), 'azs3copy-wan-'))): Promise<WanResults & { copiers: CopierName[] }> {
  buildCli();
  const azurite = await startCountingAzurite();
  const azureProxy = await startProxy([route(hostPort(azurite.endpoint), WAN.azure)]);
  const results: Record<CopierName, { small: WanRun[]; large: WanRun[] }> = Object.fromEntries(COPIERS.map((c) => [c, { small: [], large: [] }])) as never;
  try {
    say(`wan: seeding ${SMALL_COUNT} small blobs and the large set (${LARGE.map((b) => b.size / MiB).join(' + ')} MiB)`);
    await seed(BlobServiceClient.fromConnectionString(azurite.connectionString));
    for (let round = 1; round <= ROUNDS; round++) {
      for (const set of WAN_SETS) {
        for (const copier of COPIERS) {
          say(`wan round ${round}: ${COPIER_LABEL[copier]}, ${SETS[set].label}`);
          const run = await copyAcross(copier, set, azurite, azureProxy, dir, String(round));
          results[copier][set].push(run);
          say(`  ${run.seconds.toFixed(1)} s, ${run.verified}`);
          if (process.env.BENCH_VERBOSE) say(`  run ${run.runSeconds?.toFixed(2)} s of ${run.seconds.toFixed(2)} s; S3 ${JSON.stringify(run.s3ByMethod)} Azure ${JSON.stringify(run.azureByMethod)}`);
        }
      }
    }
  } finally {
    azureProxy.stop();
    await azurite.stop();
  }
  return { ...mergeFastest(results), copiers: COPIERS };
  function mergeFastest(r: Record<CopierName, { small: WanRun[]; large: WanRun[] }>) {
    return { small: COPIERS.map((c) => fastest(r[c].small)), large: COPIERS.map((c) => fastest(r[c].large)), all: r } as WanResults & { all: typeof r };
  }
}

const fastest = (runs: WanRun[]) => runs.reduce<WanRun | undefined>((a, b) => (a === undefined || b.seconds < a.seconds ? b : a), undefined);

export function wanReport(r: Awaited<ReturnType<typeof benchWan>> & { all?: Record<CopierName, { small: WanRun[]; large: WanRun[] }> }): string {
  const f = (n: number | undefined, d = 1) => (n === undefined || Number.isNaN(n) ? '-' : n.toFixed(d));
  const small = want('small');
  const large = want('large');
  const cols = r.copiers.map((c) => COPIER_LABEL[c]);
  const rows: string[][] = [['', ...cols]];
  const each = (set: 'small' | 'large', fn: (x: WanRun) => string) => r[set].map((x) => (x ? fn(x) : '-'));
  rows.push([`${SETS.small.label}, fastest of ${ROUNDS}`]);
  rows.push(['  blobs/s', ...each('small', (x) => f(small.objects / x.seconds, 0))]);
  rows.push(['  blobs/s in each round', ...r.copiers.map((c) => (r.all?.[c].small ?? []).map((x) => f(small.objects / x.seconds, 0)).join(', '))]);
  rows.push(['  wall s (whole process)', ...each('small', (x) => f(x.seconds))]);
  rows.push(['  CPU s', ...each('small', (x) => f(x.cpuSeconds, 2))]);
  rows.push(['  peak RSS MiB', ...each('small', (x) => f(x.maxRssMiB, 0))]);
  rows.push(['  connections to Azure / S3', ...each('small', (x) => `${x.azureConnections} / ${x.s3Connections}`)]);
  rows.push(['  requests to Azure / S3', ...each('small', (x) => `${x.azureRequests} / ${x.s3Requests}`)]);
  rows.push(['  CPU s of moto / Azurite / proxies', ...each('small', (x) => `${f(x.motoCpu)} / ${f(x.azuriteCpu)} / ${f(x.proxyCpu)}`)]);
  rows.push(['  copy verified', ...each('small', (x) => x.verified)]);
  rows.push([`${SETS.large.label} (${f(large.bytes / MiB, 0)} MiB), fastest of ${ROUNDS}`]);
  rows.push(['  MiB/s', ...each('large', (x) => f(large.bytes / MiB / x.seconds))]);
  rows.push(['  MiB/s in each round', ...r.copiers.map((c) => (r.all?.[c].large ?? []).map((x) => f(large.bytes / MiB / x.seconds)).join(', '))]);
  rows.push(['  wall s (whole process)', ...each('large', (x) => f(x.seconds))]);
  rows.push(['  CPU s/GiB', ...each('large', (x) => f(x.cpuSeconds / (large.bytes / 1024 / MiB), 2))]);
  rows.push(['  peak RSS MiB', ...each('large', (x) => f(x.maxRssMiB, 0))]);
  rows.push(['  connections to Azure / S3', ...each('large', (x) => `${x.azureConnections} / ${x.s3Connections}`)]);
  rows.push(['  requests to Azure / S3', ...each('large', (x) => `${x.azureRequests} / ${x.s3Requests}`)]);
  rows.push(['  CPU s of moto / Azurite / proxies', ...each('large', (x) => `${f(x.motoCpu)} / ${f(x.azuriteCpu)} / ${f(x.proxyCpu)}`)]);
  rows.push(['  copy verified', ...each('large', (x) => x.verified)]);
  const widths = rows[0].map((_, c) => Math.max(...rows.filter((x) => x.length > 1).map((x) => (x[c] ?? '').length)));
  const lines = [
    `WAN: Azure ${WAN.azure.latencyMs} ms each way, ${WAN.azure.mibPerSecond || 'no cap'}${WAN.azure.mibPerSecond ? ' MiB/s' : ''} per connection; ` +
      `S3 ${WAN.s3.latencyMs} ms each way, ${WAN.s3.mibPerSecond ? `${WAN.s3.mibPerSecond} MiB/s` : 'no cap'} per connection (bench/proxy.ts; a new connection costs a round trip)`,
    ...rows.map((x) => (x.length === 1 ? x[0] : x.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  '))),
  ];
  lines.push(...wanTargets(r).lines);
  return lines.join('\n');
}

/** Issue 16's WAN targets: small blobs at least rclone --transfers 32's rate, the large set at least twice rclone's best. */
export function wanTargets(r: Awaited<ReturnType<typeof benchWan>>): { small?: boolean; large?: boolean; lines: string[] } {
  const f = (n: number, d = 1) => n.toFixed(d);
  const small = want('small');
  const large = want('large');
  const i = r.copiers.indexOf('azs3copy');
  const mark = (ok: boolean) => (ok ? '  met ' : '  NOT ');
  const out: { small?: boolean; large?: boolean; lines: string[] } = { lines: [] };
  const a = r.small[i];
  const t32 = r.small[r.copiers.indexOf('rclone32')];
  if (a && t32) {
    out.small = a.seconds <= t32.seconds && a.verified === 'ok';
    out.lines.push(`${mark(out.small)} WAN small blobs/s >= rclone --transfers 32's: ${f(small.objects / a.seconds, 0)} vs ${f(small.objects / t32.seconds, 0)}`);
  }
  const bestR = Math.min(...r.copiers.map((c, j) => (c.startsWith('rclone') ? (r.large[j]?.seconds ?? Infinity) : Infinity)));
  const aLarge = r.large[i];
  if (aLarge && Number.isFinite(bestR)) {
    out.large = 2 * aLarge.seconds <= bestR && aLarge.verified === 'ok';
    out.lines.push(`${mark(out.large)} WAN large MiB/s >= 2x rclone's best: ${f(large.bytes / MiB / aLarge.seconds)} vs 2 x ${f(large.bytes / MiB / bestR)} = ${f((2 * large.bytes) / MiB / bestR)}`);
  }
  return out;
}

if (process.argv[1]?.endsWith('wan.ts')) {
  const t0 = Date.now();
  const say = (line: string) => process.stderr.write(`[wan ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${line}\n`);
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const { useEmulatorAwsCredentials } = await import('../lambdas/local/emulators');
  useEmulatorAwsCredentials();
  const dir = mkdtempSync(join(tmpdir(), 'azs3copy-wan-'));
  process.stdout.write(wanReport(await benchWan(say, dir)) + '\n');
  say(`copier output in ${dir}`);
}
