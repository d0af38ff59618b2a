/**
 * The pipeline in a box, by hand: `npx tsx scripts/box.ts [--prefix bx] [--echo]`.
 *
 * Starts Azurite and the box (the stack as synthesized, in a moto that enforces
 * IAM, every function run from its bundle under its own role), seeds a small demo
 * container, points the secret at Azurite, starts a run with `{}` on
 * <prefix>-lambda01-qualify, waits until the pipeline is idle, and prints what
 * landed in the bucket, each function's invocations and what the box noticed.
 * Everything it started is stopped before it exits.
 */
import { parseArgs } from 'node:util';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { BlobServiceClient } from '@azure/storage-blob';
import { startAzurite, type AzuriteEmulator } from '../lambdas/local/emulators';
import { uploadBlob, uploadDirectoryMarker, type BlobSpec } from '../lambdas/local/seed';
import { startBox, type Box } from '../test/helpers/box/index';
import { formatStats } from '../test/helpers/box/report';

// The SDK's Node 20 support warning is noise here (the functions' own processes have it off as well).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const MiB = 1024 * 1024;

/** A little of everything: odd names (the box's moto checks their signatures as AWS does), both copy paths, every kind, an archived blob. */
const DEMO: BlobSpec[] = [
  { name: 'reports/summary.html', size: 4096, headers: { blobContentType: 'text/html; charset=utf-8' }, metadata: { department: 'finance' } },
  { name: 'reports/data.csv', size: 70_000 },
  { name: 'names/with space.txt', size: 12 },
  { name: 'names/plus+sign 100%25 ünïcödé.txt', size: 12 },
  { name: 'empty.txt', size: 0 },
  { name: 'disks/page.vhd', size: 512 * 64, kind: 'page' },
  { name: 'logs/append.log', size: 30_000, kind: 'append' },
  { name: 'large/video.mp4', size: 12 * MiB + 345, singleShot: false },
  { name: 'cold/archived.bin', size: 1000, tier: 'Archive' },
];

async function main() {
  const { values } = parseArgs({
    options: {
      prefix: { type: 'string', default: 'box' },
      echo: { type: 'boolean', default: false },
      // Deliver this share (0-1) of SNS notifications twice, as SNS and Lambda may.
      duplicates: { type: 'string', default: '0' },
    },
  });
  const prefix = values.prefix!;
  let azurite: AzuriteEmulator | undefined;
  let box: Box | undefined;
  try {
    const started = Date.now();
    [azurite, box] = await Promise.all([
      startAzurite({ inMemory: true }),
      startBox({
        context: { prefix, largeBlobBytes: 8 * MiB, partBytes: 5 * MiB, schedule: 'off' },
        functionTimeoutSeconds: 60,
        asyncRetryDelaysMs: [2_000, 4_000],
        duplicateRate: Number(values.duplicates),
        echo: values.echo,
      }),
    ]);
    console.log(`box up in ${Date.now() - started} ms (${JSON.stringify(box.timings)}), moto at ${box.endpoint}`);

    const container = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient('demo');
    await container.create();
    for (const spec of DEMO) await uploadBlob(container, spec);
    await uploadDirectoryMarker(container, 'reports');
    await box.putSecret({ connectionstring: azurite.connectionString, container: 'demo', isactive: 'True', begindate: '' });

    const run = Date.now();
    const answer = await box.invoke(`${prefix}-lambda01-qualify`, {});
    console.log(`qualify answered ${JSON.stringify(answer.Payload)}${answer.FunctionError ? ' (function error)' : ''}`);
    await box.idle({ timeoutMs: 120_000 });
    console.log(`idle after ${Date.now() - run} ms\n`);

    const bucket = box.outputs.BucketName;
    const listed = await box.s3().send(new ListObjectsV2Command({ Bucket: bucket }));
    console.log(`s3://${bucket}:`);
    for (const o of listed.Contents ?? []) console.log(`  ${String(o.Size).padStart(10)}  ${o.Key}`);
    console.log(`\n${formatStats(box.stats())}`);
    if (box.problems.length) console.log(`\nthe box saw:\n  ${box.problems.join('\n  ')}`);
    if (box.denials.length) console.log(`\nAccessDenied:\n  ${[...new Set(box.denials.map((d) => `${d.user.split('/').pop()} ${d.action} on ${d.resource}`))].join('\n  ')}`);
  } finally {
    await Promise.all([box?.stop(), azurite?.stop()]);
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exitCode = 1;
});
