/**
 * What requests and bytes cost: one function for a plan's prediction and a run's
 * actual counts, so the two are priced by the same arithmetic and can be read
 * side by side. Quantities the copier cannot see itself are derived here from
 * those it can, by stated rules (KMS requests from the S3, SNS and Secrets
 * Manager requests that cause them; log bytes from invocations).
 */
import type { EgressTier, PriceList } from './prices';
import { countOf, type RequestCounts } from './requests';

export interface CostLine {
  /** `aws` or `azure`. */
  cloud: 'aws' | 'azure';
  service: string;
  item: string;
  quantity: number;
  unit: string;
  /** Price of one unit. */
  unitUsd: number;
  usd: number;
  /** Shown for comparison, not added to the total (KMS without bucket keys, say). */
  inTotal: boolean;
  note?: string;
}

export interface CostEstimate {
  region: string;
  pricesDate: string;
  totalUsd: number;
  awsUsd: number;
  azureUsd: number;
  lines: CostLine[];
}

/** What the counts alone do not say. */
export interface CostUsage {
  /** Where the run state is: the bucket (local) or DynamoDB (deployed). */
  mode: 'local' | 'deployed';
  /** Bytes of copies read from Azure (egress); counts' azure.BytesRead when absent. */
  egressBytes?: number;
  /** Azure reads (Get Blob) by the blob's access tier; the rest are priced as Hot. */
  readsByTier?: Record<string, number>;
  /** Bytes read by the blob's access tier, for the Cool and Cold retrieval charge. */
  bytesByTier?: Record<string, number>;
  /** Bytes of archived blobs whose rehydration the run starts (Archive retrieval, billed as it completes). */
  rehydrateBytes?: number;
  /** S3 data writes (PutObject of copies, multipart requests) by storage class; the rest are priced as STANDARD. */
  writesByClass?: Record<string, number>;
  /** The bucket encrypts with SSE-KMS (deployed: always, with an S3 bucket key). @default deployed */
  kms?: boolean;
  /** Bytes CloudWatch Logs ingests per Lambda invocation. @default LOG_BYTES_PER_INVOCATION */
  logBytesPerInvocation?: number;
}

/** Lambda's START, END and REPORT lines, two or three of ours, and one metrics document (EMF). */
export const LOG_BYTES_PER_INVOCATION = 2048;
/** AWS: an S3 bucket key cuts S3's requests to KMS by up to 99%. */
export const BUCKET_KEY_KMS_FRACTION = 0.01;
const GiB = 1024 ** 3;

const S3_PUT_CLASS = new Set(['PutObject', 'CopyObject', 'CreateMultipartUpload', 'UploadPart', 'CompleteMultipartUpload', 'ListObjectsV2', 'ListParts', 'ListMultipartUploads', 'ListBuckets']);
const S3_FREE = new Set(['DeleteObject', 'AbortMultipartUpload']);
/** Not requests: counted beside them. */
const NOT_REQUESTS = new Set(['BytesRead', 'BytesWritten']);

/** Tiered egress: each tier's rate on the part of the volume within it; `freeUsed` charges the free first tier at the next rate. */
export function egressUsd(gb: number, tiers: EgressTier[], freeUsed = false): number {
  let usd = 0;
  let below = 0;
  const paid = tiers.find((t) => t.perGB > 0)?.perGB ?? 0;
  for (const tier of tiers) {
    const top = tier.upToGB ?? Number.POSITIVE_INFINITY;
    const inTier = Math.max(0, Math.min(gb, top) - below);
    usd += inTier * (tier.perGB === 0 && freeUsed ? paid : tier.perGB);
    below = top;
    if (gb <= top) break;
  }
  return usd;
}

/** KMS requests S3 makes for these requests without a bucket key: one to encrypt each write, one to decrypt each read of data. */
export function s3KmsRequests(s3: Record<string, number> | undefined): number {
  if (!s3) return 0;
  const n = (op: string) => s3[op] ?? 0;
  return n('PutObject') + n('CreateMultipartUpload') + n('UploadPart') + n('CompleteMultipartUpload') + n('GetObject');
}

export function costOf(counts: RequestCounts, prices: PriceList, usage: CostUsage): CostEstimate {
  const lines: CostLine[] = [];
  const p = prices.aws;
  const line = (cloud: CostLine['cloud'], service: string, item: string, quantity: number, unit: string, unitUsd: number, extra: Partial<CostLine> = {}) => {
    if (quantity <= 0) return;
    lines.push({ cloud, service, item, quantity: round(quantity, 6), unit, unitUsd, usd: quantity * unitUsd, inTotal: true, ...extra });
  };

  // S3: each request class at its price; the copies' own writes at their storage class.
  const s3Requests = (service: string, label: string) => {
    for (const [op, n] of Object.entries(counts[service] ?? {})) {
      if (NOT_REQUESTS.has(op) || S3_FREE.has(op)) continue;
      const price = S3_PUT_CLASS.has(op) ? p.s3.putCopyPostListPer1000 : p.s3.getHeadOtherPer1000;
      line('aws', label, op, n, 'requests', price / 1000);
    }
  };
  s3Requests('s3', 'S3');
  // Writes into a class other than STANDARD cost more per request: the difference, as a line of its own.
  for (const [storageClass, writes] of Object.entries(usage.writesByClass ?? {})) {
    const surcharge = (p.s3.putPer1000ByStorageClass[storageClass] ?? p.s3.putCopyPostListPer1000) - p.s3.putCopyPostListPer1000;
    if (surcharge > 0) line('aws', 'S3', `${storageClass} write requests (above STANDARD)`, writes, 'requests', surcharge / 1000);
  }
  if (usage.mode === 'local') s3Requests('state', 'run state (S3)');

  if (usage.mode === 'deployed') {
    line('aws', 'run state (DynamoDB)', 'write request units', countOf(counts, 'dynamodb', 'WriteRequestUnits'), 'WRU', p.dynamodb.perMillionWriteRequestUnits / 1e6);
    line('aws', 'run state (DynamoDB)', 'read request units', countOf(counts, 'dynamodb', 'ReadRequestUnits'), 'RRU', p.dynamodb.perMillionReadRequestUnits / 1e6);
    const invocations = countOf(counts, 'lambda', 'Invocations');
    line('aws', 'Lambda', 'requests', invocations, 'invocations', p.lambda.perMillionRequests / 1e6);
    line('aws', 'Lambda', 'duration (arm64)', countOf(counts, 'lambda', 'GBSeconds'), 'GB-s', p.lambda.arm64PerGBSecond);
    line('aws', 'SNS', 'publish requests (64 KB chunks)', countOf(counts, 'sns', 'BilledRequests'), 'requests', p.sns.perMillionRequests / 1e6);
    const sqs = ['SendMessage', 'ReceiveMessage', 'DeleteMessage', 'ChangeMessageVisibility'].reduce((n, op) => n + countOf(counts, 'sqs', op), 0);
    line('aws', 'SQS', 'requests (delivery from SNS, receive, delete)', sqs, 'requests', p.sqs.perMillionRequests / 1e6);
    line('aws', 'Secrets Manager', 'GetSecretValue', countOf(counts, 'secretsmanager', 'GetSecretValue'), 'calls', p.secretsmanager.per10000Calls / 1e4);
    const logBytes = invocations * (usage.logBytesPerInvocation ?? LOG_BYTES_PER_INVOCATION);
    line('aws', 'CloudWatch Logs', 'ingestion', logBytes / GiB, 'GB', p.logs.ingestPerGB);
  }
  // KMS: the secret's key (one Decrypt per read), the topics' key (one data key per publish), the bucket's key.
  if (usage.kms ?? usage.mode === 'deployed') {
    const others = countOf(counts, 'secretsmanager', 'GetSecretValue') + countOf(counts, 'sns', 'PublishBatch');
    const s3Kms = s3KmsRequests(counts.s3) + s3KmsRequests(counts.state);
    const kmsPrice = p.kms.per10000Requests / 1e4;
    line('aws', 'KMS', 'requests, with S3 bucket keys', others + Math.ceil(s3Kms * BUCKET_KEY_KMS_FRACTION), 'requests', kmsPrice);
    line('aws', 'KMS', 'requests, without S3 bucket keys', others + s3Kms, 'requests', kmsPrice, {
      inTotal: false, note: 'for comparison: a bucket whose SSE-KMS has no bucket key',
    });
  }

  // Azure: egress, operations, retrieval from cooler tiers.
  const a = prices.azure;
  const egressGiB = (usage.egressBytes ?? countOf(counts, 'azure', 'BytesRead')) / GiB;
  if (egressGiB > 0) {
    lines.push({
      cloud: 'azure', service: 'Azure bandwidth', item: 'internet egress', quantity: round(egressGiB, 6), unit: 'GiB',
      unitUsd: a.egressTiers.find((t) => t.perGB > 0)?.perGB ?? 0, usd: egressUsd(egressGiB, a.egressTiers, true), inTotal: true,
      note: `${a.egressFree}: up to ${usd(egressUsd(egressGiB, a.egressTiers, true) - egressUsd(egressGiB, a.egressTiers, false))} less while it lasts`,
    });
  }
  line('azure', 'Azure Blob', 'List Blobs', countOf(counts, 'azure', 'ListBlobs'), 'operations', a.listPer10000 / 1e4);
  const reads = countOf(counts, 'azure', 'GetBlob');
  let hotReads = reads;
  for (const [tier, n] of Object.entries(usage.readsByTier ?? {})) {
    if (tier === 'Hot' || !(tier in a.readPer10000ByTier)) continue;
    line('azure', 'Azure Blob', `Get Blob (${tier})`, n, 'operations', a.readPer10000ByTier[tier] / 1e4);
    hotReads -= n;
  }
  line('azure', 'Azure Blob', 'Get Blob', hotReads, 'operations', a.readPer10000ByTier.Hot / 1e4);
  line('azure', 'Azure Blob', 'Get Blob Properties', countOf(counts, 'azure', 'GetBlobProperties'), 'operations', a.otherPer10000 / 1e4);
  line('azure', 'Azure Blob', `Set Blob Tier (rehydrate from Archive, ${a.rehydrate.priority} priority)`, countOf(counts, 'azure', 'SetBlobTier'), 'operations', a.rehydrate.setTierPer10000 / 1e4);
  line('azure', 'Azure Blob', 'data retrieval (Archive, as rehydration completes)', (usage.rehydrateBytes ?? 0) / GiB, 'GiB', a.rehydrate.retrievalPerGB);
  for (const [tier, bytes] of Object.entries(usage.bytesByTier ?? {})) {
    const rate = a.retrievalPerGBByTier[tier] ?? 0;
    if (rate > 0) line('azure', 'Azure Blob', `data retrieval (${tier})`, bytes / GiB, 'GiB', rate);
  }

  const sum = (cloud?: CostLine['cloud']) => lines.filter((l) => l.inTotal && (!cloud || l.cloud === cloud)).reduce((n, l) => n + l.usd, 0);
  return {
    region: prices.region,
    pricesDate: prices.date,
    totalUsd: round(sum(), 6),
    awsUsd: round(sum('aws'), 6),
    azureUsd: round(sum('azure'), 6),
    lines: lines.map((l) => ({ ...l, usd: round(l.usd, 6) })),
  };
}

export function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** $1.23, $0.0042: enough digits to see small amounts. */
export function usd(amount: number): string {
  if (amount === 0) return '$0';
  if (Math.abs(amount) >= 100) return `$${amount.toFixed(0)}`;
  if (Math.abs(amount) >= 1) return `$${amount.toFixed(2)}`;
  return `$${amount.toPrecision(2)}`;
}
