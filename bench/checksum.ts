/**
 * Which checksum for the Lambda bundles: the copier's CPU per GiB for a 1 GiB copy
 * (Azurite -> moto, bench/copier.ts prebuilt, CPU taken around the copy itself) with
 *
 *   native-crc32c   CRC32C by @node-rs/crc32, as the CLI has it here (a native module);
 *   js-crc32c       CRC32C in JavaScript, as the Lambda bundles have it today (no native module there);
 *   zlib-crc32      S3's CRC32 by Node's zlib.crc32 (native, in the Node runtime itself).
 *
 * and each checksum alone over a 64 MiB buffer (GiB/s). Rounds interleave the variants
 * (BENCH_CHECKSUM_ROUNDS, 3 by default); the least CPU of each is reported.
 *
 *   npx tsx bench/checksum.ts        (part of npm run bench)
 */
import { spawn } from 'node:child_process';
import { crc32 } from 'node:zlib';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { BlobServiceClient } from '@azure/storage-blob';
import { MiB } from '../lambdas/core/context';
import { crc32cUpdate, crc32cUpdateJs } from '../lambdas/core/crc32c';
import { useEmulatorAwsCredentials } from '../lambdas/local/emulators';
import { uploadBlob } from '../lambdas/local/seed';
import { ROOT, copierEnv, launcherTunables, prebuiltCopier, type ChecksumVariant } from './cli';
import { startCountingAzurite, startCountingMoto, type CountingAzurite } from './emulators';

const GiB = 1024 * MiB;
const VARIANTS: ChecksumVariant[] = ['native-crc32c', 'js-crc32c', 'zlib-crc32'];
const ROUNDS = Math.max(1, Number(process.env.BENCH_CHECKSUM_ROUNDS ?? 3));

export interface ChecksumResult {
  variant: ChecksumVariant;
  /** GiB/s of the checksum alone over 64 MiB. */
  aloneGiBs: number;
  /** Copier CPU seconds per GiB (around the copy), each round; and its user part (the checksum is user time). */
  cpuRuns: number[];
  userRuns: number[];
  mibsRuns: number[];
}

function alone(variant: ChecksumVariant): number {
  const data = Buffer.alloc(64 * MiB, 0x5a);
  const fn = variant === 'native-crc32c' ? () => crc32cUpdate(-1, data) : variant === 'js-crc32c' ? () => crc32cUpdateJs(-1, data) : () => crc32(data, 0);
  fn();
  const started = performance.now();
  for (let i = 0; i < 4; i++) fn();
  return (4 * 64 * MiB) / GiB / ((performance.now() - started) / 1000);
}

async function copyOnce(copier: string, azurite: CountingAzurite): Promise<{ cpuPerGiB: number; userPerGiB: number; mibs: number }> {
  const moto = await startCountingMoto();
  try {
    const s3 = new S3Client({ endpoint: moto.endpoint, forcePathStyle: true, region: 'us-east-1' });
    await s3.send(new CreateBucketCommand({ Bucket: 'dest' }));
    s3.destroy();
    const child = spawn(process.execPath, [copier, 'copy', '--azure-connection-string', azurite.connectionString, '--container', 'checksum',
      '--bucket', 'dest', '--s3-endpoint', moto.endpoint], { cwd: ROOT, env: copierEnv(launcherTunables()), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (err += c));
    const code = await new Promise((done) => child.on('close', done));
    if (code !== 0) throw new Error(`copier exited ${code}: ${err.slice(-1500)}`);
    const line = JSON.parse(out.trim().split('\n').pop()!) as { copyCpuSeconds: number; copyUserSeconds: number; seconds: number; bytes: number };
    if (line.bytes !== GiB) throw new Error(`copied ${line.bytes} bytes, not 1 GiB`);
    return { cpuPerGiB: line.copyCpuSeconds, userPerGiB: line.copyUserSeconds, mibs: GiB / MiB / line.seconds };
  } finally {
    await moto.stop();
  }
}

export async function benchChecksums(say: (line: string) => void): Promise<ChecksumResult[]> {
  useEmulatorAwsCredentials();
  const copiers = Object.fromEntries(await Promise.all(VARIANTS.map(async (v) => [v, await prebuiltCopier(v)] as const))) as Record<ChecksumVariant, string>;
  const results = VARIANTS.map((variant) => ({ variant, aloneGiBs: alone(variant), cpuRuns: [] as number[], userRuns: [] as number[], mibsRuns: [] as number[] }));
  const azurite = await startCountingAzurite();
  try {
    const container = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient('checksum');
    await container.createIfNotExists();
    await uploadBlob(container, { name: 'big/blob-1g.bin', size: GiB, singleShot: false });
    for (let round = 1; round <= ROUNDS; round++) {
      for (const r of results) {
        say(`checksum round ${round}: 1 GiB copy with ${r.variant}`);
        const run = await copyOnce(copiers[r.variant], azurite);
        r.cpuRuns.push(run.cpuPerGiB);
        r.userRuns.push(run.userPerGiB);
        r.mibsRuns.push(run.mibs);
      }
    }
  } finally {
    await azurite.stop();
  }
  return results;
}

export function checksumTable(results: ChecksumResult[]): string {
  const label: Record<ChecksumVariant, string> = {
    'native-crc32c': 'CRC32C, @node-rs/crc32 (native; the CLI here)',
    'js-crc32c': 'CRC32C, JavaScript (the Lambda bundles today)',
    'zlib-crc32': 'CRC32, zlib.crc32 (native, in Node itself)',
  };
  const rows = [['checksum', 'alone GiB/s', 'alone CPU s/GiB', 'copier CPU s/GiB (least)', 'each round', 'of which user, each round', 'MiB/s each round'],
    ...results.map((r) => [
      label[r.variant], r.aloneGiBs.toFixed(2), (1 / r.aloneGiBs).toFixed(2), Math.min(...r.cpuRuns).toFixed(2), r.cpuRuns.map((c) => c.toFixed(2)).join(', '),
      r.userRuns.map((c) => c.toFixed(2)).join(', '), r.mibsRuns.map((m) => m.toFixed(0)).join(', '),
    ])];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ')).join('\n');
}

if (process.argv[1]?.endsWith('checksum.ts')) {
  const t0 = Date.now();
  const say = (line: string) => process.stderr.write(`[checksum ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${line}\n`);
  process.stdout.write(checksumTable(await benchChecksums(say)) + '\n');
}
