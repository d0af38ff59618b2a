/**
 * The copiers the bench compares, each run the way its users run it, in its own
 * process under /usr/bin/time: azs3copy as the prebuilt command (`node
 * bin/azs3copy.mjs copy`), rclone from Debian with the work-arounds this machine
 * needs (a container SAS URL for Azurite, no AWS_CA_BUNDLE, an encoding that keeps
 * every name, no HEAD after upload), with its default settings or more transfers.
 *
 * Both are timed as whole processes (start-up included: that is what a user
 * waits for); for azs3copy the run's own duration (from its report) is kept
 * too, so its start-up and closing can be shown apart.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { ContainerSASPermissions, SASProtocol, StorageSharedKeyCredential, generateBlobSASQueryParameters } from '@azure/storage-blob';
import { MiB } from '../lambdas/core/context';
import { AZURITE_ACCOUNT, AZURITE_KEY } from '../lambdas/local/emulators';
import { azs3copyArgs, copierEnv, runTimed, type Timed } from './cli';
import { cpuSecondsOf, diffCounts, type CountingEmulator } from './emulators';

export type CopierName = 'azs3copy' | 'rclone' | 'rclone16' | 'rclone32';
export const COPIER_LABEL: Record<CopierName, string> = { azs3copy: 'azs3copy', rclone: 'rclone', rclone16: 'rclone -t16', rclone32: 'rclone -t32' };
const RCLONE_TRANSFERS: Partial<Record<CopierName, number>> = { rclone16: 16, rclone32: 32 };
const RCLONE_ENCODING = 'Slash,BackSlash,Del,RightPeriod,InvalidUtf8';

/** Install rclone from Debian when missing; its version line. */
export function ensureRclone(say: (line: string) => void): string {
  const has = () => spawnSync('sh', ['-c', 'command -v rclone'], { encoding: 'utf8' }).status === 0;
  if (!has()) {
    say('rclone is missing: installing it from Debian (apt-get install -y rclone)');
    const apt = (args: string[]) => spawnSync('apt-get', args, { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    if (apt(['install', '-y', 'rclone']).status !== 0) {
      say('apt-get install failed; running apt-get update first');
      apt(['update']);
      if (apt(['install', '-y', 'rclone']).status !== 0 || !has()) {
        throw new Error('could not install rclone with apt-get (are we root, is the Debian mirror reachable?)');
      }
    }
  }
  return `${spawnSync('rclone', ['version'], { encoding: 'utf8' }).stdout.split('\n')[0].trim()} (Debian)`;
}

/** Where a copier finds the stores (the emulators themselves, or a proxy in front of them). */
export interface Endpoints {
  /** The Blob service's account URL, e.g. http://127.0.0.1:10000/devstoreaccount1. */
  azure: string;
  s3: string;
}

export const connectionStringFor = (azureEndpoint: string) =>
  `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${azureEndpoint};`;

/** A container SAS URL (list and read) for rclone, whose emulator mode is broken in 1.60. */
export function sasUrl(azureEndpoint: string, container: string): string {
  const sas = generateBlobSASQueryParameters(
    {
      containerName: container,
      permissions: ContainerSASPermissions.parse('rl'),
      startsOn: new Date(Date.now() - 60_000),
      expiresOn: new Date(Date.now() + 24 * 3600_000),
      protocol: SASProtocol.HttpsAndHttp,
    },
    new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY),
  ).toString();
  return `${azureEndpoint}/${container}?${sas}`;
}

export function commandFor(copier: CopierName, at: Endpoints, container: string, bucket: string, reportFile: string) {
  if (copier === 'azs3copy') {
    return {
      cmd: process.execPath,
      args: azs3copyArgs({
        connectionString: connectionStringFor(at.azure), container, bucket, s3Endpoint: at.s3, report: reportFile,
        // For a look inside, e.g. BENCH_AZS3COPY_ARGS="--verbose" (its log is kept with the run's output).
        extra: (process.env.BENCH_AZS3COPY_ARGS ?? '').split(' ').filter(Boolean),
      }),
      env: copierEnv(),
    };
  }
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.AWS_CA_BUNDLE;
  Object.assign(env, {
    RCLONE_CONFIG_AZ_TYPE: 'azureblob',
    RCLONE_CONFIG_AZ_SAS_URL: sasUrl(at.azure, container),
    RCLONE_CONFIG_S3_TYPE: 's3',
    RCLONE_CONFIG_S3_PROVIDER: 'Other',
    RCLONE_CONFIG_S3_ENDPOINT: at.s3,
    RCLONE_CONFIG_S3_ACCESS_KEY_ID: 'testing',
    RCLONE_CONFIG_S3_SECRET_ACCESS_KEY: 'testing',
    RCLONE_CONFIG_S3_REGION: 'us-east-1',
    RCLONE_CONFIG_S3_FORCE_PATH_STYLE: 'true',
  });
  // The SAS is the container's, so the source is AZ:container (keys then match azs3copy's: the blob names).
  const args = ['copy', `AZ:${container}`, `S3:${bucket}`, '--azureblob-encoding', RCLONE_ENCODING, '--s3-no-head',
    '-v', '--stats', '1h', '--stats-one-line', '--config', '/dev/null'];
  const transfers = RCLONE_TRANSFERS[copier];
  if (transfers) args.push('--transfers', String(transfers));
  return { cmd: 'rclone', args, env };
}

export interface RunResult {
  /** Wall seconds of the whole process: what a user waits for. */
  seconds: number;
  cpuSeconds: number;
  maxRssMiB: number;
  /** azs3copy: the run's own duration (its report), the rest being start-up, checks and the report's writing. */
  runSeconds?: number;
  objectsCopied: number;
  bytesCopied: number;
  s3Requests: number;
  azureRequests: number;
  s3ByMethod: Record<string, number>;
  azureByMethod: Record<string, number>;
  motoCpu: number;
  azuriteCpu: number;
  verified: string;
}

export async function verifyBucket(s3Endpoint: string, bucket: string, want: { objects: number; bytes: number }): Promise<string> {
  const client = new S3Client({ endpoint: s3Endpoint, forcePathStyle: true, region: 'us-east-1' });
  let objects = 0;
  let bytes = 0;
  let token: string | undefined;
  try {
    do {
      const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
      for (const o of out.Contents ?? []) {
        if (o.Key!.startsWith('.azs3copy-state/')) continue;
        objects++;
        bytes += o.Size ?? 0;
      }
      token = out.NextContinuationToken;
    } while (token);
  } finally {
    client.destroy();
  }
  return objects === want.objects && bytes === want.bytes ? 'ok' : `MISMATCH: ${objects} objects, ${bytes} bytes; want ${want.objects}, ${want.bytes}`;
}

/** What rclone says it copied: "Copied (new)" lines, and the closing stats line's bytes (rounded; exact when 0). */
function rcloneCopied(stderr: string): { objects: number; bytes: number } {
  const objects = (stderr.match(/: Copied \(/g) ?? []).length;
  const transferred = [...stderr.matchAll(/:\s+([\d.]+) (\w*)B \/ [\d.]+ \w*B,/g)].pop();
  const unit = { '': 1, Ki: 1024, Mi: MiB, Gi: 1024 * MiB, Ti: 1024 * 1024 * MiB } as Record<string, number>;
  return { objects, bytes: transferred ? Math.round(Number(transferred[1]) * (unit[transferred[2]] ?? 1)) : NaN };
}

export interface CopyTarget {
  copier: CopierName;
  container: string;
  bucket: string;
  /** Where the copier reaches the stores (proxied or not); the counts come from the emulators themselves. */
  at: Endpoints;
  azurite: CountingEmulator;
  moto: CountingEmulator;
  want: { objects: number; bytes: number };
  dir: string;
  label: string;
}

export async function runCopier(t: CopyTarget): Promise<RunResult> {
  const reportFile = join(t.dir, `${t.label}.report.json`);
  const { cmd, args, env } = commandFor(t.copier, t.at, t.container, t.bucket, reportFile);
  const [s3Before, azBefore] = await Promise.all([t.moto.counts(), t.azurite.counts()]);
  const motoCpu0 = cpuSecondsOf(t.moto.pid);
  const azCpu0 = cpuSecondsOf(t.azurite.pid);
  const run: Timed = await runTimed(cmd, args, { env, dir: t.dir, label: t.label });
  const motoCpu = cpuSecondsOf(t.moto.pid) - motoCpu0;
  const azuriteCpu = cpuSecondsOf(t.azurite.pid) - azCpu0;
  const [s3After, azAfter] = await Promise.all([t.moto.counts(), t.azurite.counts()]);
  if (run.code !== 0) {
    throw new Error(`${COPIER_LABEL[t.copier]} on ${t.container} exited ${run.code}: ${run.stderr.slice(-2000)}${run.stdout.slice(-1000)}`);
  }
  const s3 = diffCounts(s3After, s3Before);
  const az = diffCounts(azAfter, azBefore);
  let copied: { objects: number; bytes: number };
  let runSeconds: number | undefined;
  if (t.copier === 'azs3copy') {
    const report = JSON.parse(readFileSync(reportFile, 'utf8')) as { copied: string[]; copiedCount?: number; bytes: number; seconds?: number };
    copied = { objects: report.copiedCount ?? report.copied.length, bytes: report.bytes };
    runSeconds = report.seconds;
  } else {
    copied = rcloneCopied(run.stderr);
  }
  return {
    seconds: run.wallSeconds, cpuSeconds: run.cpuSeconds, maxRssMiB: run.maxRssMiB, runSeconds,
    objectsCopied: copied.objects, bytesCopied: copied.bytes,
    s3Requests: s3.total, azureRequests: az.total, s3ByMethod: s3.byMethod, azureByMethod: az.byMethod,
    motoCpu, azuriteCpu, verified: await verifyBucket(t.moto.endpoint, t.bucket, t.want),
  };
}
