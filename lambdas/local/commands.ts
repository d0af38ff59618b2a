/**
 * What the CLI's commands do: `copy` runs the local pipeline against the endpoints
 * given, `check-secret` checks a secret file, `demo` starts the emulators, seeds a
 * demo container and copies it. `redrive` is in redrive-commands.ts.
 *
 * The modules that load the SDKs (the pipeline, the demo, the dead letters) are
 * imported when a command gets to them, so checking flags or a secret file loads none.
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { accountOfConnectionString, checkBucketName, checkContainerName, checkPrefix, parseBeginDate, type SourceConfig } from '../core/config';
import { MiB } from '../core/context';
import { ConfigError } from '../core/errors';
import { archiveFrom, sizeFrom, storageClassFrom, tierMapFrom, type Selection } from '../core/selection';
import { createLogger, registerSecret, type Level } from '../core/log';
import { startAzurite, startMoto, useEmulatorAwsCredentials } from './emulators';
import { startProgress, summary } from './progress';
import { endedBadly } from '../core/report';
import type { LocalCopyOptions, LocalRunResult } from './runner';
import { parseDestinations, type Destination } from '../core/destinations';
import { costSummary, planText, priceRegionFromFlags, readPlanFile } from './plan-commands';
import { describeSecret, readSecretFile } from './secret-file';

export type CliValues = Partial<Record<string, string | boolean | string[] | undefined>>;

/** A flag given any number of times (or comma-separated), as a list. */
export function list(values: CliValues, key: string): string[] {
  const v = values[key];
  const items = Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
  return items.flatMap((item) => item.split(',')).map((item) => item.trim()).filter(Boolean);
}

/** Containers from --container (repeated or comma-separated) or --all-containers. */
export function containersFromFlags(values: CliValues): string[] | 'all' {
  const named = list(values, 'container');
  if (values['all-containers']) {
    if (named.length > 0) throw new ConfigError('--container and --all-containers both say which containers: give one of them');
    return 'all';
  }
  if (named.length === 0) throw new ConfigError('--container is missing: name the Azure container to copy (or several, or --all-containers)');
  for (const name of named) checkContainerName(name, '--container');
  return named;
}

export function str(values: CliValues, key: string): string | undefined {
  const v = values[key];
  const one = Array.isArray(v) ? v[v.length - 1] : v;
  return typeof one === 'string' && one.trim() !== '' ? one : undefined;
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
  const containers = containersFromFlags(values);
  const container = containers === 'all' ? '' : containers[0];
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

/**
 * The JSON log: into --log-file, or with --verbose onto stderr, at info; otherwise only what warns of
 * trouble the summary does not tell (retries, failed invocations), and no line per failed blob, which the
 * summary and the report name with their reasons.
 */
function loggerFor(values: CliValues) {
  const file = str(values, 'log-file');
  const level: Level = values.verbose || file ? 'info' : 'warn';
  const write = file
    ? (line: string) => writeFileSync(file, line + '\n', { flag: 'a' })
    : (line: string) => process.stderr.write(line + '\n');
  const quietBlobs = !values.verbose && !file;
  return createLogger({}, {
    level,
    write: quietBlobs ? (line) => (/"message":"(blob failed|run ended)"/.test(line) ? undefined : write(line)) : write,
  });
}

/** Flags that the secret file answers; giving both would leave it unclear which one counts. */
const SECRET_FILE_CLASHES = ['azure-connection-string', 'azure-account', 'azure-tenant-id', 'azure-client-id', 'container'];

export function copyOptionsFromFlags(values: CliValues, env: NodeJS.ProcessEnv): LocalCopyOptions {
  const secretFile = str(values, 'secret-file');
  const secret = secretFile ? readSecretFile(secretFile) : undefined;
  const clash = secret && [...SECRET_FILE_CLASHES, 'all-containers'].find((flag) => str(values, flag) || values[flag] === true);
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
  const functionTimeout = positive(values, 'function-timeout');
  if (functionTimeout !== undefined && functionTimeout < 3) {
    throw new ConfigError(`--function-timeout is ${functionTimeout}: give at least 3 seconds (a stage needs time to record what it did)`);
  }
  return {
    source,
    selection: selectionFromFlags(values, secret?.selection),
    dryRun: values['dry-run'] === true ? true : secret?.dryRun,
    plan: str(values, 'plan') ? readPlanFile(str(values, 'plan')!) : undefined,
    priceRegion: priceRegionFromFlags(values),
    bucket,
    also: alsoFromFlags(values, secret?.also),
    s3Endpoint,
    prefix,
    beginDate: beginDate === undefined ? secret?.beginDate : parseBeginDate('--begindate', beginDate),
    isActive: secret?.isActive,
    largeBlobBytes: largeMiB ? Math.round(largeMiB * MiB) : undefined,
    partBytes: partMiB ? Math.round(partMiB * MiB) : undefined,
    concurrency: concurrency ? { download: concurrency } : undefined,
    functionTimeoutSeconds: functionTimeout,
    log: loggerFor(values),
  };
}

/** Further destinations: `--also-to` (each BUCKET[/PREFIX], as often as needed), else the secret file's `destinations`. */
export function alsoFromFlags(values: CliValues, fromSecret: Destination[] | undefined): Destination[] | undefined {
  const given = list(values, 'also-to');
  return given.length > 0 ? parseDestinations(given, '--also-to') : fromSecret;
}

/** The run's selection from the flags, each flag overriding the secret file's key (the containers come from one or the other). */
export function selectionFromFlags(values: CliValues, fromSecret: Partial<Selection> | undefined): Partial<Selection> {
  const base = fromSecret ?? {};
  const include = list(values, 'include');
  const exclude = list(values, 'exclude');
  const minSize = str(values, 'min-size');
  const maxSize = str(values, 'max-size');
  const filters = {
    include: include.length ? include : base.filters?.include,
    exclude: exclude.length ? exclude : base.filters?.exclude,
    minSize: minSize !== undefined ? sizeFrom(minSize, '--min-size') : base.filters?.minSize,
    maxSize: maxSize !== undefined ? sizeFrom(maxSize, '--max-size') : base.filters?.maxSize,
  };
  if (filters.minSize !== undefined && filters.maxSize !== undefined && filters.minSize > filters.maxSize) {
    throw new ConfigError(`--min-size (${filters.minSize} bytes) is more than --max-size (${filters.maxSize} bytes): no blob could be copied`);
  }
  const storageClass = str(values, 'storage-class');
  const tierMap = str(values, 'tier-map');
  const archive = str(values, 'archive');
  const maxDeletes = str(values, 'max-deletes');
  if (maxDeletes !== undefined && !/^\d+$/.test(maxDeletes)) throw new ConfigError(`--max-deletes is "${maxDeletes}": give a whole number of objects`);
  return {
    containers: base.containers ?? (values.container || values['all-containers'] ? containersFromFlags(values) : undefined),
    filters: Object.values(filters).some((v) => v !== undefined) ? filters : undefined,
    mirror: values.mirror === true ? true : base.mirror,
    maxDeletes: maxDeletes !== undefined ? Number(maxDeletes) : base.maxDeletes,
    writing: {
      storageClass: storageClass ? storageClassFrom(storageClass, '--storage-class') : base.writing?.storageClass,
      tierMap: tierMap ? tierMapFrom(tierMap, '--tier-map') : base.writing?.tierMap,
    },
    archive: archive ? archiveFrom(archive, '--archive') : base.archive,
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
  if (result.plan) {
    // A dry run: its report is the plan (also in the bucket, where the run's report goes).
    if (reportFile) writeFileSync(reportFile, JSON.stringify(result.plan, null, 2) + '\n');
    process.stdout.write(planText(result.plan));
    if (result.plan.location) process.stdout.write(`plan in the bucket: s3://${result.plan.location.bucket}/${result.plan.location.html} (and .json)\n`);
    if (reportFile) process.stdout.write(`plan written to ${reportFile}\n`);
    return { result, code: 0 };
  }
  if (reportFile) writeFileSync(reportFile, JSON.stringify(result.report, null, 2) + '\n');
  process.stdout.write(summary(result.report));
  process.stdout.write(costSummary(result.report.costs));
  if (reportFile) process.stdout.write(`report written to ${reportFile}\n`);
  process.stdout.write(await deadLetterNote(result));
  return { result, code: endedBadly(result.report) ? 1 : 0 };
}

/** Where the run's dead letters wait, and how to send them again; a local file when the bucket would not take them. */
async function deadLetterNote(result: LocalRunResult): Promise<string> {
  const count = result.deadLetters.length;
  if (count === 0) return '';
  const what = `${count} message${count === 1 ? ' was' : 's were'} dead-lettered`;
  if (result.deadLettersKeptAt) {
    return `${what}; they are kept in ${result.deadLettersKeptAt}: fix the cause, then run "azs3copy redrive" with the same options\n`;
  }
  const file = resolve(`azs3copy-dead-letters-${result.report.runId}.json`);
  const { deadLetterFile } = await import('./dead-letters');
  writeFileSync(file, JSON.stringify(deadLetterFile(result.report.runId, result.deadLetters), null, 2) + '\n');
  return `${what}; the bucket would not take them (${result.deadLettersNotKept}), so they are kept in ${file}: ` +
    `fix the cause, then run "azs3copy redrive --dead-letters ${file}" with the same options\n`;
}

export async function copyCommand(values: CliValues, env: NodeJS.ProcessEnv): Promise<number> {
  const options = copyOptionsFromFlags(values, env);
  const { runLocalCopy } = await import('./runner');
  return (await runWithProgress(values, (onStart) => runLocalCopy({ ...options, onStart }))).code;
}

export function checkSecretCommand(path: string): number {
  process.stdout.write(describeSecret(path, readSecretFile(path)) + '\n');
  return 0;
}

export async function demoCommand(values: CliValues): Promise<number> {
  useEmulatorAwsCredentials();
  process.stdout.write('starting Azurite and moto on free loopback ports...\n');
  // The SDKs and the pipeline load while the emulators start.
  const [[azurite, moto], [{ CreateBucketCommand }, { BlobServiceClient }, { s3Client }, { DEMO_BLOBS, DEMO_CONTAINER, DEMO_BUCKET, seedDemo, verifyCopies }, { runLocalCopy }]] =
    await Promise.all([
      Promise.all([startAzurite(), startMoto()]),
      Promise.all([import('@aws-sdk/client-s3'), import('@azure/storage-blob'), import('../core/stores/s3-sink'), import('./demo'), import('./runner')]),
    ]);
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
