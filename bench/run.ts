/**
 * `npm run bench`: azs3copy against rclone, copying the same data between the same
 * emulators (Azurite in memory, moto), in one invocation:
 *
 *   1. installs rclone from Debian if it is missing;
 *   2. starts the emulators with their access logs on (requests are counted there);
 *   3. seeds one 1 GiB blob, one 2 GiB blob and 5,000 small blobs;
 *   4. measures each emulator alone (the ceiling here): a plain read from Azurite,
 *      multipart writes to moto with and without CRC32C, moto's small PutObject rate;
 *   5. copies each data set with azs3copy, rclone (defaults) and rclone --transfers 32,
 *      each copier in its own process under /usr/bin/time, on a fresh moto, in rounds
 *      that interleave the copiers and re-measure moto alone first (the fastest round
 *      of each is reported, the others beside it): on a shared 2-core machine the same
 *      copy varies by a third from one minute to the next;
 *   6. prints the table and which of issue 6's targets are met;
 *   7. runs bench/bundles.ts;
 *   8. memory flat in the number of blobs: peak RSS of the azs3copy command over 2,000
 *      and 200,000 tiny blobs (bench/memory.ts);
 *   9. the checksum for the Lambda bundles: copier CPU per GiB with CRC32C native, CRC32C
 *      in JavaScript (the bundles today) and CRC32 by zlib (bench/checksum.ts);
 *  10. WAN (bench/wan.ts: both stores behind a latency and bandwidth proxy, azs3copy beside
 *      rclone and rclone --transfers 32, small blobs and a large set);
 *  11. `azs3copy --help` start-up (bench/startup.ts);
 *  12. prints issue 16's "Done when" targets, each met or not, from this one invocation.
 *
 * `npm run bench -- --only startup,loopback,wan,memory,checksum` runs some of these parts;
 * `npm run bench -- --wan` only the WAN part (the same as `--only wan`).
 *
 * Requests are counted in the emulators' own access logs, so rclone is counted the same
 * way; time, CPU and peak RSS are the whole process's, from /usr/bin/time, azs3copy run
 * as its users run it: the prebuilt command, `node bin/azs3copy.mjs copy` (bench/copiers.ts).
 *
 * Not part of `npm test`. Environment knobs (for quick looks, not for the record):
 *   BENCH_COPIERS=azs3copy,rclone,rclone16,rclone32   which copiers to run
 *   BENCH_SMALL=5000  BENCH_ROUNDS=3  BENCH_SMALL_ROUNDS=2  BENCH_SKIP_2G=1  BENCH_SKIP_RAW=1  BENCH_KEEP_LOGS=1
 *   BENCH_SKIP_BIG=1   loopback copies the small blobs only (no 1 and 2 GiB blobs, no emulator-alone ceilings):
 *                      issue 16's loopback target is on small blobs, and a loaded machine takes an hour over the rest
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { setPriority, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import {
  CompleteMultipartUploadCommand, CreateBucketCommand, CreateMultipartUploadCommand, DeleteObjectCommand,
  S3Client, UploadPartCommand,
} from '@aws-sdk/client-s3';
import { BlobServiceClient } from '@azure/storage-blob';
import { mapLimit } from '../lambdas/core/batching';
import { DEFAULT_PART_BYTES, MiB } from '../lambdas/core/context';
import { CRC32C_IMPLEMENTATION, crc32cBase64 } from '../lambdas/core/crc32c';
import { partSizeFor } from '../lambdas/core/plan';
import { s3Client, s3Sink } from '../lambdas/core/stores/s3-sink';
import { DEFAULT_LOCAL_CONCURRENCY } from '../lambdas/local/runner';
import { patternBytes, uploadBlob } from '../lambdas/local/seed';
import { useEmulatorAwsCredentials } from '../lambdas/local/emulators';
import { benchChecksums, checksumTable } from './checksum';
import { buildCli } from './cli';
import { COPIER_LABEL, ensureRclone, runCopier as runOne, type CopierName, type RunResult } from './copiers';
import { startCountingAzurite, startCountingMoto, type CountingAzurite, type CountingEmulator } from './emulators';
import { benchMemory, memoryTable } from './memory';
import { benchStartup, startupLine, STARTUP_BOUND_SECONDS, type StartupResult } from './startup';
import { benchWan, wanReport, wanTargets } from './wan';

const GiB = 1024 * MiB;
const ROOT = resolve(fileURLToPath(import.meta.url), '../..');
const SMALL_COUNT = Number(process.env.BENCH_SMALL ?? 5000);
const COPIERS = (process.env.BENCH_COPIERS ?? 'azs3copy,rclone,rclone32').split(',') as CopierName[];
const SKIP_BIG = process.env.BENCH_SKIP_BIG === '1';
const SKIP_2G = SKIP_BIG || process.env.BENCH_SKIP_2G === '1';
const SKIP_RAW = SKIP_BIG || process.env.BENCH_SKIP_RAW === '1';
/** Rounds of the 1 GiB copies (the noisiest figure) and of the small-blob copies. */
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));
const SMALL_ROUNDS = Math.max(1, Number(process.env.BENCH_SMALL_ROUNDS ?? 2));

const CONTAINERS = { big1: 'bench-1g', big2: 'bench-2g', small: 'bench-small' } as const;
type DataSet = keyof typeof CONTAINERS;

const work = mkdtempSync(join(tmpdir(), 'azs3copy-bench-'));
const t0 = Date.now();
const say = (line: string) => process.stderr.write(`[bench ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${line}\n`);

// ---------------------------------------------------------------- seeding

/** Small blob sizes: 1 KiB to 64 KiB, spread evenly and deterministically (about 32 KiB on average). */
function smallSize(i: number): number {
  return 1024 + ((i * 2654435761) >>> 0) % (63 * 1024);
}
const smallName = (i: number) => `small/${String(i % 50).padStart(2, '0')}/blob-${String(i).padStart(5, '0')}.bin`;

async function seed(azure: BlobServiceClient) {
  const container = (name: string) => azure.getContainerClient(name);
  await Promise.all(Object.values(CONTAINERS).map((c) => container(c).createIfNotExists()));
  const started = Date.now();
  const big = SKIP_BIG ? [] : [uploadBlob(container(CONTAINERS.big1), { name: 'big/blob-1g.bin', size: GiB, singleShot: false })];
  if (!SKIP_2G) big.push(uploadBlob(container(CONTAINERS.big2), { name: 'big/blob-2g.bin', size: 2 * GiB, singleShot: false }));
  const smalls = mapLimit(Array.from({ length: SMALL_COUNT }, (_, i) => i), 32, (i) =>
    uploadBlob(container(CONTAINERS.small), { name: smallName(i), size: smallSize(i), singleShot: true }));
  await Promise.all([...big, smalls]);
  say(`seeded in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

function totalOf(set: DataSet): { objects: number; bytes: number } {
  if (set === 'big1') return { objects: 1, bytes: GiB };
  if (set === 'big2') return { objects: 1, bytes: 2 * GiB };
  let bytes = 0;
  for (let i = 0; i < SMALL_COUNT; i++) bytes += smallSize(i);
  return { objects: SMALL_COUNT, bytes };
}

// ---------------------------------------------------------------- raw emulator speeds

interface Raw {
  azuriteReadMiBs: number;
  azuriteRangedReadMiBs: number;
  /** moto alone, once per round (the best is the ceiling). */
  motoWriteCrcRuns: number[];
  motoWritePlainMiBs: number;
  /** The first sweep over concurrencies; the best concurrency is then measured once per round. */
  motoSmallPutsByConcurrency: Record<number, number>;
  motoSmallBestConcurrency: number;
  motoSmallRuns: number[];
}

const best = (runs: number[]) => Math.max(...runs);
const crcCeiling = (raw: Raw) => best(raw.motoWriteCrcRuns);
const smallCeiling = (raw: Raw) => best(raw.motoSmallRuns);
const spread = (runs: number[], digits = 1) => runs.map((r) => r.toFixed(digits)).join(', ');

async function drain(stream: NodeJS.ReadableStream): Promise<number> {
  let n = 0;
  for await (const chunk of stream) n += (chunk as Buffer).length;
  return n;
}

async function rawAzuriteRead(azure: BlobServiceClient): Promise<{ single: number; ranged: number }> {
  const blob = azure.getContainerClient(CONTAINERS.big1).getBlobClient('big/blob-1g.bin');
  let started = performance.now();
  const whole = await blob.download();
  const n = await drain(whole.readableStreamBody!);
  const single = n / MiB / ((performance.now() - started) / 1000);
  // As the copier reads a large blob: part-sized ranges, as many at once as it runs parters.
  const part = partSizeFor(GiB, DEFAULT_PART_BYTES);
  const ranges = Array.from({ length: Math.ceil(GiB / part) }, (_, i) => i * part);
  started = performance.now();
  const sizes = await mapLimit(ranges, DEFAULT_LOCAL_CONCURRENCY.parter, async (offset) =>
    drain((await blob.download(offset, Math.min(part, GiB - offset))).readableStreamBody!));
  const ranged = sizes.reduce((a, b) => a + b, 0) / MiB / ((performance.now() - started) / 1000);
  return { single, ranged };
}

/**
 * A 1 GiB multipart upload as the copier sends one: the same part size and parts in
 * flight; with the checksum, each part whole with its CRC32C in the header (computed
 * beforehand, outside the timing, as the copier computes it while reading), through
 * the copier's own S3 client; without, a plain body with no checksum at all.
 */
async function rawMotoWrite(client: S3Client, bucket: string, key: string, checksum: boolean): Promise<number> {
  const part = partSizeFor(GiB, DEFAULT_PART_BYTES);
  const buffer = await patternBytes('raw', part);
  const count = Math.ceil(GiB / part);
  const crcs = new Map<number, string>();
  for (let n = 1; n <= count; n++) {
    const length = Math.min(part, GiB - (n - 1) * part);
    if (!crcs.has(length)) crcs.set(length, crc32cBase64(buffer.subarray(0, length)));
  }
  const started = performance.now();
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({
    Bucket: bucket, Key: key, ChecksumAlgorithm: checksum ? 'CRC32C' : undefined,
  }));
  const parts = await mapLimit(Array.from({ length: count }, (_, i) => i + 1), DEFAULT_LOCAL_CONCURRENCY.parter, async (PartNumber) => {
    const length = Math.min(part, GiB - (PartNumber - 1) * part);
    const out = await client.send(new UploadPartCommand({
      Bucket: bucket, Key: key, UploadId, PartNumber, Body: Readable.from([buffer.subarray(0, length)], { objectMode: false }),
      ContentLength: length, ChecksumAlgorithm: checksum ? 'CRC32C' : undefined, ChecksumCRC32C: checksum ? crcs.get(length) : undefined,
    }));
    return { PartNumber, ETag: out.ETag, ChecksumCRC32C: out.ChecksumCRC32C };
  });
  await client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }));
  const rate = GiB / MiB / ((performance.now() - started) / 1000);
  await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
  return rate;
}

const RAW_SMALL_PUTS = 1000;

/**
 * Small PutObjects as the copier sends them: through its own sink (one signed request per
 * object, whole, CRC32C in the header, Content-MD5), at one concurrency.
 */
async function rawMotoSmallPuts(moto: CountingEmulator, client: S3Client, bucket: string, concurrency: number): Promise<number> {
  const sink = s3Sink({ bucket, endpoint: moto.endpoint }, client);
  const bodies = await Promise.all(Array.from({ length: 64 }, (_, i) => patternBytes(`small-${i}`, smallSize(i))));
  const md5s = bodies.map((b) => createHash('md5').update(b).digest('base64'));
  const crcs = bodies.map((b) => crc32cBase64(b));
  const started = performance.now();
  await mapLimit(Array.from({ length: RAW_SMALL_PUTS }, (_, i) => i), concurrency, async (i) => {
    const n = i % bodies.length;
    await sink.put(`raw-small/c${concurrency}/${i}`, bodies[n], { metadata: {} }, { length: bodies[n].length, contentMd5: md5s[n], checksumCrc32c: crcs[n] });
  });
  return RAW_SMALL_PUTS / ((performance.now() - started) / 1000);
}

/** The copier's own S3 client (CRC32C, unsigned checksummed bodies), or a plain one with no checksum. */
async function rawClients(moto: CountingEmulator) {
  const client = s3Client({ endpoint: moto.endpoint });
  const plain = new S3Client({ endpoint: moto.endpoint, forcePathStyle: true, region: 'us-east-1', requestChecksumCalculation: 'WHEN_REQUIRED' });
  await client.send(new CreateBucketCommand({ Bucket: 'raw' }));
  return { client, plain, done: () => (client.destroy(), plain.destroy()) };
}

async function rawMotoWriteOn(moto: CountingEmulator, checksum: boolean): Promise<number> {
  const c = await rawClients(moto);
  try {
    return await rawMotoWrite(checksum ? c.client : c.plain, 'raw', 'raw-1g', checksum);
  } finally {
    c.done();
  }
}

async function rawMotoSmallPutsOn(moto: CountingEmulator, concurrency: number): Promise<number> {
  const c = await rawClients(moto);
  try {
    return await rawMotoSmallPuts(moto, c.client, 'raw', concurrency);
  } finally {
    c.done();
  }
}

/** Each emulator alone, before any copy: Azurite's reads, moto's write without checksum, moto's small-put sweep. */
async function measureRaw(azure: BlobServiceClient): Promise<Raw> {
  say('raw: reading the 1 GiB blob from Azurite');
  const read = await rawAzuriteRead(azure);
  say('raw: writing 1 GiB to moto without a checksum');
  const motoWritePlainMiBs = await onFreshMoto((moto) => rawMotoWriteOn(moto, false));
  say(`raw: ${RAW_SMALL_PUTS} small PutObjects to moto at concurrency 1, 4, 16, 64`);
  const byConcurrency: Record<number, number> = {};
  for (const c of [1, 4, 16, 64]) byConcurrency[c] = await onFreshMoto((moto) => rawMotoSmallPutsOn(moto, c));
  const bestConcurrency = Number(Object.entries(byConcurrency).sort((a, b) => b[1] - a[1])[0][0]);
  return {
    azuriteReadMiBs: read.single,
    azuriteRangedReadMiBs: read.ranged,
    motoWriteCrcRuns: [],
    motoWritePlainMiBs,
    motoSmallPutsByConcurrency: byConcurrency,
    motoSmallBestConcurrency: bestConcurrency,
    motoSmallRuns: [byConcurrency[bestConcurrency]],
  };
}

// ---------------------------------------------------------------- copiers

const containerOf = (set: DataSet) => CONTAINERS[set];

/** One copy by one copier into `bucket` on this moto, reaching both emulators directly. */
function runCopier(copier: CopierName, set: DataSet, bucket: string, azurite: CountingAzurite, moto: CountingEmulator, tag: string): Promise<RunResult> {
  return runOne({
    copier, container: containerOf(set), bucket, at: { azure: azurite.endpoint, s3: moto.endpoint }, azurite, moto,
    want: totalOf(set), dir: work, label: `${copier}-${set}-${tag}`,
  });
}

interface CopierResults {
  big1?: RunResult;
  big2?: RunResult;
  small?: RunResult;
  rerun?: RunResult;
  /** Every timed run, to show the spread between rounds. */
  big1Runs: number[];
  smallRuns: number[];
}

/** One copy on a fresh moto (same starting state each time, and no gigabytes of earlier copies in its memory). */
async function onFreshMoto<T>(fn: (moto: CountingEmulator) => Promise<T>): Promise<T> {
  const moto = await startCountingMoto();
  try {
    return await fn(moto);
  } finally {
    await moto.stop();
  }
}

async function copyOnce(copier: CopierName, set: DataSet, azurite: CountingAzurite, withRerun: boolean) {
  return onFreshMoto(async (moto) => {
    const client = new S3Client({ endpoint: moto.endpoint, forcePathStyle: true, region: 'us-east-1' });
    await client.send(new CreateBucketCommand({ Bucket: 'dest' }));
    client.destroy();
    const first = await runCopier(copier, set, 'dest', azurite, moto, 'first');
    const rerun = withRerun ? await runCopier(copier, set, 'dest', azurite, moto, 'rerun') : undefined;
    return { first, rerun };
  });
}

const faster = (a: RunResult | undefined, b: RunResult) => (a === undefined || b.seconds < a.seconds ? b : a);

/**
 * The copies, interleaved: each round runs every copier once on a data set, right after
 * measuring moto alone, so a machine whose load changes over the minutes treats all alike;
 * each copier's fastest round is reported (the spread is printed too).
 */
async function benchCopies(azure: BlobServiceClient, azurite: CountingAzurite, raw: Raw | undefined) {
  const results = Object.fromEntries(COPIERS.map((c) => [c, { big1Runs: [], smallRuns: [] } as CopierResults])) as Record<CopierName, CopierResults>;
  for (let round = 1; round <= (SKIP_BIG ? 0 : ROUNDS); round++) {
    if (raw) {
      say(`round ${round}: moto alone, 1 GiB multipart with CRC32C`);
      raw.motoWriteCrcRuns.push(await onFreshMoto((moto) => rawMotoWriteOn(moto, true)));
    }
    for (const copier of COPIERS) {
      say(`round ${round}: ${COPIER_LABEL[copier]}, 1 GiB blob`);
      const { first } = await copyOnce(copier, 'big1', azurite, false);
      results[copier].big1 = faster(results[copier].big1, first);
      results[copier].big1Runs.push(GiB / MiB / first.seconds);
    }
  }
  if (!SKIP_2G) {
    for (const copier of COPIERS) {
      say(`${COPIER_LABEL[copier]}, 2 GiB blob`);
      results[copier].big2 = (await copyOnce(copier, 'big2', azurite, false)).first;
    }
  }
  for (let round = 1; round <= SMALL_ROUNDS; round++) {
    if (raw) {
      say(`round ${round}: moto alone, ${RAW_SMALL_PUTS} small PutObjects at concurrency ${raw.motoSmallBestConcurrency}`);
      raw.motoSmallRuns.push(await onFreshMoto((moto) => rawMotoSmallPutsOn(moto, raw.motoSmallBestConcurrency)));
    }
    for (const copier of COPIERS) {
      // The unchanged re-run follows the first round's copy, on the same moto.
      say(`round ${round}: ${COPIER_LABEL[copier]}, ${SMALL_COUNT} small blobs${round === 1 ? ', then an unchanged re-run' : ''}`);
      const { first, rerun } = await copyOnce(copier, 'small', azurite, round === 1);
      results[copier].small = faster(results[copier].small, first);
      results[copier].smallRuns.push(SMALL_COUNT / first.seconds);
      if (rerun) results[copier].rerun = rerun;
    }
  }
  void azure;
  return results;
}

// ---------------------------------------------------------------- table

const f0 = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? '-' : n.toFixed(0));
const f1 = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? '-' : n.toFixed(1));
const f2 = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? '-' : n.toFixed(2));

function mibs(r: RunResult | undefined, bytes: number) {
  return r ? bytes / MiB / r.seconds : undefined;
}

function table(rows: string[][]): string {
  const cells = rows.filter((r) => r.length > 1);
  const widths = rows[0].map((_, c) => Math.max(...cells.map((r) => (r[c] ?? '').length)));
  return rows
    .map((r) => (r.length === 1 ? r[0] : r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ')))
    .join('\n');
}

function report(raw: Raw | undefined, results: Partial<Record<CopierName, CopierResults>>, rcloneVersion: string) {
  const copiers = COPIERS.filter((c) => results[c]);
  const small = totalOf('small');
  const col = (fn: (r: CopierResults) => string) => copiers.map((c) => fn(results[c]!));
  const perGiB = (n: number, bytes: number) => (n / (bytes / GiB));
  const rows: string[][] = [['', ...copiers.map((c) => COPIER_LABEL[c]), 'ceiling (emulator alone)']];
  const section = (title: string) => rows.push([title]);
  const bigRows = (set: 'big1' | 'big2', bytes: number) => {
    rows.push(['  MiB/s', ...col((r) => f1(mibs(r[set], bytes))), raw ? `${f1(crcCeiling(raw))} (moto write, CRC32C)` : '']);
    rows.push(['  wall s (whole process)', ...col((r) => f1(r[set]?.seconds)), '']);
    rows.push(['  of which the run (azs3copy report)', ...col((r) => f1(r[set]?.runSeconds)), '']);
    rows.push(['  CPU s/GiB (copier process)', ...col((r) => (r[set] ? f2(perGiB(r[set]!.cpuSeconds, bytes)) : '-')), '']);
    rows.push(['  peak RSS MiB', ...col((r) => f0(r[set]?.maxRssMiB)), '']);
    rows.push(['  S3 requests/GiB', ...col((r) => (r[set] ? f0(perGiB(r[set]!.s3Requests, bytes)) : '-')), '']);
    rows.push(['  Azure requests/GiB', ...col((r) => (r[set] ? f0(perGiB(r[set]!.azureRequests, bytes)) : '-')), '']);
    rows.push(['  moto / Azurite CPU s', ...col((r) => (r[set] ? `${f1(r[set]!.motoCpu)} / ${f1(r[set]!.azuriteCpu)}` : '-')), '']);
    rows.push(['  copy verified (count, bytes)', ...col((r) => r[set]?.verified ?? '-'), '']);
  };
  if (!SKIP_BIG) {
    section(`one 1 GiB blob (fastest of ${ROUNDS} rounds)`);
    bigRows('big1', GiB);
    rows.push(['  MiB/s in each round', ...col((r) => spread(r.big1Runs)), raw ? spread(raw.motoWriteCrcRuns) : '']);
  }
  if (!SKIP_2G) {
    section('one 2 GiB blob');
    bigRows('big2', 2 * GiB);
  }
  section(`${SMALL_COUNT} small blobs (1-64 KiB, ${f1(small.bytes / MiB)} MiB; fastest of ${SMALL_ROUNDS} rounds)`);
  rows.push(['  blobs/s', ...col((r) => f0(r.small ? SMALL_COUNT / r.small.seconds : undefined)), raw ? `${f0(smallCeiling(raw))} (moto PutObject/s)` : '']);
  rows.push(['  blobs/s in each round', ...col((r) => spread(r.smallRuns, 0)), raw ? spread(raw.motoSmallRuns, 0) : '']);
  rows.push(['  MiB/s', ...col((r) => f2(mibs(r.small, small.bytes))), '']);
  rows.push(['  CPU s/GiB (copier process)', ...col((r) => (r.small ? f1(perGiB(r.small.cpuSeconds, small.bytes)) : '-')), '']);
  rows.push(['  peak RSS MiB', ...col((r) => f0(r.small?.maxRssMiB)), '']);
  rows.push(['  S3 requests/GiB', ...col((r) => (r.small ? f0(perGiB(r.small.s3Requests, small.bytes)) : '-')), '']);
  rows.push(['  Azure requests/GiB', ...col((r) => (r.small ? f0(perGiB(r.small.azureRequests, small.bytes)) : '-')), '']);
  rows.push(['  moto / Azurite CPU s', ...col((r) => (r.small ? `${f1(r.small.motoCpu)} / ${f1(r.small.azuriteCpu)}` : '-')), '']);
  rows.push(['  copy verified (count, bytes)', ...col((r) => r.small?.verified ?? '-'), '']);
  section(`unchanged re-run over the ${SMALL_COUNT} small blobs`);
  rows.push(['  wall s (whole process)', ...col((r) => f2(r.rerun?.seconds)), '']);
  rows.push(['  objects / bytes copied', ...col((r) => (r.rerun ? `${r.rerun.objectsCopied} / ${r.rerun.bytesCopied}` : '-')), '']);
  rows.push(['  S3 requests', ...col((r) => (r.rerun ? `${r.rerun.s3Requests} ${methods(r.rerun.s3ByMethod)}` : '-')), '']);
  rows.push(['  Azure requests', ...col((r) => (r.rerun ? `${r.rerun.azureRequests} ${methods(r.rerun.azureByMethod)}` : '-')), '']);
  rows.push(['  CPU s (copier process)', ...col((r) => f2(r.rerun?.cpuSeconds)), '']);
  const a = results.azs3copy;
  if (a?.big1?.runSeconds !== undefined) {
    rows.push([`Every figure is the whole process's. azs3copy outside its run (start-up, checks, the closing report), 1 GiB blob: ${f1(a.big1.seconds - a.big1.runSeconds)} s`]);
  }

  const lines: string[] = [];
  lines.push('');
  lines.push(`azs3copy vs ${rcloneVersion}; Azurite (in memory) -> moto on ${cpuCount()} cores; load average ${loadAtStart} at start, ${loadavg()} at end`);
  lines.push(`azs3copy's CRC32C here: ${CRC32C_IMPLEMENTATION}`);
  lines.push('');
  lines.push(table(rows));
  if (raw) {
    lines.push('');
    lines.push('Each emulator alone (the ceiling here):');
    lines.push(table([
      ['', 'MiB/s'],
      ['  Azurite read, 1 GiB blob, one streamed download', f1(raw.azuriteReadMiBs)],
      [`  Azurite read, 1 GiB blob, ${partSizeFor(GiB, DEFAULT_PART_BYTES) / MiB} MiB ranges, ${DEFAULT_LOCAL_CONCURRENCY.parter} at once`, f1(raw.azuriteRangedReadMiBs)],
      [`  moto write, 1 GiB multipart (${partSizeFor(GiB, DEFAULT_PART_BYTES) / MiB} MiB parts, ${DEFAULT_LOCAL_CONCURRENCY.parter} at once), CRC32C, best of ${raw.motoWriteCrcRuns.length}  <- fair ceiling`, f1(crcCeiling(raw))],
      ['  moto write, same, no checksum', f1(raw.motoWritePlainMiBs)],
    ]));
    lines.push(`  moto small PutObject (as the copier sends it: CRC32C + Content-MD5) per second by concurrency: ${Object.entries(raw.motoSmallPutsByConcurrency).map(([c, r]) => `${c}: ${f0(r)}`).join(', ')}; then at ${raw.motoSmallBestConcurrency} before each round: ${spread(raw.motoSmallRuns.slice(1), 0)}`);
    lines.push('  The fair write ceiling is the one with CRC32C: azs3copy sends a CRC32C with every put and part, so moto does that work for it too.');
    lines.push('  Each is measured from this process with the copier\'s own S3 client, with no copy running (moto\'s write includes CompleteMultipartUpload),');
    lines.push('  right before each round of copies, so that the copiers and the ceiling see the same machine.');
  }
  lines.push('');
  lines.push(...targets(raw, results));
  return lines.join('\n') + '\n';
}

function methods(by: Record<string, number>): string {
  const e = Object.entries(by).sort();
  return e.length ? `(${e.map(([m, n]) => `${m} ${n}`).join(', ')})` : '';
}

function loadavg(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}
const loadAtStart = loadavg();

function cpuCount() {
  return Number(spawnSync('nproc', { encoding: 'utf8' }).stdout.trim()) || '?';
}

function targets(raw: Raw | undefined, results: Partial<Record<CopierName, CopierResults>>): string[] {
  const a = results.azs3copy;
  if (!a) return ['(azs3copy not run: no targets checked)'];
  const rclones = (['rclone', 'rclone16', 'rclone32'] as const).map((c) => results[c]).filter((r): r is CopierResults => r !== undefined);
  const small = totalOf('small');
  const out = ['Issue 6 targets:'];
  const mark = (ok: boolean | undefined) => (ok === undefined ? '  ?   ' : ok ? '  met ' : '  NOT ');
  const bigA = mibs(a.big1, GiB)!;
  const bigR = Math.max(...rclones.map((r) => mibs(r.big1, GiB) ?? 0));
  if (a.big1) out.push(`${mark(rclones.length ? bigA >= bigR : undefined)} large blob MiB/s >= rclone's best: ${f1(bigA)} vs ${f1(bigR)}`);
  if (raw && a.big1) out.push(`${mark(bigA >= 0.85 * crcCeiling(raw))} large blob MiB/s within 85% of moto's raw write (CRC32C): ${f1(bigA)} vs ${f1(crcCeiling(raw))} (${f0((100 * bigA) / crcCeiling(raw))}%)`);
  const smallA = SMALL_COUNT / a.small!.seconds;
  const smallR = Math.max(...rclones.map((r) => (r.small ? SMALL_COUNT / r.small.seconds : 0)));
  if (raw) out.push(`${mark(smallA >= 0.9 * smallCeiling(raw))} small blobs/s within 90% of moto's raw PutObject rate: ${f0(smallA)} vs ${f0(smallCeiling(raw))} (${f0((100 * smallA) / smallCeiling(raw))}%)`);
  out.push(`${mark(rclones.length ? smallA > smallR : undefined)} small blobs/s above rclone's best: ${f0(smallA)} vs ${f0(smallR)}`);
  const cpuA = a.big1?.cpuSeconds ?? NaN;
  const cpuR = Math.min(...rclones.map((r) => r.big1?.cpuSeconds ?? Infinity));
  if (a.big1) out.push(`${mark(rclones.length ? cpuA <= cpuR : undefined)} CPU s/GiB <= rclone's (1 GiB blob, best rclone): ${f2(cpuA)} vs ${f2(cpuR)}`);
  const cpuSmallA = a.small!.cpuSeconds / (small.bytes / GiB);
  const cpuSmallR = Math.min(...rclones.map((r) => (r.small ? r.small.cpuSeconds / (small.bytes / GiB) : Infinity)));
  out.push(`${mark(rclones.length ? cpuSmallA <= cpuSmallR : undefined)} CPU s/GiB <= rclone's (small blobs, best rclone): ${f1(cpuSmallA)} vs ${f1(cpuSmallR)}`);
  out.push(`${mark(a.rerun!.bytesCopied === 0 && a.rerun!.objectsCopied === 0)} unchanged re-run copies 0 bytes: ${a.rerun!.objectsCopied} objects, ${a.rerun!.bytesCopied} bytes, ${f2(a.rerun!.seconds)} s`);
  if (a.big2) {
    const grew = a.big2.maxRssMiB / a.big1!.maxRssMiB;
    out.push(`${mark(grew <= 1.2)} peak RSS flat when the blob doubles: ${f0(a.big1!.maxRssMiB)} MiB (1 GiB) -> ${f0(a.big2.maxRssMiB)} MiB (2 GiB)`);
  }
  const runs = Object.values(results).flatMap((r) => [r!.big1, r!.big2, r!.small, r!.rerun]);
  const allVerified = runs.every((x) => !x || x.verified === 'ok');
  out.push(`${mark(allVerified)} every copy verified in the bucket (object count and bytes)`);
  return out;
}

// ---------------------------------------------------------------- main

/**
 * Other work on a shared machine shifts the figures from one minute to the next: the
 * bench, and with it the emulators and copiers it starts, asks for a higher priority.
 */
function raisePriority(): string {
  try {
    setPriority(0, -10);
    return 'bench, emulators and copiers at nice -10';
  } catch {
    return 'normal priority (not allowed to raise it)';
  }
}

const PARTS = ['startup', 'loopback', 'wan', 'memory', 'checksum'];

/** `npm run bench` runs every part; `--only startup,loopback,wan,memory,checksum` some of them; `--wan` only the WAN part. */
function modeOf(argv: string[]) {
  const only = argv.includes('--only') ? argv[argv.indexOf('--only') + 1].split(',') : argv.includes('--wan') ? ['wan'] : PARTS;
  const unknown = only.filter((p) => !PARTS.includes(p));
  if (unknown.length) throw new Error(`unknown part ${unknown.join(', ')}: the parts are ${PARTS.join(', ')}`);
  return { parts: new Set(only) };
}

/** Issue 16's "Done when", each from this invocation (a part not run is marked "?"). */
function doneWhen(d: { startup?: StartupResult; loopback?: Partial<Record<CopierName, CopierResults>>; wan?: ReturnType<typeof wanTargets>; memory?: Awaited<ReturnType<typeof benchMemory>> }): string {
  const mark = (ok: boolean | undefined) => (ok === undefined ? '  ?   ' : ok ? '  met ' : '  NOT ');
  const lines = ['Issue 16, done when (this invocation):'];
  if (d.wan?.lines.length) lines.push(...d.wan.lines);
  else lines.push(`${mark(undefined)} WAN small blobs and large set (WAN part not run)`);
  const a = d.loopback?.azs3copy?.small;
  const rclones = (['rclone', 'rclone16', 'rclone32'] as const).map((c) => d.loopback?.[c]?.small).filter((r): r is RunResult => r !== undefined);
  if (a && rclones.length) {
    const best = Math.min(...rclones.map((r) => r.seconds));
    lines.push(`${mark(a.seconds <= best && a.verified === 'ok')} loopback small blobs/s >= rclone's (the best of ${rclones.length}): ${f0(SMALL_COUNT / a.seconds)} vs ${f0(SMALL_COUNT / best)}`);
  } else lines.push(`${mark(undefined)} loopback small blobs (loopback part not run)`);
  if (d.startup) lines.push(`${mark(d.startup.met)} azs3copy --help under ${STARTUP_BOUND_SECONDS} s (median wall): ${d.startup.help.median.toFixed(2)} s (bare node ${d.startup.bareNode.median.toFixed(2)} s)`);
  else lines.push(`${mark(undefined)} azs3copy --help start-up (startup part not run)`);
  if (d.memory) {
    const [x, y] = [d.memory.runs[0], d.memory.runs[d.memory.runs.length - 1]];
    lines.push(`${mark(d.memory.flat)} peak RSS flat from ${x.blobs.toLocaleString('en')} to ${y.blobs.toLocaleString('en')} blobs (within +10%): ${f0(x.timed.maxRssMiB)} -> ${f0(y.timed.maxRssMiB)} MiB (${d.memory.growth >= 0 ? '+' : ''}${(100 * d.memory.growth).toFixed(1)}%)`);
  } else lines.push(`${mark(undefined)} peak RSS flat in the number of blobs (memory part not run)`);
  return lines.join('\n');
}

async function main() {
  const mode = modeOf(process.argv.slice(2));
  const priority = raisePriority();
  useEmulatorAwsCredentials();
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const rcloneVersion = COPIERS.some((c) => c.startsWith('rclone')) ? ensureRclone(say) : 'rclone (not run)';
  buildCli();
  const header = () => `azs3copy vs ${rcloneVersion} on ${cpuCount()} cores; ${priority}; load average ${loadAtStart} at start, ${loadavg()} at end\n`;
  const done: Parameters<typeof doneWhen>[0] = {};
  if (mode.parts.has('startup')) {
    say('start-up: azs3copy --help');
    done.startup = benchStartup();
    process.stdout.write(`\nStart-up (bench/startup.ts; load average ${loadavg()}):\n${startupLine(done.startup)}\n`);
  }
  if (mode.parts.has('loopback')) done.loopback = await loopback(rcloneVersion, priority);
  if (mode.parts.has('wan')) {
    const result = await benchWan(say);
    done.wan = wanTargets(result);
    process.stdout.write(`\nWAN (bench/wan.ts; load average ${loadavg()} at its end):\n${wanReport(result)}\n`);
  }
  if (mode.parts.has('memory')) {
    done.memory = await benchMemory([2000, 200_000], say);
    process.stdout.write(`\nMemory flat in the number of blobs (bench/memory.ts: the azs3copy command, fast stand-in stores, tiny blobs; load average ${loadavg()} at its end):\n${memoryTable(done.memory)}\n`);
  }
  if (mode.parts.has('checksum')) {
    const checksums = await benchChecksums(say);
    process.stdout.write(`\nChecksums (bench/checksum.ts: a 1 GiB copy, Azurite -> moto, copier CPU around the copy):\n${checksumTable(checksums)}\n`);
  }
  process.stdout.write(`\n${doneWhen(done)}\n\n${header()}`);
  if (process.env.BENCH_KEEP_LOGS !== '1') rmSync(work, { recursive: true, force: true });
  say(`total ${((Date.now() - t0) / 1000 / 60).toFixed(1)} min`);
}

/** The copies on loopback: the emulators reached directly, azs3copy beside rclone, then bench/bundles.ts. */
async function loopback(rcloneVersion: string, priority: string): Promise<Partial<Record<CopierName, CopierResults>>> {
  say(`${rcloneVersion}; starting Azurite (in memory) and moto`);
  const azurite = await startCountingAzurite();
  let results: Partial<Record<CopierName, CopierResults>> = {};
  let raw: Raw | undefined;
  try {
    const azure = BlobServiceClient.fromConnectionString(azurite.connectionString);
    say(`seeding: 1 GiB${SKIP_2G ? '' : ' and 2 GiB'} blobs, ${SMALL_COUNT} small blobs`);
    await seed(azure);
    if (!SKIP_RAW) raw = await measureRaw(azure);
    results = await benchCopies(azure, azurite, raw);
  } finally {
    await azurite.stop();
  }
  process.stdout.write(report(raw, results, `${rcloneVersion}; ${priority}`));
  writeFileSync(join(work, 'results.json'), JSON.stringify({ raw, results }, null, 2));
  say(`raw results in ${join(work, 'results.json')}`);

  const bundles = join(ROOT, 'bench/bundles.ts');
  if (existsSync(bundles)) {
    process.stdout.write('\nbench/bundles.ts:\n');
    const out = spawnSync('npx', ['tsx', bundles], { cwd: ROOT, stdio: 'inherit' });
    if (out.status !== 0) process.stdout.write(`bench/bundles.ts exited ${out.status}\n`);
  }
  if (process.env.BENCH_KEEP_LOGS !== '1') rmSync(work, { recursive: true, force: true });
  return results;
}

main().catch((error) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
