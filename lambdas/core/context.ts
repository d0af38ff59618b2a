/**
 * What a stage needs from the world, injected so that the same stage logic runs in
 * Lambda (SQS, Secrets Manager, S3, DynamoDB) and in the local runner (an
 * in-process queue, the bucket as run state).
 */
import type { CopyConfig } from './config';
import { destinationsOf, type Destination } from './destinations';
import type { Logger } from './log';
import type { MetricName } from './metrics';
import { stamped, type RunSettings, type StageMessage } from './messages';
import type { RetryOptions } from './retry';
import type { RunLedger } from './run-ledger';
import type { MessageKind, StageName, StageSpec } from './stages/specs';
import { STAGE_SPECS } from './stages/specs';
import { sinkWith, type BlobSource, type ObjectSink, type SinkCapability, type SinkWith } from './stores/types';

export interface Tuning {
  /** Blobs asked for per listing request (Azure returns at most 5,000). */
  listPageSize: number;
  /** A listing invocation hands on to the next when less than this much time is left. */
  listReserveMs: number;
  /** Blobs one download invocation copies at once. */
  downloadConcurrency: number;
  /** Small blobs per download message; bytes per message are capped too. */
  blobsPerMessage: number;
  bytesPerMessage: number;
  /** Re-plans of a large blob that keeps changing before it is reported failed. */
  maxReplans: number;
  /** Rounds a blob that failed for a passing reason is sent before its message is left to the queue's retries. */
  maxBlobAttempts: number;
  /** Retries of a whole read-and-write where no lower layer retries it (a streamed body cut mid-way). */
  retry: RetryOptions;
  /**
   * A part read whole is read as this many ranges at once (each at least RANGE_READ_MIN_BYTES): one HTTP
   * connection across a long distance carries far less than the path can (its window, its provider's cap per
   * connection), so a part's read is split into ranges over several connections, each written into the part's
   * one buffer at its place. Memory is the part's, as before.
   */
  rangeReadsPerPart: number;
  /**
   * A verification's claim outlives its invocation by this much: an invocation Lambda stopped at its timeout
   * may still be finishing a request, so the check is taken over only after it. The stage's queue hides a
   * failed message for longer than the function's timeout plus this, so its retry finds the claim expired.
   * Tests shorten it (with the local queue's wait) to show the takeover in seconds.
   */
  verificationLeaseMarginMs: number;
}

export const DEFAULT_TUNING: Tuning = {
  listPageSize: 5000,
  listReserveMs: 120_000,
  downloadConcurrency: 16,
  blobsPerMessage: 100,
  bytesPerMessage: 1024 * 1024 * 1024,
  maxReplans: 3,
  maxBlobAttempts: 3,
  retry: { attempts: 3, baseDelayMs: 250, maxDelayMs: 10_000 },
  rangeReadsPerPart: 4,
  verificationLeaseMarginMs: 30_000,
};

export const MiB = 1024 * 1024;

/** Defaults that the deployment (env) or the CLI (flags) sets, and a run may override. */
export interface Defaults {
  bucket?: string;
  prefix: string;
  largeBlobBytes: number;
  partBytes: number;
  /** The parter's timeout: parts are planned to fit it. */
  partTimeoutSeconds: number;
  /** Further destinations the deployment grants (the secret's "destinations" key overrides them). */
  also?: Destination[];
}

export const DEFAULT_LARGE_BLOB_BYTES = 100 * MiB;
export const DEFAULT_PART_BYTES = 64 * MiB;
/** A run with blobs outstanding and no progress for this long is marked stalled. */
export const DEFAULT_STALL_AFTER_SECONDS = 30 * 60;

/** Where each outstanding blob's message waits, for a stalled run's report. */
export type DeadLetterFinder = (runId: string) => Promise<Map<string, string>>;

export interface Runtime {
  /** The whole configuration, credentials included; read fresh (or from a short cache). */
  loadConfig(): Promise<CopyConfig>;
  defaults: Defaults;
  /** Which pipeline this is (the deployment's prefix, or a local destination): one run at a time each. */
  pipeline: string;
  /** Who starts its runs: the deployed pipeline, or this local process. */
  owner: 'pipeline' | 'local';
  stallAfterSeconds: number;
  sourceFor(settings: RunSettings): Promise<BlobSource>;
  /** Every container of the run's account but the system ones (for "all containers"). */
  listContainers(settings: RunSettings): Promise<string[]>;
  /** The bucket of a run's first destination (with its state), or of another (`destination` from destinations.ts). */
  sinkFor(settings: RunSettings, destination?: Destination): ObjectSink;
  publish(messages: StageMessage[]): Promise<void>;
  ledger: RunLedger;
  log: Logger;
  tuning: Tuning;
  /** Milliseconds this invocation has left (Lambda's clock; the local runner's budget). */
  remainingMs(): number;
  /** Count a pipeline-level event as a metric (deployed); nothing locally. */
  metric?(name: MetricName, value: number): void;
}

/** What one stage invocation works with: the runtime, bound to one message's run, holding only the stage's own capabilities. */
export interface StageContext<C extends SinkCapability = SinkCapability, K extends MessageKind = MessageKind> {
  runId: string;
  settings: RunSettings;
  source: BlobSource;
  /** The destination the message is about (its `d`; else the first, which keeps the run's state). */
  sink: SinkWith<C>;
  /** Every destination of the run, by place (destinations.ts): `sinks[0]` is the first. */
  sinks: SinkWith<C>[];
  publish(messages: Extract<StageMessage, { kind: K }>[]): Promise<void>;
  ledger: RunLedger;
  log: Logger;
  tuning: Tuning;
  remainingMs(): number;
}

/** The context type of a stage, from its spec: with an Azure source only when the spec says it reads Azure. */
export type ContextOf<S extends StageSpec> = S extends { readsAzure: true }
  ? StageContext<S['needs'][number], S['sends'][number]>
  : Omit<StageContext<S['needs'][number], S['sends'][number]>, 'source'>;

export function contextFor(runtime: Runtime, message: StageMessage, stage: StageName): StageContext {
  const spec: StageSpec = STAGE_SPECS[stage];
  const sends = new Set<string>(spec.sends);
  const sinks = destinationsOf(message.run).map((destination, d) =>
    sinkWith(d === 0 ? runtime.sinkFor(message.run) : runtime.sinkFor(message.run, destination), spec.needs) as SinkWith<SinkCapability>);
  return {
    runId: message.runId,
    settings: message.run,
    // A stage that does not read Azure gets no source: it does not sign in (its role may not), nor load the secret for it.
    // One that does signs in on its first read, so an invocation that reads nothing (the recombinator of a copy
    // it can read back) never loads Azure's credentials.
    source: spec.readsAzure ? lazySource(() => runtime.sourceFor(message.run)) : noSource(stage),
    sink: sinks['d' in message && message.d !== undefined && message.d < sinks.length ? message.d : 0],
    sinks,
    publish: async (messages) => {
      const stray = messages.find((m) => !sends.has(m.kind));
      if (stray) throw new Error(`${stage} may not send a "${stray.kind}" message (lambdas/core/stages/specs.ts)`);
      await runtime.publish(messages.map(stamped));
    },
    ledger: runtime.ledger,
    log: runtime.log.child({ runId: message.runId, stage }),
    tuning: runtime.tuning,
    remainingMs: () => runtime.remainingMs(),
  };
}

/** A source made on first use (and made again after a failed attempt, which may have been a passing one). */
function lazySource(make: () => Promise<BlobSource>): BlobSource {
  let made: Promise<BlobSource> | undefined;
  const source = () => {
    made ??= make().catch((error: unknown) => {
      made = undefined;
      throw error;
    });
    return made;
  };
  return {
    check: async () => (await source()).check(),
    listPage: async (continuation, maxPageSize) => (await source()).listPage(continuation, maxPageSize),
    properties: async (name, etag) => (await source()).properties(name, etag),
    blob: async (name) => (await source()).blob(name),
    read: async (name, etag, range) => (await source()).read(name, etag, range),
    rehydrate: async (name) => (await source()).rehydrate(name),
  };
}

/** The source of a stage whose spec does not read Azure: any use is a mistake in the spec. */
function noSource(stage: StageName): BlobSource {
  const refuse = (): never => {
    throw new Error(`${stage} may not read Azure (lambdas/core/stages/specs.ts: readsAzure)`);
  };
  return { check: refuse, listPage: refuse, properties: refuse, blob: refuse, read: refuse, rehydrate: refuse };
}
