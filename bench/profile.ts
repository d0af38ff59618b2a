/**
 * A quick look at one copy, for working on the copier (not the record: that is bench/run.ts).
 * Starts the emulators, seeds one data set, runs bench/copier.ts once, prebuilt as the
 * command is (bench/cli.ts; BENCH_TUNING and BENCH_STAGE_CONCURRENCY apply), optionally under
 * --cpu-prof) and prints its JSON line with the emulators' CPU beside it. The copier gets the allocator
 * setting the command gives itself (launcherTunables; BENCH_COPIER_GLIBC='' for glibc's defaults).
 *
 *   npx tsx bench/profile.ts small [count] [--cpu-prof DIR]
 *   npx tsx bench/profile.ts big [MiB] [--cpu-prof DIR]
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { BlobServiceClient } from '@azure/storage-blob';
import { mapLimit } from '../lambdas/core/batching';
import { useEmulatorAwsCredentials } from '../lambdas/local/emulators';
import { uploadBlob } from '../lambdas/local/seed';
import { copierEnv, launcherTunables, prebuiltCopier } from './cli';
import { cpuSecondsOf, diffCounts, startCountingAzurite, startCountingMoto } from './emulators';

const ROOT = resolve(fileURLToPath(import.meta.url), '../..');
const [set = 'small', sizeArg] = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && all[i - 1] !== '--cpu-prof');
const profIndex = process.argv.indexOf('--cpu-prof');
const profDir = profIndex > 0 ? process.argv[profIndex + 1] : undefined;
const MiB = 1024 * 1024;

useEmulatorAwsCredentials();
const azurite = await startCountingAzurite();
const moto = await startCountingMoto();
try {
  const azure = BlobServiceClient.fromConnectionString(azurite.connectionString);
  const container = azure.getContainerClient('prof');
  await container.createIfNotExists();
  if (set === 'small') {
    const count = Number(sizeArg ?? 2000);
    await mapLimit(Array.from({ length: count }, (_, i) => i), 32, (i) =>
      uploadBlob(container, { name: `small/${i % 50}/blob-${i}.bin`, size: 1024 + ((i * 2654435761) >>> 0) % (63 * 1024), singleShot: true }));
  } else {
    await uploadBlob(container, { name: 'big/blob.bin', size: Number(sizeArg ?? 1024) * MiB, singleShot: false });
  }
  const s3 = new S3Client({ endpoint: moto.endpoint, forcePathStyle: true, region: 'us-east-1' });
  await s3.send(new CreateBucketCommand({ Bucket: 'dest' }));
  s3.destroy();
  const [s3Before, azBefore] = await Promise.all([moto.counts(), azurite.counts()]);
  const motoCpu = cpuSecondsOf(moto.pid);
  const azCpu = cpuSecondsOf(azurite.pid);
  // Not spawnSync: the emulators' access logs are read by this process, and a blocked loop would stall them.
  const child = spawn(process.execPath, [
    ...(profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : []),
    await prebuiltCopier(), 'copy', '--azure-connection-string', azurite.connectionString,
    '--container', 'prof', '--bucket', 'dest', '--s3-endpoint', moto.endpoint,
  ], { cwd: ROOT, env: copierEnv(launcherTunables()), stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (c) => (out.stdout += c));
  child.stderr.on('data', (c) => (out.stderr += c));
  await new Promise((done) => child.on('close', done));
  const [s3After, azAfter] = await Promise.all([moto.counts(), azurite.counts()]);
  process.stderr.write(process.env.BENCH_VERBOSE === '1' ? out.stderr : out.stderr.slice(-3000));
  const line = JSON.parse(out.stdout.trim().split('\n').pop()!);
  console.log(JSON.stringify({
    ...line,
    motoCpu: +(cpuSecondsOf(moto.pid) - motoCpu).toFixed(2),
    azuriteCpu: +(cpuSecondsOf(azurite.pid) - azCpu).toFixed(2),
    s3: diffCounts(s3After, s3Before),
    azure: diffCounts(azAfter, azBefore),
  }));
} finally {
  await moto.stop();
  await azurite.stop();
}
