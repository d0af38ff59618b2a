/**
 * What the CLI's commands do: `copy` runs the local pipeline against the endpoints
 * given, `check-secret` checks a secret file, `demo` starts the emulators, seeds a
 * demo container and copies it. `redrive` is in redrive-commands.ts.
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { BlobServiceClient } from '@azure/storage-blob';
import { accountOfConnectionString, checkBucketName, checkContainerName, checkPrefix, parseBeginDate, type SourceConfig } from '../core/config';
import { MiB } from '../core/context';
import { ConfigError } from '../core/errors';
import { createLogger, registerSecret, type Level } from '../core/log';
import { s3Client } from '../core/stores/s3-sink';
import { DEMO_BLOBS, DEMO_CONTAINER, DEMO_BUCKET, seedDemo, verifyCopies } from './demo';
import { startAzurite, startMoto, useEmulatorAwsCredentials } from './emulators';
import { deadLetterFile } from './dead-letters';
import { startProgress, summary } from './progress';
import { runLocalCopy, type LocalCopyOptions, type LocalRunResult } from './runner';
import { describeSecret, readSecretFile } from './secret-file';

export const USAGE = `azs3copy: copy an Azure Blob Storage container into an S3 bucket

Usage:
  azs3copy copy --azure-connection-string CONN --container NAME --bucket NAME
                [--s3-endpoint URL] [--prefix DEST_PREFIX] [--begindate ISO_DATE] [--report FILE.json]
  azs3copy copy --azure-account NAME --azure-tenant-id ID --azure-client-id ID --container NAME --bucket NAME ...
                (the client secret from the AZURE_CLIENT_SECRET environment variable, never a flag)
  azs3copy copy --secret-file SECRET.json [--bucket NAME] ...
                (the deployed secret's JSON: credentials, container, isactive, begindate, bucket, prefix)
  azs3copy check-secret SECRET.json   check a secret with the parser the functions use; prints no credential
  azs3copy redrive <the copy's options> [--run-id ID | --dead-letters FILE]
                send the messages a local run dead-lettered back to their stages, once the cause is fixed
  azs3copy redrive --queue-url URL --topic-arn ARN [--max-messages N]
                move a deployed pipeline's dead-letter queue back to the stage's topic
  azs3copy demo       start the local emulators, seed a demo container, copy it, verify it

Options:
  --azure-connection-string  or AZURE_STORAGE_CONNECTION_STRING in the environment
  --azure-blob-endpoint      blob endpoint, when not https://ACCOUNT.blob.core.windows.net
  --azure-authority-host     Entra ID authority, for sovereign clouds
  --secret-file FILE         take the source and switches from the secret's JSON instead of the flags above
  --s3-endpoint URL          an S3-compatible server (implies path-style addressing)
  --prefix P                 put objects under this key prefix (kept exactly as given)
  --begindate D              copy only blobs modified after D (ISO 8601; UTC if no zone)
  --report FILE              write the JSON report here
  --large-blob-mib N         blobs this large or larger are copied in parts (default 100)
  --part-mib N               part size (default 64; grown so no blob needs over 10,000 parts)
  --concurrency N            download invocations at once (default 6)
  --run-id ID                redrive only this run's dead letters (default: every run's kept in the bucket)
  --dead-letters FILE        redrive the dead letters kept in this file (when the bucket could not take them)
  --verbose / --quiet        more logging / no progress lines
  --log-file FILE            write the JSON log there instead of stderr

A local run keeps the messages it dead-letters in the bucket, under .azs3copy-state/dead-letters/RUN_ID.json.
AWS credentials and region come from the usual AWS environment variables.
Exit status: 0 when nothing failed (or the secret's isactive is off), 1 when some blobs failed
(or some messages could not be redriven), 2 on bad input, 3 on an unexpected error.
`;

export type CliValues = Partial<Record<string, string | boolean | undefined>>;

export function str(values: CliValues, key: string): string | undefined {
  const v = values[key];
  return typeof v === 'string' && v.trim() !== '' ? v : undefined;
}

export function positive(values: CliValues, key: string): number | undefined {
  const v = str(values, key);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new ConfigError(`--${key} is "${v}": give a positive number`);
  return n;
}

function blobEndpointFlag(values: CliValues): string | undefined {
  const blobEndpoint = str(values, 'azure-blob-endpoint');
  if (blobEndpoint && !URL.canParse(blobEndpoint)) throw new ConfigError(`--azure-blob-endpoint "${blobEndpoint}" is not a URL`);
  return blobEndpoint;
}

export function sourceFromFlags(values: CliValues, env: NodeJS.ProcessEnv): SourceConfig {
  const container = str(values, 'container');
  if (!container) throw new ConfigError('--container is missing: name the Azure container to copy');
  checkContainerName(container, '--container');
  const blobEndpoint = blobEndpointFlag(values);
  const connectionString = str(values, 'azure-connection-string') ?? env.AZURE_STORAGE_CONNECTION_STRING;
  if (connectionString) {
    registerSecret(connectionString);
    return { account: accountOfConnectionString(connectionString), container, blobEndpoint, credentials: { kind: 'connection-string', connectionString } };
  }
  const tenantId = str(values, 'azure-tenant-id') ?? env.AZURE_TENANT_ID;
  const clientId = str(values, 'azure-client-id') ?? env.AZURE_CLIENT_ID;
  const account = str(values, 'azure-account');
  if (!tenantId && !clientId) {
    throw new ConfigError(
      'no Azure credentials: give --azure-connection-string, or --azure-account, --azure-tenant-id and --azure-client-id with AZURE_CLIENT_SECRET set',
    );
  }
  const clientSecret = env.AZURE_CLIENT_SECRET;
  if (!tenantId) throw new ConfigError('--azure-tenant-id is missing: the service principal\'s directory (tenant) id');
  if (!clientId) throw new ConfigError('--azure-client-id is missing: the service principal\'s application (client) id');
  if (!clientSecret) throw new ConfigError('AZURE_CLIENT_SECRET is not set: export the service principal\'s client secret (it is never a flag)');
  if (!account) throw new ConfigError('--azure-account is missing: the storage account name');
  registerSecret(clientSecret);
  return {
    account,
    container,
    blobEndpoint,
    credentials: { kind: 'service-principal', tenantId, clientId, clientSecret, authorityHost: str(values, 'azure-authority-host') },
  };
}

function loggerFor(values: CliValues) {
  const level: Level = values.verbose ? 'info' : 'warn';
  const file = str(values, 'log-file');
  const write = file
    ? (line: string) => writeFileSync(file, line + '\n', { flag: 'a' })
    : (line: string) => process.stderr.write(line + '\n');
  return createLogger({}, { level, write });
}

/** Flags that the secret file answers; giving both would leave it unclear which one counts. */
const SECRET_FILE_CLASHES = ['azure-connection-string', 'azure-account', 'azure-tenant-id', 'azure-client-id', 'container'];

export function copyOptionsFromFlags(values: CliValues, env: NodeJS.ProcessEnv): LocalCopyOptions {
  const secretFile = str(values, 'secret-file');
  const secret = secretFile ? readSecretFile(secretFile) : undefined;
  const clash = secret && SECRET_FILE_CLASHES.find((flag) => str(values, flag));
  if (clash) throw new ConfigError(`--${clash} and --secret-file both say where to copy from: give one of them`);
  const source = secret ? { ...secret.source, blobEndpoint: blobEndpointFlag(values) ?? secret.source.blobEndpoint } : sourceFromFlags(values, env);
  const bucket = str(values, 'bucket') ?? secret?.bucket;
  if (!bucket) throw new ConfigError('--bucket is missing: name the destination S3 bucket');
  checkBucketName(bucket, '--bucket');
  const s3Endpoint = str(values, 's3-endpoint');
  if (s3Endpoint && !URL.canParse(s3Endpoint)) throw new ConfigError(`--s3-endpoint "${s3Endpoint}" is not a URL: give one like http://127.0.0.1:9000`);
  const prefix = typeof values.prefix === 'string' ? values.prefix : (secret?.prefix ?? '');
  checkPrefix(prefix, '--prefix');
  const beginDate = str(values, 'begindate');
  const largeMiB = positive(values, 'large-blob-mib');
  const partMiB = positive(values, 'part-mib');
  if (partMiB !== undefined && partMiB < 5) throw new ConfigError(`--part-mib is ${partMiB}: S3 parts are at least 5 MiB`);
  const concurrency = positive(values, 'concurrency');
  return {
    source,
    bucket,
    s3Endpoint,
    prefix,
    beginDate: beginDate === undefined ? secret?.beginDate : parseBeginDate('--begindate', beginDate),
    isActive: secret?.isActive,
    largeBlobBytes: largeMiB ? Math.round(largeMiB * MiB) : undefined,
    partBytes: partMiB ? Math.round(partMiB * MiB) : undefined,
    concurrency: concurrency ? { download: concurrency } : undefined,
    log: loggerFor(values),
  };
}

/** Run a copy or a redrive with a progress line, then print its summary and where its dead letters are. */
export async function runWithProgress<R extends LocalRunResult>(
  values: CliValues,
  run: (onStart: LocalCopyOptions['onStart']) => Promise<R>,
  notStarted = 'run not started',
) {
  let stop: (() => Promise<void>) | undefined;
  const result = await run(({ ledger, runId }) => {
    if (!values.quiet) stop = startProgress(ledger, runId);
  }).finally(() => stop?.());
  if (!result.started) {
    process.stdout.write(`${notStarted}: ${result.reason}\n`);
    return { result, code: 0 };
  }
  const reportFile = str(values, 'report');
  if (reportFile) writeFileSync(reportFile, JSON.stringify(result.report, null, 2) + '\n');
  process.stdout.write(summary(result.report));
  if (reportFile) process.stdout.write(`report written to ${reportFile}\n`);
  process.stdout.write(deadLetterNote(result));
  return { result, code: result.report.failed.length > 0 || result.report.outstanding.length > 0 ? 1 : 0 };
}

/** Where the run's dead letters wait, and how to send them again; a local file when the bucket would not take them. */
function deadLetterNote(result: LocalRunResult): string {
  const count = result.deadLetters.length;
  if (count === 0) return '';
  const what = `${count} message${count === 1 ? ' was' : 's were'} dead-lettered`;
  if (result.deadLettersKeptAt) {
    return `${what}; they are kept in ${result.deadLettersKeptAt}: fix the cause, then run "azs3copy redrive" with the same options\n`;
  }
  const file = resolve(`azs3copy-dead-letters-${result.report.runId}.json`);
  writeFileSync(file, JSON.stringify(deadLetterFile(result.report.runId, result.deadLetters), null, 2) + '\n');
  return `${what}; the bucket would not take them (${result.deadLettersNotKept}), so they are kept in ${file}: ` +
    `fix the cause, then run "azs3copy redrive --dead-letters ${file}" with the same options\n`;
}

export async function copyCommand(values: CliValues, env: NodeJS.ProcessEnv): Promise<number> {
  const options = copyOptionsFromFlags(values, env);
  return (await runWithProgress(values, (onStart) => runLocalCopy({ ...options, onStart }))).code;
}

export function checkSecretCommand(path: string): number {
  process.stdout.write(describeSecret(path, readSecretFile(path)) + '\n');
  return 0;
}

export async function demoCommand(values: CliValues): Promise<number> {
  useEmulatorAwsCredentials();
  process.stdout.write('starting Azurite and moto on free loopback ports...\n');
  const [azurite, moto] = await Promise.all([startAzurite(), startMoto()]);
  try {
    const container = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(DEMO_CONTAINER);
    process.stdout.write(`seeding ${DEMO_BLOBS.length} demo blobs into container "${DEMO_CONTAINER}"...\n`);
    await seedDemo(container);
    const client = s3Client({ endpoint: moto.endpoint });
    await client.send(new CreateBucketCommand({ Bucket: DEMO_BUCKET }));
    process.stdout.write(`copying to s3://${DEMO_BUCKET} at ${moto.endpoint}\n`);
    const { result, code } = await runWithProgress(values, (onStart) => runLocalCopy({
      source: { account: azurite.account, container: DEMO_CONTAINER, blobEndpoint: azurite.endpoint, credentials: { kind: 'connection-string', connectionString: azurite.connectionString } },
      bucket: DEMO_BUCKET,
      s3Endpoint: moto.endpoint,
      log: loggerFor(values),
      onStart,
    }));
    const verified = await verifyCopies(client, DEMO_BUCKET, '', result.report.copied);
    process.stdout.write(`verified ${verified.checked} copies byte for byte against the source pattern: ${verified.mismatches.length} mismatches\n`);
    for (const m of verified.mismatches) process.stdout.write(`  MISMATCH ${JSON.stringify(m)}\n`);
    if (!str(values, 'report')) process.stdout.write(JSON.stringify(result.report, null, 2) + '\n');
    // The demo's one too-long name is meant to fail; anything else failing is a real failure.
    const unexpected = result.report.failed.filter((f) => !DEMO_BLOBS.some((b) => b.name === f.name && b.expect === 'failed'));
    return verified.mismatches.length > 0 || unexpected.length > 0 ? 1 : code === 1 ? 0 : code;
  } finally {
    await Promise.all([azurite.stop(), moto.stop()]);
  }
}
