/**
 * The local pipeline: the stages' Lambda handlers, wired by the in-process bus
 * exactly as SNS and SQS wire them in AWS, against any Azure and S3 endpoints, with
 * the run's state kept in the destination bucket (so `azs3copy status` finds it).
 * A copy starts it with qualify, a redrive with the dead letters of earlier runs;
 * both end the same way: the run ends complete, or, when messages were
 * dead-lettered, stalled, with a report naming every blob not copied and where its
 * message waits, and the run's dead letters kept for a redrive.
 */
import { createHash } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import type { CopyConfig, SourceConfig } from '../core/config';
import type { Destination } from '../core/destinations';
import type { Selection } from '../core/selection';
import {
  DEFAULT_LARGE_BLOB_BYTES, DEFAULT_PART_BYTES, DEFAULT_STALL_AFTER_SECONDS, DEFAULT_TUNING, type Runtime, type Tuning,
} from '../core/context';
import type { PlanReport } from '../core/cost/plan-report';
import { pricesFor } from '../core/cost/prices';
import { createMeter, meterClient, meteredSink, meteredSource, type Meter } from '../core/cost/requests';
import { runCosts, type CostOptions } from '../core/cost/run-costs';
import { ConfigError, errorMessage } from '../core/errors';
import { topicHandler } from '../core/handler';
import { createLogger, type Logger } from '../core/log';
import { StageMessageSchema, type RunSettings, type StageMessage } from '../core/messages';
import { STATE_PREFIX } from '../core/keys';
import { buildReport, writeReport, type RunReport, type Whereabouts } from '../core/report';
import { endOfRun } from '../core/run-end';
import { runLedger, type LedgerHooks, type RunLedger } from '../core/run-ledger';
import { DEFAULT_TIMEOUT_MINUTES, TOPIC_STAGE_NAMES, stageOf, type StageName, type TopicStage } from '../core/stages/specs';
import { firstListPageSize } from '../core/stages/find-blobs';
import { newRunId } from '../core/stages/qualify';
import { bucketTable } from '../core/state/bucket-table';
import { memoryTable } from '../core/state/memory-table';
import { azureSource, listContainers, type AzureSourceOptions } from '../core/stores/azure-source';
import { firstPageAhead } from '../core/stores/first-page';
import { explainBucketError, s3Client, s3Sink } from '../core/stores/s3-sink';
import type { BlobSource, ObjectSink } from '../core/stores/types';
import { createBus, type Bus, type BusOptions, type DeadLetter } from './bus';
import { deadLetterKey, keepDeadLetters } from './dead-letters';

/**
 * A message whose invocation timed out comes back only after this long, as after a deployed queue's visibility
 * timeout: the stopped invocation's claims (a listing step's, a completion's, a verification's) outlive it by up
 * to a minute, and a retry sooner would find them held by nobody alive, and drop the work as another's.
 */
export const AFTER_TIMEOUT_MS = 65_000;

export const DEFAULT_LOCAL_CONCURRENCY: Record<TopicStage, number> = {
  'find-blobs': 1,
  download: 6,
  // An initializer holds no bytes: it asks for the blob's properties and starts its uploads. With two, a third
  // large blob listed on the same page waited about 2 s for a slot (the WAN bench) while parters sat idle.
  'largefile-initializer': 4,
  // Each parter holds its part (64 MiB by default) in memory; three keep one S3 server busy (moto takes one
  // request at a time) while the next parts are read, and bound memory to about 3 parts. More only add memory.
  parter: 3,
  // One at a time: each completion rewrites the whole object on moto (about 6 s of its CPU per GiB).
  recombinator: 1,
};

/**
 * Messages the listing may have waiting before it waits itself: memory stays flat however big the container.
 * Six download invocations take six at a time, so 40 keep them fed (the WAN bench ran no slower); 200 held up to
 * 20,000 blobs queued.
 */
export const LOCAL_BACKLOG_MESSAGES = 40;

/**
 * Blobs a local listing asks for per page (a function asks for Azure's most, 5,000). A List Blobs answer is
 * about 1 KiB a blob and is held whole while it is read, and the next page is fetched while the blobs of one
 * wait: two pages of 5,000 kept about 9 MiB of V8's large objects over any container bigger than a page, so a
 * 40,000-blob copy peaked at 168 MiB against 134 MiB for 2,000 (bench/memory.ts); with pages of 1,000, 157
 * against 142. Each page is one more round trip, fetched ahead while the last one's blobs copy.
 */
export const LOCAL_LIST_PAGE_SIZE = 1000;

export interface LocalCopyOptions {
  source: SourceConfig;
  /** Containers, filters, mirror, storage class, archive policy; the source's one container and no filter by default. */
  selection?: Partial<Selection>;
  /** List and compare, copy nothing: the report is the plan. */
  dryRun?: boolean;
  bucket: string;
  /** Further destinations (destinations.ts): each blob read once, written to the bucket and to each of these. */
  also?: Destination[];
  prefix?: string;
  s3Endpoint?: string;
  beginDate?: string;
  /** The secret's switch, when the run comes from one; off means the run does not start. @default true */
  isActive?: boolean;
  largeBlobBytes?: number;
  partBytes?: number;
  tuning?: Partial<Tuning>;
  /** Invocations of each stage at once (an event source mapping's maximum concurrency). */
  concurrency?: Partial<Record<TopicStage, number>>;
  bus?: BusOptions;
  /**
   * A lower time limit for every stage's invocations, in seconds (`--function-timeout`); each stage has its
   * deployed timeout otherwise (DEFAULT_TIMEOUT_MINUTES). An invocation that runs past it fails, as in Lambda.
   */
  functionTimeoutSeconds?: number;
  log?: Logger;
  runId?: string;
  azure?: AzureSourceOptions;
  /** Tries of each S3 request: the SDK's, the run state's and the small blobs' own PUTs alike. @default 8 */
  s3MaxAttempts?: number;
  /** Wrap the stores, e.g. to count requests. */
  wrapSource?: (source: BlobSource) => BlobSource;
  wrapSink?: (sink: ObjectSink) => ObjectSink;
  /** Called when the run has started, with the run's state to watch for progress. */
  onStart?: (run: { runId: string; ledger: RunLedger; bus: Bus }) => void;
  /**
   * A plan only (`azs3copy plan`): a dry run whose state is kept in memory and that writes nothing to the
   * bucket (every write the sink is asked for fails).
   */
  planOnly?: boolean;
  /** The plan this copy follows (`copy --plan FILE`): its report shows the prediction beside what the run did. */
  plan?: { from: string; plan: PlanReport };
  /** The AWS region whose prices cost the run. @default us-east-1 */
  priceRegion?: string;
}

export interface LocalRunResult {
  report: RunReport;
  deadLetters: DeadLetter[];
  /** Where this run's dead letters were kept for a redrive (an s3:// URL), when it had any. */
  deadLettersKeptAt?: string;
  /** Why they could not be kept in the bucket; the caller keeps them elsewhere. */
  deadLettersNotKept?: string;
  bus: Bus['stats'];
  started: boolean;
  reason?: string;
  /** A dry run's plan (the report then holds no copies). */
  plan?: PlanReport;
  /** The requests this process made, by service and operation. */
  requests?: ReturnType<Meter['peek']>;
}

export type LocalPipeline = ReturnType<typeof localPipeline>;

/** The pipeline a local copy is: its destination (one run at a time into one bucket and prefix). */
export function localPipelineId(bucket: string, prefix: string): string {
  return `local-${createHash('sha256').update(`${bucket}\u0000${prefix}`).digest('hex').slice(0, 20)}`;
}

/**
 * When its collections are cheap, V8 lets the old generation grow to about four times what survives a full
 * collection before the next one. A copy's requests in flight outlive young-generation collections, so
 * its heap swung between 35 and 185 MiB however long it ran (peak RSS 137 MiB over 2,000 tiny blobs, 321
 * MiB over 200,000: bench/memory.ts). Growing by 10% at a time keeps the peak near what is live, for no
 * CPU that the same bench can tell from noise. Process-wide, set once a local pipeline exists.
 */
export const LOCAL_HEAP_GROWING_PERCENT = 10;

export function localPipeline(options: LocalCopyOptions) {
  setFlagsFromString(`--heap-growing-percent=${LOCAL_HEAP_GROWING_PERCENT}`);
  const startedAt = new Date();
  const runId = options.runId ?? newRunId(startedAt);
  const log = options.log ?? createLogger({}, { level: 'warn', write: (line) => process.stderr.write(line + '\n') });
  const timeoutMs = (stage: StageName) =>
    Math.min(DEFAULT_TIMEOUT_MINUTES[stage] * 60, options.functionTimeoutSeconds ?? Number.POSITIVE_INFINITY) * 1000;
  const bus = createBus({
    afterTimeoutMs: AFTER_TIMEOUT_MS,
    ...options.bus,
    onError: (topic, error, attempt) => log.warn('invocation failed', { topic, attempt, error: errorMessage(error) }),
  });
  const client = s3Client({ endpoint: options.s3Endpoint, maxAttempts: options.s3MaxAttempts });
  // Every request the run makes is counted: the stores' by their wrappers, the run state's by its own client.
  const meter = createMeter();
  const stateClient = s3Client({ endpoint: options.s3Endpoint, maxAttempts: options.s3MaxAttempts });
  meterClient(stateClient, meter, 'state');
  // One source per container (same account, same credentials).
  const sources = new Map<string, BlobSource>();
  const sourceOf = (container: string) => {
    let found = sources.get(container);
    if (!found) {
      found = (options.wrapSource ?? ((s) => s))(
        meteredSource(azureSource({ ...options.source, container }, { onWarning: (m) => log.warn(m), ...options.azure }), meter),
      );
      // With a key or a SAS only: a source that signs in to Entra ID first waits for its token either way, and the
      // check and the page would wait on one sign-in, whose failure the page's request would then try again.
      if (options.source.credentials.kind === 'connection-string') found = firstPageAhead(found, firstListPageSize(tuning));
      sources.set(container, found);
    }
    return found;
  };
  const counted = meteredSink(s3Sink({ bucket: options.bucket, endpoint: options.s3Endpoint, maxAttempts: options.s3MaxAttempts }, client), meter);
  const bareSink = options.planOnly ? readOnly(counted) : counted;
  const stagesSink = (options.wrapSink ?? ((s) => s))(bareSink);
  const sink: ObjectSink = {
    ...stagesSink,
    // Locally the user's own credentials write: check that they may, before the first blob finds out.
    // The probe is the runner's own request, not a stage's: it goes past any wrapper counting those.
    async check() {
      await stagesSink.check();
      if (!options.planOnly) await probeWrite(bareSink, options.bucket, runId);
    },
  };
  // Further destinations: each its own sink, made (and its writing checked, as the first's is) on first use.
  const moreSinks = new Map<string, ObjectSink>();
  const sinkOf = (destination: Destination): ObjectSink => {
    if (destination.bucket === options.bucket) return sink;
    let found = moreSinks.get(destination.bucket);
    if (!found) {
      const bare = meteredSink(s3Sink({ bucket: destination.bucket, endpoint: options.s3Endpoint, maxAttempts: options.s3MaxAttempts }, client), meter);
      const readable = options.planOnly ? readOnly(bare) : bare;
      const wrapped = (options.wrapSink ?? ((s) => s))(readable);
      found = {
        ...wrapped,
        async check() {
          await wrapped.check();
          if (!options.planOnly) await probeWrite(readable, destination.bucket, runId);
        },
      };
      moreSinks.set(destination.bucket, found);
    }
    return found;
  };
  const config: CopyConfig = {
    source: options.source, isActive: options.isActive ?? true, beginDate: options.beginDate, selection: options.selection, dryRun: options.dryRun,
    also: options.also,
  };
  const prefix = options.prefix ?? '';

  /** Where each dead-lettered unit's message is kept, once the dead letters are. */
  const keptAt = new Map<string, string>();
  /** The report each run's ending wrote, by run: the closing one adds to it rather than reading every unit again. */
  const endReports = new Map<string, RunReport>();
  const hooks: LedgerHooks = {};
  const ledger = runLedger(options.planOnly ? memoryTable() : bucketTable(stateClient, options.bucket, { endpoint: options.s3Endpoint }), hooks);
  const tuning = { ...DEFAULT_TUNING, listPageSize: LOCAL_LIST_PAGE_SIZE, ...options.tuning };
  const costs: CostOptions = {
    mode: 'local',
    prices: () => ({ prices: pricesFor(options.priceRegion) }),
    actual: async () => meter.peek(),
    plan: options.plan ? async () => options.plan : undefined,
    blobsPerMessage: tuning.blobsPerMessage,
  };
  let plan: PlanReport | undefined;
  // A plan writes nothing: its report is kept here only.
  const nowhere = { putJson: async () => true, putText: async () => undefined };
  hooks.onEnd = endOfRun({
    ledger: () => ledger,
    stateFor: () => (options.planOnly ? nowhere : bareSink),
    costs,
    onPlan: (p) => void (plan = p),
    log,
    whereabouts: async (id) => whereaboutsOf(id, bus.deadLetters, keptAt),
    onReport: (report) => void endReports.set(report.runId, report),
  });

  const runtime: Runtime = {
    loadConfig: async () => config,
    defaults: {
      bucket: options.bucket,
      prefix,
      largeBlobBytes: options.largeBlobBytes ?? DEFAULT_LARGE_BLOB_BYTES,
      partBytes: options.partBytes ?? DEFAULT_PART_BYTES,
      partTimeoutSeconds: timeoutMs('parter') / 1000,
    },
    pipeline: localPipelineId(options.bucket, prefix),
    owner: 'local',
    stallAfterSeconds: DEFAULT_STALL_AFTER_SECONDS,
    sourceFor: async (settings: RunSettings) => {
      if (settings.account !== options.source.account) {
        throw new ConfigError(`the message is for storage account "${settings.account}", not "${options.source.account}": give that account's credentials`);
      }
      return sourceOf(settings.container);
    },
    listContainers: () => (meter.add('azure', 'ListContainers'), listContainers(options.source, options.azure)),
    sinkFor: (_settings, destination) => (destination ? sinkOf(destination) : sink),
    async publish(messages: StageMessage[]) {
      // The listing waits while the copy stages are behind, as a bounded queue would make it wait.
      if (messages.some((m) => m.kind === 'copy-blobs' || m.kind === 'large-blob')) await bus.room(LOCAL_BACKLOG_MESSAGES);
      for (const message of messages) send(message);
    },
    ledger,
    log,
    tuning,
    // qualify runs outside the bus, called directly: its own limit.
    remainingMs: () => timeoutMs('qualify'),
  };

  function send(message: StageMessage) {
    bus.publish(stageOf(message.kind), JSON.stringify(message));
  }

  const concurrency = { ...DEFAULT_LOCAL_CONCURRENCY, ...options.concurrency };
  for (const stage of TOPIC_STAGE_NAMES) {
    bus.subscribe(stage, async (event, timeoutMs) => {
      const deadline = Date.now() + timeoutMs;
      let failure: unknown;
      const handler = topicHandler(stage, () => runtime, { onRecordFailure: (_record, error) => void (failure = error) });
      const response = await handler(event, { getRemainingTimeInMillis: () => deadline - Date.now() });
      // A failed record (one per event here) is the invocation's failure: the bus retries it, keeping the reason.
      if (response && response.batchItemFailures.length > 0) throw failure;
      return response;
    }, concurrency[stage], timeoutMs(stage));
  }
  let heartbeat: NodeJS.Timeout | undefined;
  const started = (id: string) => {
    // A sign of life, so that a later start can tell this run from one whose process was killed.
    heartbeat = setInterval(() => void ledger.heartbeat(id).catch(() => undefined), 15_000);
    heartbeat.unref();
    options.onStart?.({ runId: id, ledger, bus });
  };
  const stopHeartbeat = () => clearInterval(heartbeat);

  return {
    runId, startedAt, bucket: options.bucket, runtime, bus, ledger, sourceOf, sink, sinkOf, stateSink: bareSink, log, send, keptAt, endReports, started, stopHeartbeat,
    meter, costs, planOnly: options.planOnly === true, plan: () => plan,
  };
}

/** By unit, where the message of a dead-lettered unit of this run is kept. */
function whereaboutsOf(runId: string, letters: DeadLetter[], keptAt: Map<string, string>): Whereabouts {
  const found: Whereabouts = new Map();
  for (const letter of letters) {
    const parsed = StageMessageSchema.safeParse(safeJson(letter.body));
    if (!parsed.success || parsed.data.runId !== runId || !('unit' in parsed.data) || !parsed.data.unit) continue;
    const where = keptAt.get(letter.body) ?? 'in this run\'s dead letters';
    found.set(parsed.data.unit, `dead-lettered after ${letter.attempts} attempts in ${letter.topic} (${letter.error}); kept ${where}: fix the cause, then run "azs3copy redrive" with the same options`);
  }
  return found;
}

/**
 * Wait for the bus to fall quiet, keep the dead letters, and end every run the pipeline worked on that has
 * not ended on its own: stalled, with blobs outstanding. The report is `runId`'s.
 */
export async function finishLocalRun(pipeline: LocalPipeline, runIds: string[] = [pipeline.runId]): Promise<LocalRunResult> {
  const { runId, bus, ledger } = pipeline;
  await bus.idle();
  pipeline.stopHeartbeat();
  let deadLettersKeptAt: string | undefined;
  let deadLettersNotKept: string | undefined;
  if (bus.deadLetters.length > 0 && pipeline.planOnly) {
    // A plan keeps nothing in the bucket: its listing failed, say why.
    throw new Error(`the plan could not list the source: ${bus.deadLetters[0].error}`);
  }
  if (bus.deadLetters.length > 0) {
    try {
      deadLettersKeptAt = await keepDeadLetters(pipeline.sink, pipeline.bucket, runId, bus.deadLetters);
    } catch (error) {
      deadLettersNotKept = errorMessage(error);
    }
    const where = deadLettersKeptAt ?? `in ./azs3copy-dead-letters-${runId}.json (the bucket would not take them: ${deadLettersNotKept})`;
    for (const letter of bus.deadLetters) pipeline.keptAt.set(letter.body, where);
  }
  let report: RunReport | undefined;
  for (const id of runIds) {
    const run = await ledger.getRun(id);
    if (!run) continue;
    if (run.state === 'running') {
      const letters = bus.deadLetters.length;
      const reason = letters > 0
        ? `${letters} message${letters === 1 ? ' was' : 's were'} dead-lettered, so blobs are outstanding`
        : 'the pipeline fell quiet with blobs outstanding';
      await ledger.markStalled(id, reason, run.lastProgressAt);
    } else if (run.state === 'stalled') {
      // Stalled before, and touched again (a redrive that did not finish it): its report says where its messages are now.
      await rewriteStalledReport(pipeline, id);
    }
    if ((id === runId || report === undefined) && pipeline.plan()) {
      // A dry run's report is its plan, written when it ended.
      report = { ...(await buildReport(ledger, (await ledger.getRun(id))!)), invocations: invocationsOf(bus) };
    } else if (id === runId || report === undefined) {
      // A run that had ended is as read above; one marked stalled just now (or touched again) is read again.
      const ended = run.state === 'complete' ? run : (await ledger.getRun(id))!;
      // The ending's own report, when it is of the run as it ended (a copy's: complete, or stalled just now, the
      // dead letters already kept); built again only otherwise. Read twice, 200,000 blobs' units cost 2,000 GETs
      // and a second report's worth of memory at the end of the run.
      const written = pipeline.endReports.get(id);
      const fresh = written && written.state === ended.state && written.finishedAt === ended.finishedAt && run.state !== 'stalled'
        ? written
        : await buildReport(ledger, ended, whereaboutsOf(id, bus.deadLetters, pipeline.keptAt));
      report = { ...fresh, invocations: invocationsOf(bus) };
      report.costs = await runCosts(ended, pipeline.costs);
      // The report in the bucket gets the final count of invocations too (it was written as the last blob settled).
      // Like the write probe, these are the runner's own requests, not a stage's.
      await writeReport(pipeline.stateSink, report);
    }
  }
  return {
    report: report ?? emptyReport(pipeline),
    deadLetters: bus.deadLetters,
    deadLettersKeptAt,
    deadLettersNotKept,
    bus: bus.stats,
    started: true,
    plan: pipeline.plan(),
    requests: pipeline.meter.peek(),
  };
}

/** A stalled run touched again (a redrive that did not finish it): its report says where its messages are now. */
async function rewriteStalledReport(pipeline: LocalPipeline, runId: string) {
  const run = await pipeline.ledger.getRun(runId);
  if (!run) return;
  await endOfRun({
    ledger: () => pipeline.ledger,
    stateFor: () => pipeline.stateSink,
    log: pipeline.log,
    whereabouts: async (id) => whereaboutsOf(id, pipeline.bus.deadLetters, pipeline.keptAt),
  })(run);
}

function invocationsOf(bus: Bus): Record<string, { count: number; maxSeconds: number }> {
  return Object.fromEntries(
    Object.entries(bus.invocations).map(([stage, s]) => [stage, { count: s.count, maxSeconds: Number(s.maxSeconds.toFixed(3)) }]),
  );
}

/** The report of a run that did not start. */
export function emptyReport(pipeline: Pick<LocalPipeline, 'runId' | 'startedAt' | 'bucket'>): RunReport {
  return {
    runId: pipeline.runId, state: 'complete', copied: [], copiedCount: 0, skipped: [], failed: [], outstanding: [], bytes: 0, unchanged: 0,
    beforeBeginDate: 0, filtered: 0, listed: 0, rehydrating: 0, verifiedFromSource: 0, startedAt: pipeline.startedAt.toISOString(),
    throughput: { bytesPerSecond: 0, objectsPerSecond: 0 },
    settings: { account: '', container: '', bucket: pipeline.bucket, prefix: '', largeBlobBytes: 0, partBytes: 0 },
  };
}

/** The sink of a plan: reads as usual, and any write fails (a plan writes nothing to the bucket). */
function readOnly(sink: ObjectSink): ObjectSink {
  const refuse = (what: string) => async () => {
    throw new Error(`a plan writes nothing to the bucket, but was about to ${what}`);
  };
  return {
    ...sink,
    put: refuse('put an object'), delete: refuse('delete an object'), deleteMany: refuse('delete objects'), createUpload: refuse('start an upload'), uploadPart: refuse('upload a part'),
    abort: refuse('abort an upload'), complete: refuse('complete an upload'), putJson: refuse('write a state object'),
    putText: refuse('write a state object'), deleteState: refuse('delete a state object'),
  };
}

/**
 * Write and remove a small object under the state prefix. HeadBucket passes with
 * read-only credentials; this finds out at the start, in one line, that they
 * cannot write, rather than once per blob.
 */
async function probeWrite(sink: ObjectSink, bucket: string, runId: string): Promise<void> {
  const key = `${STATE_PREFIX}probe/${runId}.json`;
  try {
    await sink.putJson(key, { runId });
    await sink.deleteState(key);
  } catch (error) {
    throw explainBucketError(error, bucket);
  }
}

export { deadLetterKey };

export function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
