/**
 * From a plan's tally to the requests a run would make, by service and
 * operation, and how long it would take: deployed (the default sizes and
 * concurrency of lib/stage-sizing.ts) and with the local CLI. The request model
 * follows the stages' code call by call (see the README's "Plan before copying"
 * for each line); the time model rests on the stated rates below.
 */
import { STAGE_DEPLOYMENTS } from '../../../lib/stage-sizing';
import { addCounts, type RequestCounts } from './requests';
import type { PlanTally } from './tally';
import { BUCKET_REMEMBERED_ITEMS } from '../state/table';

const MiB = 1024 * 1024;

/** The local runner's invocations at once (DEFAULT_LOCAL_CONCURRENCY in lambdas/local/pipeline.ts; a test holds them equal). */
export const LOCAL_CONCURRENCY = { download: 6, parter: 3, recombinator: 1 } as const;
const KiB = 1024;

/** The rates the time model assumes (cross-cloud, per stream or per invocation). */
export const RATES = {
  /** A List Blobs page of 5,000 and its comparison, besides the S3 listing. */
  listPageSeconds: 1.2,
  /** One ListObjectsV2 page, one HeadObject. */
  s3ListSeconds: 0.1,
  headSeconds: 0.03,
  /** A parter's copy of a part held in memory (measured 60-80 MiB/s here; Lambda's network is faster). */
  partBytesPerSecond: 60 * MiB,
  /** Reading a copy back to check its MD5. */
  verifyBytesPerSecond: 100 * MiB,
  /** Fixed work of each invocation: its message, the run state, its sends. */
  invocationOverheadSeconds: 0.3,
  qualifySeconds: 3,
  initializerSeconds: 1,
  /** The local machine's link, shared by the reads from Azure and the writes to S3 (each byte crosses it twice). */
  localLinkBytesPerSecond: 100 * MiB,
  /** One core of a developer machine: about 1.8 ms of copier CPU per small blob (bench). */
  localSmallBlobsPerSecond: 500,
  /** Lambda's SQS pollers: five per queue, each a 20-second long poll, while the run goes. */
  sqsPollsPerQueuePerSecond: 5 / 20,
  /** How long a warm function keeps the secret it read. */
  secretCacheSeconds: 60,
  /** How often a local run writes its heartbeat into the run state. */
  heartbeatSeconds: 15,
} as const;

type Stage = 'qualify' | 'find-blobs' | 'download' | 'largefile-initializer' | 'parter' | 'recombinator';

export interface StageTime {
  invocations: number;
  /** Seconds of all its invocations together. */
  seconds: number;
  memoryMiB: number;
  maxConcurrency: number;
}

export interface Timing {
  /** Wall-clock seconds of the run. */
  seconds: number;
  listingSeconds: number;
  stages: Record<Stage, StageTime>;
}

export interface PlanShape {
  /** Containers the run lists. */
  containers: number;
  tally: PlanTally;
  /** Mirror: the guard would refuse the deletions (none are made). */
  deletionsRefused?: boolean;
}

const stageSizing = (stage: Stage) => STAGE_DEPLOYMENTS[stage].sizing;

/** How long each stage works, and the run as a whole, deployed with the default sizes. */
export function deployedTiming({ tally: t, containers }: PlanShape): Timing {
  const listingSeconds = listingWork(t);
  const listReserve = 120;
  const listSteps = Math.max(containers, Math.ceil(listingSeconds / (stageSizing('find-blobs').timeoutMinutes * 60 - listReserve)));
  const partSeconds = (t.largeBytes / RATES.partBytesPerSecond) + t.parts * RATES.invocationOverheadSeconds;
  const stages: Record<Stage, StageTime> = {
    qualify: stage('qualify', 1, RATES.qualifySeconds),
    'find-blobs': stage('find-blobs', listSteps, listingSeconds + listSteps * RATES.invocationOverheadSeconds),
    download: stage('download', msgCount(t, 'copy-blobs'), t.smallMessageSeconds + msgCount(t, 'copy-blobs') * RATES.invocationOverheadSeconds),
    'largefile-initializer': stage('largefile-initializer', t.large, t.large * RATES.initializerSeconds + t.parts * 0.002),
    parter: stage('parter', t.parts, partSeconds),
    recombinator: stage('recombinator', t.large, t.large * RATES.invocationOverheadSeconds + t.listPartsPages * 0.2 + t.largeMd5Bytes / RATES.verifyBytesPerSecond),
  };
  // Listing and copying overlap (routed work starts at the first page); each copy stage is bounded by its ceiling.
  const parallel = (s: StageTime) => s.seconds / Math.max(1, Math.min(s.maxConcurrency, s.invocations));
  const listingWall = listingSeconds / Math.min(containers, stageSizing('find-blobs').maxConcurrency ?? 2);
  const copyWall = Math.max(parallel(stages.download), parallel(stages.parter) + parallel(stages['largefile-initializer']));
  const tail = t.maxPartBytes / RATES.partBytesPerSecond + (t.large ? 1 : 0);
  return { seconds: round1(RATES.qualifySeconds + Math.max(listingWall, copyWall) + tail), listingSeconds: round1(listingSeconds), stages };
}

/** The local CLI: the same stages in one process, at the local concurrency, through one link. */
export function localTiming({ tally: t, containers }: PlanShape): Timing {
  const deployed = deployedTiming({ tally: t, containers });
  const c = LOCAL_CONCURRENCY;
  const smallWall = Math.max(deployed.stages.download.seconds / c.download, t.small / RATES.localSmallBlobsPerSecond);
  const largeWall = deployed.stages.parter.seconds / c.parter + deployed.stages.recombinator.seconds / c.recombinator;
  const linkWall = (t.smallBytes + t.largeBytes) / RATES.localLinkBytesPerSecond;
  const seconds = RATES.qualifySeconds + Math.max(deployed.listingSeconds, smallWall + largeWall, linkWall);
  return { ...deployed, seconds: round1(seconds) };
}

function listingWork(t: PlanTally): number {
  return t.pages * RATES.listPageSeconds * Math.min(1, t.listed / Math.max(1, t.pages) / 5000 + 0.2) +
    t.destLists * RATES.s3ListSeconds + (t.heads * RATES.headSeconds) / 16;
}

function stage(name: Stage, invocations: number, seconds: number): StageTime {
  const sizing = stageSizing(name);
  return { invocations, seconds: round1(seconds), memoryMiB: sizing.memoryMiB, maxConcurrency: sizing.maxConcurrency ?? 1 };
}

const msgCount = (t: PlanTally, kind: string) => t.messages[kind]?.count ?? 0;
const msgChunks = (t: PlanTally, kind: string) => t.messages[kind]?.chunks ?? 0;
const round1 = (n: number) => Math.round(n * 10) / 10;

/**
 * Calls on the run-state table (run-ledger.ts), with the size of the items they touch: one model, priced as
 * bucket requests locally and as DynamoDB requests and units deployed.
 */
export interface TableCall {
  /** `recall`: a read that the bucket store answers from what it wrote last (see StateTable.recall). */
  op: 'get' | 'recall' | 'put' | 'update' | 'query' | 'delete' | 'transact';
  count: number;
  /** KiB of each item touched (a query: of all the items of one page). */
  kib: number;
  /** A query's items, a transaction's items. */
  items?: number;
  /** Puts that create their item only if absent: the bucket store writes them without a read. */
  creates?: boolean;
}

export interface StateOptions {
  mode: 'local' | 'deployed';
  /** Lambda invocations (deployed: each adds its request counts to the run's item). */
  invocations?: number;
  /** Seconds the run takes (a local run's heartbeat). */
  seconds?: number;
}

export function tableCalls({ tally: t, containers, deletionsRefused }: PlanShape, listSteps: number, options: StateOptions): TableCall[] {
  const runKib = 3;
  const smallMessages = msgCount(t, 'copy-blobs');
  const deleting = deletionsRefused ? 0 : t.deleteUnits;
  const units = smallMessages + t.large + t.settledUnits + t.deleteUnits;
  const unitKib = (0.2 + (t.nameBytes + (t.small + t.large) * 30) / Math.max(1, smallMessages + t.large) / KiB);
  const settles = units - t.deleteUnits + deleting;
  // Per upload: each part's item, its counter, its completion claim; and its verification's, with a Content-MD5.
  const partItems = t.parts + 2 * t.large + t.largeWithMd5;
  const calls: TableCall[] = [
    // begin: the lock, then lock and run written.
    { op: 'get', count: 1, kib: 0.3 },
    { op: 'put', count: 1, kib: 0.3 },
    { op: 'put', count: 1, kib: runKib },
    // Each listing step: claimed (a create, read only when it is there already), then counted with the run's
    // counters (conditional on the run's state).
    { op: 'put', count: listSteps, kib: 0.3, creates: true },
    { op: 'transact', count: listSteps, kib: 1 + runKib, items: 2 },
    // A container's listing done: the run read, its listing marked done (once), the run's end looked for.
    { op: 'get', count: containers * 2, kib: runKib },
    { op: 'update', count: 1, kib: runKib },
    // Units: created, and each settled once with the run's counters, the run's end looked for after.
    { op: 'put', count: units, kib: unitKib, creates: true },
    { op: 'recall', count: settles, kib: unitKib },
    { op: 'transact', count: settles, kib: unitKib + runKib, items: 2 },
    // The run's end looked for: as this process wrote it (recall), read only by a store that keeps nothing.
    { op: 'recall', count: settles, kib: runKib },
    // Parts: each counted once (its own item, the upload's counter, the run), then the counter read.
    { op: 'transact', count: t.parts, kib: 0.2 + 0.2 + runKib, items: 3 },
    { op: 'get', count: t.parts, kib: 0.2 },
    // Each upload's completion: claimed (one completer at a time).
    { op: 'get', count: t.large, kib: 0.2 },
    { op: 'put', count: t.large, kib: 0.2 },
    // Verification of a copy against the blob's Content-MD5: claimed.
    { op: 'get', count: t.largeWithMd5, kib: 0.3 },
    { op: 'put', count: t.largeWithMd5, kib: 0.3 },
    // An upload's items forgotten once it is complete.
    { op: 'query', count: t.listPartsPages, kib: (partItems * 0.2) / Math.max(1, t.listPartsPages), items: partItems },
    { op: 'delete', count: partItems, kib: 0.2 },
    // Mirror: its step claimed, the run read (the guard), the deletions' units read (or the refusal noted).
    ...(t.deleteUnits > 0
      ? [{ op: 'get', count: 2, kib: runKib }, { op: 'put', count: 1, kib: 0.3 }, { op: 'query', count: Math.ceil(t.deleteUnits / 500), kib: (t.deletes * 0.1) / Math.ceil(t.deleteUnits / 500), items: t.deleteUnits },
        { op: 'update', count: deletionsRefused ? 1 : 0, kib: runKib }] satisfies TableCall[]
      : []),
    // The end: elected, the report built from the units, its place noted.
    { op: 'update', count: 2, kib: runKib },
    { op: 'query', count: Math.max(1, Math.ceil(units / 500)), kib: (units * unitKib) / Math.max(1, Math.ceil(units / 500)), items: units },
  ];
  if (options.mode === 'local') {
    // The local runner reads the run once more at its close (its report is the one the ending built), and beats its heart.
    const beats = Math.floor((options.seconds ?? 0) / RATES.heartbeatSeconds);
    calls.push(
      { op: 'get', count: 1, kib: runKib },
      { op: 'get', count: beats, kib: runKib },
      { op: 'update', count: beats, kib: runKib },
    );
  } else {
    // Each invocation adds its request counts to the run's item.
    calls.push({ op: 'update', count: options.invocations ?? 0, kib: runKib });
  }
  return calls.filter((c) => c.count > 0);
}

/**
 * The bucket store's requests for these calls (state/bucket-table.ts). It remembers what it wrote last: a write
 * reads first only an item it has not written (a put of one read with `get`, as the lock and the claims are; not
 * a create); updates and transactions are of the run's item and of units it created or wrote, remembered, and a
 * transaction's conditions are checked against what it remembers (the run's item). A query reads the items it does not remember: about half its memory holds units (each
 * settle writes its unit and the run's item), the last settled.
 */
export function bucketStateRequests(calls: TableCall[]): Record<string, number> {
  const out = { GetObject: 0, PutObject: 0, ListObjectsV2: 0, DeleteObject: 0 };
  for (const c of calls) {
    if (c.op === 'get') out.GetObject += c.count;
    else if (c.op === 'recall') continue;
    else if (c.op === 'put') (out.GetObject += c.creates ? 0 : c.count), (out.PutObject += c.count);
    else if (c.op === 'update') out.PutObject += c.count;
    else if (c.op === 'query') (out.ListObjectsV2 += c.count), (out.GetObject += Math.max(0, (c.items ?? 0) - BUCKET_REMEMBERED_ITEMS / 2));
    else if (c.op === 'delete') out.DeleteObject += c.count;
    else out.PutObject += c.count * (c.items ?? 1);
  }
  return out;
}

/** DynamoDB's requests and capacity units for these calls (strongly consistent reads; transactions at twice the units). */
export function dynamoStateRequests(calls: TableCall[]): Record<string, number> {
  const names = { get: 'GetItem', recall: 'GetItem', put: 'PutItem', update: 'UpdateItem', query: 'Query', delete: 'DeleteItem', transact: 'TransactWriteItems' } as const;
  const out: Record<string, number> = { WriteRequestUnits: 0, ReadRequestUnits: 0 };
  for (const c of calls) {
    out[names[c.op]] = (out[names[c.op]] ?? 0) + c.count;
    if (c.op === 'get' || c.op === 'recall' || c.op === 'query') out.ReadRequestUnits += c.count * Math.max(1, Math.ceil(c.kib / 4));
    else if (c.op === 'transact') out.WriteRequestUnits += c.count * 2 * Math.max(c.items ?? 1, Math.ceil(c.kib));
    else out.WriteRequestUnits += c.count * Math.max(1, Math.ceil(c.kib));
  }
  return out;
}

/** What the copy stages ask of Azure and of the bucket (the same deployed and local, but for the local runner's own). */
function storeRequests({ tally: t, containers, deletionsRefused }: PlanShape, mode: 'local' | 'deployed'): RequestCounts {
  const md5 = t.largeWithMd5;
  const reports = mode === 'local' ? 4 : 2;
  // Further destinations: each copy's writes again, and a large one's upload bookkeeping (its reads are not repeated).
  const more = t.moreWrites ?? { small: 0, smallBytes: 0, large: 0, largeBytes: 0, parts: 0 };
  return {
    azure: {
      ListBlobs: t.pages + containers,
      // The source's check, each large blob's properties, and (mirror) whether each copy's blob is gone.
      GetBlobProperties: containers + t.large + t.sourceProperties,
      SetBlobTier: t.rehydrations,
      GetBlob: t.small + (t.partReads ?? t.parts),
      BytesRead: t.smallBytes + t.largeBytes,
    },
    s3: {
      HeadBucket: 1,
      // The copies, each large blob's manifest (and its mark while checked), the run's pointer and report, the local write probe.
      PutObject: t.small + t.large + md5 + 1 + reports + (mode === 'local' ? 1 : 0) + more.small + more.large,
      DeleteObject: t.large + (mode === 'local' ? 1 : 0) + more.large,
      // Manifests read while comparing, by the initializer, to clear it (and twice more with a check: to mark it, and the copy read back).
      GetObject: t.manifestReads + 2 * t.large + 2 * md5 + 2 * more.large,
      HeadObject: t.heads + 2 * t.large + 2 * more.large,
      ListObjectsV2: t.destLists,
      CreateMultipartUpload: t.large + more.large,
      ListMultipartUploads: t.large + more.large,
      UploadPart: t.parts + more.parts,
      ListParts: t.listPartsPages + more.large,
      CompleteMultipartUpload: t.large + more.large,
      // Mirror: one per unit of up to 1,000 copies whose blob is gone, unless the guard refuses them all.
      DeleteObjects: deletionsRefused ? 0 : t.deleteUnits,
      BytesWritten: t.smallBytes + t.largeBytes + more.smallBytes + more.largeBytes,
    },
  };
}

export interface Prediction {
  requests: RequestCounts;
  timing: Timing;
}

export function predictLocal(shape: PlanShape): Prediction {
  const timing = localTiming(shape);
  const calls = tableCalls(shape, shape.containers, { mode: 'local', seconds: timing.seconds });
  const requests = storeRequests(shape, 'local');
  requests.state = bucketStateRequests(calls);
  return { requests, timing };
}

export function predictDeployed(shape: PlanShape): Prediction {
  const { tally: t } = shape;
  const timing = deployedTiming(shape);
  const s = timing.stages;
  const listSteps = s['find-blobs'].invocations;
  const queueFed = listSteps + s.download.invocations + s['largefile-initializer'].invocations + s.parter.invocations + s.recombinator.invocations;
  const invocations = queueFed + 1 + Math.floor(timing.seconds / 300);
  const gbSeconds = Object.values(s).reduce((n, st) => n + (st.seconds * st.memoryMiB) / 1024, 0);
  const requests = storeRequests(shape, 'deployed');
  requests.dynamodb = dynamoStateRequests(tableCalls(shape, listSteps, { mode: 'deployed', invocations }));
  // Messages: the first listing message per container and each continuation; the rest from the pages.
  const listMessages = listSteps;
  const published = listMessages + ['copy-blobs', 'large-blob', 'copy-part', 'parts-done'].reduce((n, k) => n + msgCount(t, k), 0);
  const chunks = listMessages + ['copy-blobs', 'large-blob', 'copy-part', 'parts-done'].reduce((n, k) => n + msgChunks(t, k), 0);
  const publishBatches = t.publishBatches + listMessages;
  addCounts(requests, {
    lambda: { Invocations: invocations, GBSeconds: Math.round(gbSeconds * 1000) / 1000 },
    sns: { PublishBatch: publishBatches, BilledRequests: t.publishChunks + listMessages, Messages: published },
    sqs: {
      // SNS delivers each message into its stage's queue, the mapping receives it and deletes it: each per 64 KB chunk.
      SendMessage: chunks,
      ReceiveMessage: chunks + Math.round(5 * RATES.sqsPollsPerQueuePerSecond * timing.seconds),
      DeleteMessage: published,
    },
    secretsmanager: { GetSecretValue: secretReads(s) },
  });
  return { requests, timing };
}

/** Each function instance reads the secret when it starts and again once its cache is older than a minute. */
function secretReads(stages: Record<Stage, StageTime>): number {
  let reads = 0;
  for (const st of Object.values(stages)) {
    if (st.invocations === 0) continue;
    const instances = Math.min(st.maxConcurrency, st.invocations);
    reads += Math.min(st.invocations, instances * Math.max(1, Math.ceil(st.seconds / instances / RATES.secretCacheSeconds)));
  }
  return reads;
}
