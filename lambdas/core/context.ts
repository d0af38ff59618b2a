/**
 * What a stage needs from the world, injected so that the same stage logic runs in
 * Lambda (SNS, Secrets Manager, S3) and in the local runner (an in-process bus).
 */
import type { Ledger } from './ledger';
import type { Logger } from './log';
import type { RunSettings, StageMessage } from './messages';
import type { RetryOptions } from './retry';
import type { BlobSource, ObjectSink } from './stores/types';
import type { CopyConfig } from './config';

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
  /** Stage-level retries of a whole read-and-write (the SDKs retry single requests). */
  retry: RetryOptions;
}

export const DEFAULT_TUNING: Tuning = {
  listPageSize: 5000,
  listReserveMs: 120_000,
  downloadConcurrency: 16,
  blobsPerMessage: 100,
  bytesPerMessage: 1024 * 1024 * 1024,
  maxReplans: 3,
  retry: { attempts: 4, baseDelayMs: 250, maxDelayMs: 10_000 },
};

export const MiB = 1024 * 1024;

/** Defaults that the deployment (env) or the CLI (flags) sets, and a run may override. */
export interface Defaults {
  bucket?: string;
  prefix: string;
  largeBlobBytes: number;
  partBytes: number;
}

export const DEFAULT_LARGE_BLOB_BYTES = 100 * MiB;
export const DEFAULT_PART_BYTES = 64 * MiB;

export interface Runtime {
  /** The whole configuration, credentials included; read fresh (or from a short cache). */
  loadConfig(): Promise<CopyConfig>;
  defaults: Defaults;
  sourceFor(settings: RunSettings): Promise<BlobSource>;
  sinkFor(settings: RunSettings): ObjectSink;
  publish(messages: StageMessage[]): Promise<void>;
  ledger: Ledger;
  log: Logger;
  tuning: Tuning;
  /** Dimensions of the custom metrics this runtime emits. */
  metricDimensions?: Record<string, string>;
  /** Milliseconds this invocation has left (Lambda's clock; the local runner's budget). */
  remainingMs(): number;
}

/** What one stage invocation works with: the runtime, bound to one message's run. */
export interface StageContext {
  runId: string;
  settings: RunSettings;
  source: BlobSource;
  sink: ObjectSink;
  publish(messages: StageMessage[]): Promise<void>;
  ledger: Ledger;
  log: Logger;
  tuning: Tuning;
  remainingMs(): number;
}

export async function contextFor(runtime: Runtime, message: StageMessage, stage: string): Promise<StageContext> {
  return {
    runId: message.runId,
    settings: message.run,
    source: await runtime.sourceFor(message.run),
    sink: runtime.sinkFor(message.run),
    publish: (messages) => runtime.publish(messages),
    ledger: runtime.ledger,
    log: runtime.log.child({ runId: message.runId, stage }),
    tuning: runtime.tuning,
    remainingMs: () => runtime.remainingMs(),
  };
}
