/**
 * Choosing the small-blob concurrency defaults by measurement: bench/copier.ts (prebuilt as the command is)
 * copies the WAN bench's small blobs across the same proxy (bench/wan.ts's settings) with each setting of
 * local download invocations x blobs at once per invocation x blobs per message, interleaved over rounds,
 * each on a fresh moto. The copy's own seconds are reported (its start-up is the same for every setting).
 *
 *   npx tsx bench/tune.ts ['{"download":6,"downloadConcurrency":16,"blobsPerMessage":100}' ...]
 *   BENCH_TUNE_ROUNDS=2, BENCH_WAN_* as in bench/wan.ts (BENCH_WAN_AZURE_MS=0 BENCH_WAN_AZURE_MIBS=0 for loopback)
 */
import { spawn } from 'node:child_process';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { BlobServiceClient } from '@azure/storage-blob';
import { useEmulatorAwsCredentials } from '../lambdas/local/emulators';
import { ROOT, copierEnv, prebuiltCopier } from './cli';
import { connectionStringFor } from './copiers';
import { startCountingAzurite, startCountingMoto } from './emulators';
import { startProxy } from './proxy';
import { SETS, WAN, hostPort, route, seed } from './wan';

interface Setting { download: number; downloadConcurrency: number; blobsPerMessage: number }
const DEFAULT_SETTINGS: Setting[] = [
  { download: 6, downloadConcurrency: 16, blobsPerMessage: 100 },
  { download: 6, downloadConcurrency: 32, blobsPerMessage: 100 },
  { download: 12, downloadConcurrency: 16, blobsPerMessage: 50 },
  { download: 3, downloadConcurrency: 32, blobsPerMessage: 100 },
  { download: 6, downloadConcurrency: 8, blobsPerMessage: 25 },
];
const settings: Setting[] = process.argv.slice(2).length ? process.argv.slice(2).map((a) => JSON.parse(a)) : DEFAULT_SETTINGS;
const ROUNDS = Number(process.env.BENCH_TUNE_ROUNDS ?? 2);
const say = (line: string) => process.stderr.write(`[tune] ${line}\n`);

useEmulatorAwsCredentials();
const copier = await prebuiltCopier();
const azurite = await startCountingAzurite();
const azureProxy = await startProxy([route(hostPort(azurite.endpoint), WAN.azure)]);
const results = settings.map((s) => ({ s, seconds: [] as number[], cpu: [] as number[] }));
try {
  await seed(BlobServiceClient.fromConnectionString(azurite.connectionString), ['small']);
  for (let round = 1; round <= ROUNDS; round++) {
    for (const r of results) {
      const moto = await startCountingMoto();
      const s3Proxy = await startProxy([route(hostPort(moto.endpoint), WAN.s3)]);
      try {
        const s3 = new S3Client({ endpoint: moto.endpoint, forcePathStyle: true, region: 'us-east-1' });
        await s3.send(new CreateBucketCommand({ Bucket: 'dest' }));
        s3.destroy();
        const env = copierEnv({
          BENCH_STAGE_CONCURRENCY: JSON.stringify({ download: r.s.download }),
          BENCH_TUNING: JSON.stringify({ downloadConcurrency: r.s.downloadConcurrency, blobsPerMessage: r.s.blobsPerMessage }),
        });
        const child = spawn(process.execPath, [copier, 'copy', '--azure-connection-string', connectionStringFor(`http://127.0.0.1:${azureProxy.ports[0]}/${azurite.account}`),
          '--container', SETS.small.container, '--bucket', 'dest', '--s3-endpoint', `http://127.0.0.1:${s3Proxy.ports[0]}`], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        child.stdout.on('data', (c) => (out += c));
        await new Promise((done) => child.on('close', done));
        const line = JSON.parse(out.trim().split('\n').pop()!) as { seconds: number; copyCpuSeconds: number; copied: number };
        r.seconds.push(line.seconds);
        r.cpu.push(line.copyCpuSeconds);
        say(`round ${round} ${JSON.stringify(r.s)}: ${line.copied} copied in ${line.seconds.toFixed(2)} s, ${line.copyCpuSeconds.toFixed(2)} s CPU`);
      } finally {
        s3Proxy.stop();
        await moto.stop();
      }
    }
  }
} finally {
  azureProxy.stop();
  await azurite.stop();
}
console.log(`Azure ${WAN.azure.latencyMs} ms / ${WAN.azure.mibPerSecond} MiB/s, S3 ${WAN.s3.latencyMs} ms; copy seconds (least of ${ROUNDS}) and each round`);
for (const r of results) console.log(`${JSON.stringify(r.s).padEnd(70)} ${Math.min(...r.seconds).toFixed(2)} s  [${r.seconds.map((x) => x.toFixed(2)).join(', ')}]  CPU ${Math.min(...r.cpu).toFixed(2)} s`);
