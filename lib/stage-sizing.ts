/**
 * How big each deployed function is, and how many of it may run at once: the
 * defaults, each overridable through the `functions` context. (What a function
 * may do is not here: lib/grants.ts derives it from the stage's code.)
 *
 * No function reserves concurrency by default, so a deploy needs no account
 * quota beyond what AWS keeps unreserved: the copy stages are bounded by their
 * queue's event source mapping (`maxConcurrency`, which reserves nothing), and the
 * listing stays one at a time per run by its claim in the run state.
 */
import { DEFAULT_TIMEOUT_MINUTES as T, type StageName } from '../lambdas/core/stages/specs';

/** A function's size; each field can be overridden through the `functions` context. */
export interface FunctionSizing {
  /** Memory in MiB (128-10240); CPU and network bandwidth grow with it. */
  readonly memoryMiB: number;
  /** Timeout in minutes (at most 15). */
  readonly timeoutMinutes: number;
  /**
   * For a stage fed by a queue: at most this many invocations at once (the event source mapping's maximum
   * concurrency, 2-1000), which takes nothing from the account's quota while idle.
   */
  readonly maxConcurrency?: number;
  /** Concurrent executions reserved for the function (they also cap it). @default - none reserved */
  readonly reservedConcurrency?: number;
}

export interface StageDeployment {
  /** One line for the function's description. */
  readonly description: string;
  readonly sizing: FunctionSizing;
}

export const STAGE_DEPLOYMENTS: Record<StageName, StageDeployment> = {
  qualify: {
    description: 'Starts a run: reads the secret, checks source and bucket, publishes the first listing message; checks a running run for a stall',
    // A stalled run's report is written here (it reads the run's units and the dead-letter queues).
    sizing: { memoryMiB: 512, timeoutMinutes: T.qualify },
  },
  'find-blobs': {
    description: 'Lists the container a page at a time, continuing itself through its own queue',
    // 2 is the least a mapping allows; each listing step is claimed in the run state, so one runs at a time.
    sizing: { memoryMiB: 1024, timeoutMinutes: T['find-blobs'], maxConcurrency: 2 },
  },
  download: {
    description: 'Copies small blobs, each in one PUT',
    sizing: { memoryMiB: 1024, timeoutMinutes: T.download, maxConcurrency: 50 },
  },
  'largefile-initializer': {
    description: 'Starts or resumes the multipart upload of a large blob and plans its parts',
    sizing: { memoryMiB: 512, timeoutMinutes: T['largefile-initializer'], maxConcurrency: 5 },
  },
  parter: {
    description: 'Copies one byte range of a large blob into one part of its upload',
    sizing: { memoryMiB: 1024, timeoutMinutes: T.parter, maxConcurrency: 100 },
  },
  recombinator: {
    description: 'Completes a multipart upload once every part is in, and verifies it',
    sizing: { memoryMiB: 512, timeoutMinutes: T.recombinator, maxConcurrency: 5 },
  },
  events: {
    description: 'Event Grid webhook (function URL): routes created blobs to the copy stages, follows deletions in mirror mode',
    sizing: { memoryMiB: 512, timeoutMinutes: T.events },
  },
};
