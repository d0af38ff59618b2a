/**
 * Issue 12's demonstration, by hand: `npx tsx scripts/timeout-demo.ts [--mib 1536] [--timeout 10]`.
 *
 * Starts Azurite and moto, uploads a 1.5 GiB blob in blocks with its Content-MD5 set
 * afterwards (as `azcopy --put-md5` does) and a 40 MiB blob whose Content-MD5 is wrong,
 * then runs the prebuilt command as users do: `azs3copy copy ... --function-timeout 10`.
 * Prints the command's exit code, its wall time, the report's outcome and each stage's
 * invocations and longest one. Everything it started is stopped before it exits.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { BlobServiceClient } from '@azure/storage-blob';
import { startAzurite, startMoto, useEmulatorAwsCredentials } from '../lambdas/local/emulators';
import { patternStream, uploadBlob } from '../lambdas/local/seed';

const MiB = 1024 * 1024;

async function md5Of(seed: string, size: number): Promise<Buffer> {
  const hash = createHash('md5');
  for await (const chunk of patternStream(seed, size)) hash.update(chunk as Buffer);
  return hash.digest();
}

async function main() {
  const { values } = parseArgs({ options: { mib: { type: 'string', default: '1536' }, timeout: { type: 'string', default: '10' } } });
  const size = Number(values.mib) * MiB;
  useEmulatorAwsCredentials();
  const [azurite, moto] = await Promise.all([startAzurite(), startMoto()]);
  try {
    const container = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient('timeout-demo');
    await container.create();
    const good = { name: 'verified.bin', size, singleShot: false };
    const bad = { name: 'wrong-md5.bin', size: 40 * MiB, singleShot: false };
    await uploadBlob(container, good);
    await uploadBlob(container, bad);
    await container.getBlobClient(good.name).setHTTPHeaders({ blobContentMD5: await md5Of(good.name, good.size) });
    await container.getBlobClient(bad.name).setHTTPHeaders({ blobContentMD5: await md5Of('other bytes', bad.size) });
    const s3 = new S3Client({ endpoint: moto.endpoint, forcePathStyle: true, region: 'us-east-1' });
    await s3.send(new CreateBucketCommand({ Bucket: 'timeout-demo' }));
    const report = join(mkdtempSync(join(tmpdir(), 'azs3copy-timeout-')), 'report.json');
    const args = [
      'bin/azs3copy.mjs', 'copy', '--azure-connection-string', azurite.connectionString, '--container', 'timeout-demo',
      '--s3-endpoint', moto.endpoint, '--bucket', 'timeout-demo', '--function-timeout', values.timeout!, '--quiet', '--report', report, '--log-file', join(tmpdir(), 'timeout-demo.log'),
    ];
    console.log(`azs3copy copy --container timeout-demo --bucket timeout-demo --function-timeout ${values.timeout} (a ${values.mib} MiB blob with its Content-MD5, a 40 MiB one with a wrong one)`);
    const started = Date.now();
    const run = spawnSync(process.execPath, args, { encoding: 'utf8', env: process.env });
    const seconds = (Date.now() - started) / 1000;
    const written = JSON.parse(readFileSync(report, 'utf8'));
    console.log(`log: ${join(tmpdir(), 'timeout-demo.log')}`);
    console.log(`exit ${run.status} after ${seconds.toFixed(1)} s; ${run.stderr.trim() || 'nothing on stderr'}`);
    console.log(`state ${written.state}; copied ${JSON.stringify(written.copied)}; failed ${JSON.stringify(written.failed)}`);
    for (const [stage, seen] of Object.entries(written.invocations as Record<string, { count: number; maxSeconds: number }>)) {
      console.log(`  ${stage.padEnd(22)} ${String(seen.count).padStart(5)} invocations, longest ${seen.maxSeconds.toFixed(2)} s`);
    }
  } finally {
    await Promise.all([azurite.stop(), moto.stop()]);
  }
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exit(3);
});
