/**
 * Where each blob's outcome goes. The local runner keeps outcomes in memory and
 * writes the report from them; in AWS they become log lines and metrics. The shape
 * is the run's state: enough to answer how far along, what failed and why.
 */

export type Outcome =
  | { status: 'copied'; name: string; key: string; bytes: number; path: 'single' | 'multipart' }
  | { status: 'skipped'; name: string; reason: string }
  | { status: 'failed'; name: string; reason: string };

export interface ListingProgress {
  listed: number;
  routedSmall: number;
  routedLarge: number;
  routedBytes: number;
  unchanged: number;
  beforeBeginDate: number;
  done: boolean;
}

export interface Ledger {
  record(runId: string, outcome: Outcome): Promise<void>;
  /** A listing invocation finished; counts are for that invocation only. */
  listed(runId: string, progress: ListingProgress): Promise<void>;
}

export interface RunReport {
  runId: string;
  copied: string[];
  skipped: { name: string; reason: string }[];
  failed: { name: string; reason: string }[];
  bytes: number;
  unchanged: number;
  beforeBeginDate: number;
  listed: number;
  startedAt?: string;
  finishedAt?: string;
  seconds?: number;
}

/**
 * Outcomes kept in memory. A blob delivered twice is counted once: the last word
 * wins, except that a copy is never overturned by a later duplicate's failure to
 * find an upload that the first delivery already completed.
 */
export function memoryLedger() {
  const outcomes = new Map<string, Outcome>();
  const totals: ListingProgress = {
    listed: 0, routedSmall: 0, routedLarge: 0, routedBytes: 0, unchanged: 0, beforeBeginDate: 0, done: false,
  };
  let bytes = 0;
  const listeners = new Set<(outcome: Outcome) => void>();

  const ledger: Ledger & {
    outcomes: Map<string, Outcome>;
    totals: ListingProgress;
    copiedBytes(): number;
    onOutcome(listener: (outcome: Outcome) => void): void;
    report(runId: string): RunReport;
  } = {
    outcomes,
    totals,
    copiedBytes: () => bytes,
    onOutcome: (listener) => void listeners.add(listener),
    async record(_runId, outcome) {
      const before = outcomes.get(outcome.name);
      if (before?.status === 'copied' && outcome.status !== 'copied') return;
      if (before?.status === 'copied') bytes -= before.bytes;
      outcomes.set(outcome.name, outcome);
      if (outcome.status === 'copied') bytes += outcome.bytes;
      for (const listener of listeners) listener(outcome);
    },
    async listed(_runId, progress) {
      totals.listed += progress.listed;
      totals.routedSmall += progress.routedSmall;
      totals.routedLarge += progress.routedLarge;
      totals.routedBytes += progress.routedBytes;
      totals.unchanged += progress.unchanged;
      totals.beforeBeginDate += progress.beforeBeginDate;
      totals.done ||= progress.done;
    },
    report(runId) {
      const all = [...outcomes.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      return {
        runId,
        copied: all.filter((o) => o.status === 'copied').map((o) => o.name),
        skipped: all.flatMap((o) => (o.status === 'skipped' ? [{ name: o.name, reason: o.reason }] : [])),
        failed: all.flatMap((o) => (o.status === 'failed' ? [{ name: o.name, reason: o.reason }] : [])),
        bytes,
        unchanged: totals.unchanged,
        beforeBeginDate: totals.beforeBeginDate,
        listed: totals.listed,
      };
    },
  };
  return ledger;
}
export type MemoryLedger = ReturnType<typeof memoryLedger>;
