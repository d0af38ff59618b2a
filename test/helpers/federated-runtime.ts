/**
 * The deployed functions' path to Azure, run in a child process (Node reads
 * NODE_EXTRA_CA_CERTS, which must trust the test's certificate, only when it
 * starts): the AWS runtime (lambdas/core/aws-runtime.ts) reads its secret from
 * Secrets Manager and builds its Azure source from it, with the federated
 * credential, exactly as each function does. Everything comes from the environment,
 * as in Lambda.
 *
 *   node --import tsx federated-runtime.ts copy OUT     the local pipeline copies the secret's container, every
 *                                                      read going through the runtime's source; the report to OUT
 *   node --import tsx federated-runtime.ts qualify OUT  the qualify handler as Lambda calls it; its result to OUT
 *                                                      (its log, as in CloudWatch, on stdout)
 */
import { writeFileSync } from 'node:fs';
import { awsRuntime } from '../../lambdas/core/aws-runtime';
import { qualifyHandler } from '../../lambdas/core/handler';
import { createLogger } from '../../lambdas/core/log';
import type { RunSettings } from '../../lambdas/core/messages';
import type { BlobSource } from '../../lambdas/core/stores/types';
import { runLocalCopy } from '../../lambdas/local/runner';

const MiB = 1024 * 1024;
const [mode, out] = process.argv.slice(2);

async function copy(): Promise<void> {
  const { runtime } = awsRuntime('download');
  const config = await runtime.loadConfig();
  const bucket = process.env.AZS3COPY_BUCKET!;
  const settings: RunSettings = {
    account: config.source.account, container: config.source.container, blobEndpoint: config.source.blobEndpoint,
    bucket, prefix: '', largeBlobBytes: 6 * MiB, partBytes: 5 * MiB,
  };
  // What each stage's context holds in Lambda: the runtime's source for the run, looked up per message.
  const source = () => runtime.sourceFor(settings);
  const viaRuntime: BlobSource = {
    check: async () => (await source()).check(),
    listPage: async (continuation, size) => (await source()).listPage(continuation, size),
    properties: async (name, etag) => (await source()).properties(name, etag),
    read: async (name, etag, range) => (await source()).read(name, etag, range),
    rehydrate: async (name) => (await source()).rehydrate(name),
  };
  const result = await runLocalCopy({
    source: config.source,
    bucket,
    s3Endpoint: process.env.AZS3COPY_TEST_S3_ENDPOINT,
    largeBlobBytes: settings.largeBlobBytes,
    partBytes: settings.partBytes,
    wrapSource: () => viaRuntime,
    log: createLogger({}, { level: 'info', write: (line) => process.stdout.write(line + '\n') }),
  });
  writeFileSync(out, JSON.stringify(result.started ? result.report : { notStarted: result.reason }, null, 2));
}

async function qualify(): Promise<void> {
  const { runtime } = awsRuntime('qualify');
  const result = await qualifyHandler(() => runtime)({}, { getRemainingTimeInMillis: () => 300_000 });
  writeFileSync(out, JSON.stringify(result, null, 2));
}

(mode === 'copy' ? copy() : qualify()).then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
