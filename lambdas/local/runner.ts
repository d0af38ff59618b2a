/**
 * The local pipeline: the six stages' Lambda handlers, wired by the in-process bus
 * exactly as SNS wires them in AWS, against any Azure and S3 endpoints (the
 * emulators by default). It ends with a report in which every listed blob that
 * was not copied has a reason: dead letters and blobs that never reached an
 * outcome are failures, not silence.
 */
import type { CopyConfig, SourceConfig } from '../core/config';
import {
  DEFAULT_LARGE_BLOB_BYTES, DEFAULT_PART_BYTES, DEFAULT_TUNING, type Runtime, type Tuning,
} from '../core/context';
import { errorMessage } from '../core/errors';
import { topicHandler } from '../core/handler';
import { memoryLedger, type MemoryLedger, type RunReport } from '../core/ledger';
import { createLogger, type Logger } from '../core/log';
import { StageMessageSchema, type RunSettings, type StageMessage } from '../core/messages';
import { TOPIC_STAGES, stageOf, type TopicStage } from '../core/stages';
import { newRunId, qualify } from '../core/stages/qualify';
import { azureSource, type AzureSourceOptions } from '../core/stores/azure-source';
import { s3Client, s3Sink } from '../core/stores/s3-sink';
import type { BlobSource, ObjectSink } from '../core/stores/types';
import { createBus, type Bus, type BusOptions, type DeadLetter } from './bus';

export const DEFAULT_LOCAL_CONCURRENCY: Record<TopicStage, number> = {
  'find-blobs': 1,
  download: 6,
  'largefile-initializer': 2,
  parter: 8,
  recombinator: 2,
};

export interface LocalCopyOptions {
  source: SourceConfig;
  bucket: string;
  prefix?: string;
  s3Endpoint?: string;
  beginDate?: string;
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
  bus: Bus['stats'];
  started: boolean;
  reason?: string;
}

export async function runLocalCopy(options: LocalCopyOptions): Promise<LocalRunResult> {
  const startedAt = new Date();
  const log = options.log ?? createLogger({}, { level: 'warn', write: (line) => process.stderr.write(line + '\n') });
  const ledger = memoryLedger();
  const bus = createBus({
    ...options.bus,
    onError: (topic, error, attempt) => log.warn('invocation failed', { topic, attempt, error: errorMessage(error) }),
  });
  const routed = new Map<string, number>();
  const client = s3Client({ endpoint: options.s3Endpoint, maxAttempts: options.s3MaxAttempts });
  const source = (options.wrapSource ?? ((s) => s))(azureSource(options.source, { onWarning: (m) => log.warn(m), ...options.azure }));
  const sink = (options.wrapSink ?? ((s) => s))(s3Sink({ bucket: options.bucket, endpoint: options.s3Endpoint }, client));
  const config: CopyConfig = { source: options.source, isActive: true, beginDate: options.beginDate };
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
      if (settings.container !== options.source.container) throw new Error(`no local source for container ${settings.container}`);
      return source;
    },
    sinkFor: () => sink,
    async publish(messages: StageMessage[]) {
      for (const message of messages) {
        if (message.kind === 'copy-blobs') for (const b of message.blobs) routed.set(b.name, b.size);
        if (message.kind === 'large-blob') routed.set(message.blob.name, message.blob.size);
        bus.publish(stageOf(message.kind), JSON.stringify(message));
      }
    },
    ledger,
    log,
    tuning: { ...DEFAULT_TUNING, ...options.tuning },
    remainingMs: () => invocationMs,
  };

  const concurrency = { ...DEFAULT_LOCAL_CONCURRENCY, ...options.concurrency };
  for (const stage of Object.keys(TOPIC_STAGES) as TopicStage[]) {
    const handler = topicHandler(stage, () => runtime);
    bus.subscribe(stage, (event) => {
      const deadline = Date.now() + invocationMs;
      return handler(event, { getRemainingTimeInMillis: () => deadline - Date.now() });
    }, concurrency[stage]);
  }

  const runId = options.runId ?? newRunId(startedAt);
  options.onStart?.({ runId, ledger, bus });
  // Called directly rather than through its Lambda handler, so a configuration error reaches the CLI as one.
  const first = await qualify(runtime, { runId });
  if (!first.started) {
    return { report: { ...ledger.report(runId), startedAt: startedAt.toISOString() }, deadLetters: [], bus: bus.stats, started: false, reason: first.reason };
  }
  await bus.idle();

  await accountForDeadLetters(runId, ledger, bus.deadLetters);
  for (const [name] of routed) {
    if (!ledger.outcomes.has(name)) {
      await ledger.record(runId, { status: 'failed', name, reason: 'routed for copying but no stage reported an outcome' });
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
    bus: bus.stats,
    started: true,
  };
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
    const names =
      message.kind === 'copy-blobs' ? message.blobs.map((b) => b.name)
      : message.kind === 'list-page' ? [`(container listing, invocation ${message.invocation})`]
      : [message.blob.name];
    for (const name of names) {
      const before = ledger.outcomes.get(name);
      if (before?.status !== 'copied') await ledger.record(runId, { status: 'failed', name, reason });
    }
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

