/**
 * The deployment's settings, read from CDK context (`cdk.json` or `-c key=value`)
 * and checked once, with errors that name the key and the fix. Everything else
 * in lib/ takes a CopySettings and never reads context itself.
 */
import type { Node } from 'constructs';
import { parseDestinations, type Destination } from '../lambdas/core/destinations';
import { STAGE_NAMES, type StageName } from '../lambdas/core/stages';
import { checkPrefixCode } from './naming';
import { STAGE_DEPLOYMENTS, type FunctionSizing } from './stage-sizing';

export interface CopySettings {
  /** Names every resource. @default 'etl' */
  readonly prefix: string;
  /**
   * EventBridge schedule expression that starts qualify, or `off` for none.
   * @default 'rate(1 day)'
   */
  readonly schedule: string | undefined;
  /** An existing bucket to copy into; without it the stack creates one. @default - a new bucket */
  readonly bucketName?: string;
  /** The KMS key ARN that encrypts the existing bucket, if it uses one of its own. @default - none */
  readonly bucketKeyArn?: string;
  /** Keep object versions in the created bucket. @default false */
  readonly versioned: boolean;
  /** Key prefix for copies in the bucket. @default '' (the blob name is the key) */
  readonly destinationPrefix: string;
  /** Email address subscribed to the operator topic. @default - no subscription */
  readonly alarmEmail?: string;
  /** Days the functions' logs are kept. @default 30 */
  readonly logRetentionDays: number;
  /** Blobs this size or larger take the multipart path. @default - the handlers' default (100 MiB) */
  readonly largeBlobBytes?: number;
  /** Requested multipart part size. @default - the handlers' default (64 MiB) */
  readonly partBytes?: number;
  /** Blobs one download invocation copies at once. @default - the handlers' default (16) */
  readonly downloadConcurrency?: number;
  /** Each function's size, defaults from STAGE_DEPLOYMENTS merged with the `functions` context. */
  readonly functions: Record<StageName, FunctionSizing>;
  /** Minutes without progress, with blobs outstanding, after which a run is marked stalled. @default 30 */
  readonly stallAfterMinutes: number;
  /**
   * Further destinations (existing buckets): each blob is read once and written to the bucket and to each. The
   * functions may write only to these and the bucket; a KMS key of a bucket's own is granted too. @default - none
   */
  readonly moreDestinations: MoreDestination[];
}

export interface MoreDestination extends Destination {
  /** The KMS key that encrypts the bucket, when it has one of its own. */
  readonly keyArn?: string;
}

/** The prefix code when context gives none: function names read `etl-lambda01-qualify`. */
export const DEFAULT_PREFIX = 'etl';

const LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

type Context = Pick<Node, 'tryGetContext'>;

function text(node: Context, key: string): string | undefined {
  const value: unknown = node.tryGetContext(key);
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
    throw new Error(`context "${key}" must be a single value, not ${JSON.stringify(value)}`);
  }
  return String(value).trim();
}

function flag(node: Context, key: string, fallback: boolean): boolean {
  const value = text(node, key);
  if (value === undefined) return fallback;
  if (/^(true|yes|1)$/i.test(value)) return true;
  if (/^(false|no|0)$/i.test(value)) return false;
  throw new Error(`context "${key}" is "${value}": use true or false`);
}

function integer(value: unknown, key: string, min: number, max: number): number {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw new Error(`context "${key}" is ${JSON.stringify(value)}: use a whole number from ${min} to ${max}`);
  }
  return n;
}

function optionalInteger(node: Context, key: string, min: number, max: number): number | undefined {
  const value = text(node, key);
  return value === undefined ? undefined : integer(value, key, min, max);
}

function schedule(node: Context): string | undefined {
  const value = text(node, 'schedule') ?? 'rate(1 day)';
  if (/^(off|none|disabled)$/i.test(value)) return undefined;
  if (!/^(rate|cron)\(.+\)$/.test(value)) {
    throw new Error(
      `context "schedule" is "${value}": use an EventBridge expression such as "rate(1 day)" or "cron(0 2 * * ? *)", or "off"`,
    );
  }
  return value;
}

/** The `functions` context: an object, or its JSON text when given with -c. */
function functionSizes(node: Context): Record<StageName, FunctionSizing> {
  let raw: unknown = node.tryGetContext('functions') ?? {};
  if (typeof raw === 'string') {
    try {
      raw = JSON.parse(raw);
    } catch {
      throw new Error(`context "functions" is not valid JSON: write it like '{"parter":{"maxConcurrency":20}}'`);
    }
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new Error('context "functions" must be an object keyed by stage name, like {"parter":{"maxConcurrency":20}}');
  }
  const overrides = raw as Record<string, unknown>;
  for (const stage of Object.keys(overrides)) {
    if (!(STAGE_NAMES as readonly string[]).includes(stage)) {
      throw new Error(`context "functions" names "${stage}", which is not a stage: use one of ${STAGE_NAMES.join(', ')}`);
    }
  }
  const sizes = {} as Record<StageName, FunctionSizing>;
  for (const stage of STAGE_NAMES) {
    const given = (overrides[stage] ?? {}) as Partial<Record<keyof FunctionSizing, unknown>>;
    const base = STAGE_DEPLOYMENTS[stage].sizing;
    const where = (field: keyof FunctionSizing) => `functions.${stage}.${field}`;
    const fields = ['memoryMiB', 'timeoutMinutes', ...(base.maxConcurrency !== undefined ? ['maxConcurrency'] : []), 'reservedConcurrency'];
    for (const field of Object.keys(given)) {
      if (!fields.includes(field)) throw new Error(`context "functions.${stage}" has "${field}": use ${fields.join(', ')}`);
    }
    const pick = (field: keyof FunctionSizing, min: number, max: number) =>
      given[field] === undefined ? base[field] : integer(given[field], where(field), min, max);
    sizes[stage] = {
      memoryMiB: pick('memoryMiB', 128, 10240)!,
      timeoutMinutes: pick('timeoutMinutes', 1, 15)!,
      maxConcurrency: pick('maxConcurrency', 2, 1000),
      reservedConcurrency: pick('reservedConcurrency', 1, 1000),
    };
  }
  // The listing continues itself; its steps are claimed one at a time, and more than the mapping's least would only wait.
  if (sizes['find-blobs'].maxConcurrency !== 2) {
    throw new Error('context "functions.find-blobs.maxConcurrency" must stay 2 (the least an SQS mapping takes): a run lists one step at a time');
  }
  return sizes;
}

export function settingsFromContext(node: Context): CopySettings {
  const logRetentionDays = integer(text(node, 'logRetentionDays') ?? '30', 'logRetentionDays', 1, 3653);
  if (!LOG_RETENTION_DAYS.includes(logRetentionDays)) {
    throw new Error(`context "logRetentionDays" is ${logRetentionDays}: CloudWatch Logs takes one of ${LOG_RETENTION_DAYS.join(', ')}`);
  }
  const bucketName = text(node, 'bucketName');
  const bucketKeyArn = text(node, 'bucketKeyArn');
  if (bucketKeyArn && !bucketName) throw new Error('context "bucketKeyArn" only applies with "bucketName" (an existing bucket)');
  if (bucketKeyArn && !/^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[0-9a-f-]+$/.test(bucketKeyArn)) {
    throw new Error(`context "bucketKeyArn" is "${bucketKeyArn}": use the key's ARN (arn:aws:kms:REGION:ACCOUNT:key/ID), not an alias`);
  }
  const destinationPrefix = text(node, 'destinationPrefix') ?? '';
  if (destinationPrefix.startsWith('/')) {
    throw new Error(`context "destinationPrefix" is "${destinationPrefix}": drop the leading "/", S3 would keep it in every key`);
  }
  const alarmEmail = text(node, 'alarmEmail');
  if (alarmEmail && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(alarmEmail)) {
    throw new Error(`context "alarmEmail" is "${alarmEmail}", not an email address`);
  }
  return {
    prefix: checkPrefixCode(text(node, 'prefix') ?? DEFAULT_PREFIX),
    schedule: schedule(node),
    bucketName,
    bucketKeyArn,
    versioned: flag(node, 'versioned', false),
    destinationPrefix,
    alarmEmail,
    logRetentionDays,
    largeBlobBytes: optionalInteger(node, 'largeBlobBytes', 5 * 1024 * 1024, 5 * 1024 ** 4),
    partBytes: optionalInteger(node, 'partBytes', 5 * 1024 * 1024, 5 * 1024 ** 3),
    downloadConcurrency: optionalInteger(node, 'downloadConcurrency', 1, 256),
    functions: functionSizes(node),
    stallAfterMinutes: integer(text(node, 'stallAfterMinutes') ?? '30', 'stallAfterMinutes', 5, 1440),
    moreDestinations: moreDestinations(node, bucketName),
  };
}

const KEY_ARN = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[0-9a-f-]+$/;

/**
 * The `moreDestinations` context: `"bucket/prefix,bucket2"`, or JSON `[{"bucket", "prefix", "region", "keyArn"}]`
 * (as text with -c, or an array in cdk.json).
 */
function moreDestinations(node: Context, bucketName: string | undefined): MoreDestination[] {
  let raw: unknown = node.tryGetContext('moreDestinations');
  if (raw === undefined || raw === null || raw === '') return [];
  if (typeof raw === 'string' && raw.trim().startsWith('[')) {
    try {
      raw = JSON.parse(raw);
    } catch {
      throw new Error('context "moreDestinations" is not valid JSON: write it like \'[{"bucket":"dr-bucket","prefix":"azure/","region":"eu-west-1"}]\' or "dr-bucket/azure/,other-bucket"');
    }
  }
  const keys = new Map<number, string>();
  const items = Array.isArray(raw) ? raw.map((item, n) => {
    if (item && typeof item === 'object' && 'keyArn' in item) {
      const { keyArn, ...rest } = item as Record<string, unknown>;
      if (typeof keyArn !== 'string' || !KEY_ARN.test(keyArn)) {
        throw new Error(`context "moreDestinations" gives the keyArn ${JSON.stringify(keyArn)}: use the key's ARN (arn:aws:kms:REGION:ACCOUNT:key/ID), not an alias`);
      }
      keys.set(n, keyArn);
      return rest;
    }
    return item;
  }) : raw;
  let parsed: Destination[];
  try {
    parsed = parseDestinations(items, 'context "moreDestinations"');
  } catch (error) {
    throw new Error((error as Error).message);
  }
  for (const d of parsed) {
    if (d.bucket === bucketName) throw new Error(`context "moreDestinations" names the bucket "${d.bucket}", which is "bucketName" already: name each bucket once`);
  }
  return parsed.map((d, n) => ({ ...d, ...(keys.has(n) ? { keyArn: keys.get(n) } : {}) }));
}
