/**
 * The local pipeline: the stages' Lambda handlers, wired by the in-process bus
 * exactly as SNS wires them in AWS, against any Azure and S3 endpoints. A copy
 * starts it with qualify, a redrive with the dead letters of an earlier run; both
 * end the same way, with a report in which every blob that was routed and not
 * copied has a reason (dead letters and blobs that never reached an outcome are
 * failures, not silence), and with the run's own dead letters kept for a redrive.
 */
import type { CopyConfig, SourceConfig } from '../core/config';
import {
  DEFAULT_LARGE_BLOB_BYTES, DEFAULT_PART_BYTES, DEFAULT_TUNING, type Runtime, type Tuning,
} from '../core/context';
import { ConfigError, errorMessage } from '../core/errors';
import { topicHandler } from '../core/handler';
import { memoryLedger, type MemoryLedger, type RunReport } from '../core/ledger';
import { createLogger, type Logger } from '../core/log';
import { StageMessageSchema, type RunSettings, type StageMessage } from '../core/messages';
import { STATE_PREFIX } from '../core/keys';
import { TOPIC_STAGES, stageOf, type TopicStage } from '../core/stages';
import { newRunId } from '../core/stages/qualify';
import { azureSource, type AzureSourceOptions } from '../core/stores/azure-source';
import { explainBucketError, s3Client, s3Sink } from '../core/stores/s3-sink';
import type { BlobSource, ObjectSink } from '../core/stores/types';
import { createBus, type Bus, type BusOptions, type DeadLetter } from './bus';
import { keepDeadLetters } from './dead-letters';

export const DEFAULT_LOCAL_CONCURRENCY: Record<TopicStage, number> = {
  'find-blobs': 1,
  download: 6,
  'largefile-initializer': 2,
  // Each parter holds its part (64 MiB by default) in memory; three keep one S3 server busy (moto takes one
  // request at a time) while the next parts are read, and bound memory to about 3 parts. More only add memory.
  parter: 3,
  // One at a time: the last two parts of an upload often finish together, and two recombinators would then both
  // complete it; on moto each completion rewrites the whole object (about 6 s of its CPU per GiB).
  recombinator: 1,
};

export interface LocalCopyOptions {
  source: SourceConfig;
  bucket: string;
  prefix?: string;
  s3Endpoint?: string;
  beginDate?: string;
  /** The secret's switch, when the run comes from one; off means the run does not start. @default true */
  isActive?: boolean;
  largeBlobBytes?: number;
  partBytes?: number;
  tuning?: Partial<Tuning>;
  /** Invocations of each stage at once (a Lambda's reserved concurrency). */
  concurrency?: Partial<Record<TopicStage, number>>;
  bus?: BusOptions;
  /** Time each invocation has, as a Lambda's timeout (15 minutes). */
  invocationMs?: number;
  log?: Logger;
  runId?: string;
  azure?: AzureSourceOptions;
  s3MaxAttempts?: number;
  /** Wrap the stores, e.g. to count requests. */
  wrapSource?: (source: BlobSource) => BlobSource;
  wrapSink?: (sink: ObjectSink) => ObjectSink;
  /** Called when the run has started, with the ledger to watch for progress. */
  onStart?: (run: { runId: string; ledger: MemoryLedger; bus: Bus }) => void;
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
}

export type LocalPipeline = ReturnType<typeof localPipeline>;

export function localPipeline(options: LocalCopyOptions) {
  const startedAt = new Date();
  const runId = options.runId ?? newRunId(startedAt);
  const log = options.log ?? createLogger({}, { level: 'warn', write: (line) => process.stderr.write(line + '\n') });
  const ledger = memoryLedger();
  const bus = createBus({
    ...options.bus,
    onError: (topic, error, attempt) => log.warn('invocation failed', { topic, attempt, error: errorMessage(error) }),
  });
  /** Every blob handed to a copying stage, so that one without an outcome is reported, not forgotten. */
  const routed = new Map<string, number>();
  const client = s3Client({ endpoint: options.s3Endpoint, maxAttempts: options.s3MaxAttempts });
  const source = (options.wrapSource ?? ((s) => s))(azureSource(options.source, { onWarning: (m) => log.warn(m), ...options.azure }));
  const bareSink = s3Sink({ bucket: options.bucket, endpoint: options.s3Endpoint }, client);
  const stagesSink = (options.wrapSink ?? ((s) => s))(bareSink);
  const sink: ObjectSink = {
    ...stagesSink,
    // Locally the user's own credentials write: check that they may, before the first blob finds out.
    // The probe is the runner's own request, not a stage's: it goes past any wrapper counting those.
    async check() {
      await stagesSink.check();
      await probeWrite(bareSink, options.bucket, runId);
    },
  };
  const config: CopyConfig = { source: options.source, isActive: options.isActive ?? true, beginDate: options.beginDate };
  const invocationMs = options.invocationMs ?? 15 * 60 * 1000;

  const runtime: Runtime = {
    loadConfig: async () => config,
    defaults: {
      bucket: options.bucket,
      prefix: options.prefix ?? '',
      largeBlobBytes: options.largeBlobBytes ?? DEFAULT_LARGE_BLOB_BYTES,
      partBytes: options.partBytes ?? DEFAULT_PART_BYTES,
    },
    sourceFor: async (settings: RunSettings) => {
      if (settings.container !== options.source.container) {
        throw new ConfigError(`the message is for container "${settings.container}", not "${options.source.container}": give --container ${settings.container}`);
      }
      return source;
    },
    sinkFor: () => sink,
    async publish(messages: StageMessage[]) {
      for (const message of messages) send(message);
    },
    ledger,
    log,
    tuning: { ...DEFAULT_TUNING, ...options.tuning },
    remainingMs: () => invocationMs,
  };

  function send(message: StageMessage) {
    for (const [name, size] of blobsOf(message)) routed.set(name, size);
    bus.publish(stageOf(message.kind), JSON.stringify(message));
  }

  const concurrency = { ...DEFAULT_LOCAL_CONCURRENCY, ...options.concurrency };
  for (const stage of Object.keys(TOPIC_STAGES) as TopicStage[]) {
    const handler = topicHandler(stage, () => runtime);
    bus.subscribe(stage, (event) => {
      const deadline = Date.now() + invocationMs;
      return handler(event, { getRemainingTimeInMillis: () => deadline - Date.now() });
    }, concurrency[stage]);
  }
  options.onStart?.({ runId, ledger, bus });

  return { runId, startedAt, bucket: options.bucket, runtime, bus, ledger, source, sink, log, send, routed };
}

/** Wait for the bus to fall quiet, account for what did not finish, keep the dead letters, report. */
export async function finishLocalRun(pipeline: LocalPipeline): Promise<LocalRunResult> {
  const { runId, bus, ledger, startedAt } = pipeline;
  await bus.idle();
  await accountForDeadLetters(runId, ledger, bus.deadLetters);
  for (const [name] of pipeline.routed) {
    if (!ledger.outcomes.has(name)) {
      await ledger.record(runId, { status: 'failed', name, reason: 'routed for copying but no stage reported an outcome' });
    }
  }
  let deadLettersKeptAt: string | undefined;
  let deadLettersNotKept: string | undefined;
  if (bus.deadLetters.length > 0) {
    try {
      deadLettersKeptAt = await keepDeadLetters(pipeline.sink, pipeline.bucket, runId, bus.deadLetters);
    } catch (error) {
      deadLettersNotKept = errorMessage(error);
    }
  }
  const finishedAt = new Date();
  return {
    report: {
      ...ledger.report(runId),
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      seconds: (finishedAt.getTime() - startedAt.getTime()) / 1000,
    },
    deadLetters: bus.deadLetters,
    deadLettersKeptAt,
    deadLettersNotKept,
    bus: bus.stats,
    started: true,
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
    await sink.delete(key);
  } catch (error) {
    throw explainBucketError(error, bucket);
  }
}

/** The blobs (name and size) a message asks a stage to copy; a listing names none. */
export function blobsOf(message: StageMessage): [string, number][] {
  if (message.kind === 'copy-blobs') return message.blobs.map((b) => [b.name, b.size]);
  if (message.kind === 'list-page') return [];
  return [[message.blob.name, message.blob.size]];
}

/** A dead-lettered message means its blobs were not copied: say so, with the last error. */
async function accountForDeadLetters(runId: string, ledger: MemoryLedger, deadLetters: DeadLetter[]) {
  for (const letter of deadLetters) {
    const parsed = StageMessageSchema.safeParse(safeJson(letter.body));
    const reason = `dead-lettered after ${letter.attempts} attempts in ${letter.topic}: ${letter.error}`;
    if (!parsed.success) {
      await ledger.record(runId, { status: 'failed', name: `(unreadable message on ${letter.topic})`, reason });
      continue;
    }
    const message = parsed.data;
    const names = message.kind === 'list-page' ? [`(container listing, invocation ${message.invocation})`] : blobsOf(message).map(([name]) => name);
    for (const name of names) {
      const before = ledger.outcomes.get(name);
      if (before?.status !== 'copied') await ledger.record(runId, { status: 'failed', name, reason });
    }
  }
}

export function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
