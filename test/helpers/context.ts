/**
 * A StageContext for calling one stage directly, with what it publishes collected
 * rather than delivered.
 */
import { DEFAULT_TUNING, type StageContext, type Tuning } from '../../lambdas/core/context';
import { runLedger, type RunLedger } from '../../lambdas/core/run-ledger';
import { memoryTable } from '../../lambdas/core/state/memory-table';
import { silentLogger } from '../../lambdas/core/log';
import type { RunSettings, StageMessage } from '../../lambdas/core/messages';
import type { BlobSource, ObjectSink } from '../../lambdas/core/stores/types';

export const MiB = 1024 * 1024;

export function runSettings(overrides: Partial<RunSettings> = {}): RunSettings {
  return {
    account: 'devstoreaccount1',
    container: 'src',
    bucket: 'dest',
    prefix: '',
    largeBlobBytes: 100 * MiB,
    partBytes: 64 * MiB,
    ...overrides,
  };
}

export function stageContext(parts: {
  source?: BlobSource;
  sink?: ObjectSink;
  /** Further destinations' sinks, by place (the first is `sink`). */
  more?: ObjectSink[];
  settings?: RunSettings;
  tuning?: Partial<Tuning>;
  remainingMs?: () => number;
  /** Another invocation's context shares the run state. */
  ledger?: RunLedger;
}) {
  const published: StageMessage[] = [];
  const ledger = parts.ledger ?? runLedger(memoryTable());
  // Any stage's context: a test hands it to the stage it calls, whatever that stage's own capabilities.
  const ctx: StageContext<any, any> = {
    runId: 'run-test',
    settings: parts.settings ?? runSettings(),
    source: parts.source ?? ({} as BlobSource),
    sink: parts.sink ?? ({} as ObjectSink),
    sinks: [parts.sink ?? ({} as ObjectSink), ...(parts.more ?? [])],
    publish: async (messages) => void published.push(...messages),
    ledger,
    log: silentLogger,
    tuning: { ...DEFAULT_TUNING, ...parts.tuning },
    remainingMs: parts.remainingMs ?? (() => 15 * 60 * 1000),
  };
  return { ctx, published, ledger };
}

/** A sink that holds nothing: every blob looks new. Only `list` may be called. */
export const emptySink = {
  list: async () => ({ objects: [], truncated: false }),
} as unknown as ObjectSink;

/** A run the ledger knows, with one unit of these blobs (what the listing would have created). */
export async function runWithUnit(ledger: RunLedger, unit: string, blobs: { name: string; size: number }[], runId = 'run-test') {
  await ledger.begin({ runId, pipeline: 'test', settings: runSettings(), stallAfterSeconds: 1800, owner: { kind: 'pipeline' } });
  await ledger.addUnits(runId, [{ unit, blobs, large: blobs.length === 1 }]);
}

/** Each blob's outcome in a run's units, by name: 'copied', 'skipped: reason', 'failed: reason' or 'pending'. */
export async function outcomesOf(ledger: RunLedger, runId = 'run-test'): Promise<Record<string, string>> {
  const words: Record<string, string> = { c: 'copied', s: 'skipped', f: 'failed', p: 'pending' };
  const found: Record<string, string> = {};
  for await (const unit of ledger.units(runId)) {
    unit.names.forEach((name, i) => {
      const reason = unit.reasons[i];
      found[name] = reason ? `${words[unit.status[i]]}: ${reason}` : words[unit.status[i]];
    });
  }
  return found;
}
