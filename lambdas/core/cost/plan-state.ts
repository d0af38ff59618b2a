/**
 * A dry run's plan in the run state: each listing page's entries (the blobs it
 * would copy, skip or fail, with reasons) as items `plan.<page>.<n>` in the run's
 * partition, and each listing step's tally in its listing item (run-ledger.ts
 * keeps it with the step's totals, counted once). Pages are written whole by
 * their page id, so a listing step taken over by a second delivery writes the
 * same items again, harmlessly.
 */
import type { RunLedger } from '../run-ledger';
import type { StateTable } from '../state/table';
import { addTally, emptyTally, type PlanEntry, type PlanTally } from './tally';
import { planNamesCollector, type PlanNames } from './plan-report';

const runPk = (runId: string) => `run.${runId}`;
/** Entries per item stay well under DynamoDB's 400 KB (and are one small object each in the bucket). */
const ITEM_BYTES = 64 * 1024;

export async function recordPlanPage(table: StateTable, runId: string, pageId: string, entries: PlanEntry[]): Promise<void> {
  const items: PlanEntry[][] = [];
  let current: PlanEntry[] = [];
  let bytes = 0;
  for (const entry of entries) {
    const size = Buffer.byteLength(JSON.stringify(entry), 'utf8') + 1;
    if (current.length > 0 && bytes + size > ITEM_BYTES) {
      items.push(current);
      current = [];
      bytes = 0;
    }
    current.push(entry);
    bytes += size;
  }
  if (current.length > 0) items.push(current);
  await Promise.all(items.map((e, n) => table.put({ pk: runPk(runId), sk: `plan.${pageId}.${String(n).padStart(4, '0')}`, entries: e })));
}

/** The tally of every listing step of a run, and the containers listed. */
export async function planTally(ledger: RunLedger, runId: string): Promise<{ tally: PlanTally; containers: string[] }> {
  const tally = emptyTally();
  const containers = new Set<string>();
  await eachItem(ledger.table, runId, 'list.', (item) => {
    // list.<container>.<invocation> (and the mirror's steps, list.@mirror.<step>, which are no container)
    const container = String(item.sk).slice('list.'.length).replace(/\.\d+$/, '');
    if (!container.startsWith('@')) containers.add(container);
    if (item.state === 'done' && item.plan) addTally(tally, item.plan as PlanTally);
  });
  return { tally, containers: [...containers].sort() };
}

/**
 * A run's plan entries, in page order, into a collector that keeps a bounded number of names (plan-report.ts).
 * With several containers a blob's name is qualified by its container (`<container>/<name>`, as the run's report
 * names it; the page id starts with it); a copy to delete is named by its key already.
 */
export async function planNames(ledger: RunLedger, runId: string, options: { byContainer?: boolean } = {}): Promise<PlanNames> {
  const collector = planNamesCollector();
  await eachItem(ledger.table, runId, 'plan.', (item) => {
    const page = (item.entries as PlanEntry[]) ?? [];
    // plan.<container>.<invocation>.<page>.<n>: container names hold no dot.
    const container = String(item.sk).split('.')[1];
    for (const e of page) collector.add(!options.byContainer || e.k === 'd' ? e : { ...e, n: `${container}/${e.n}` });
  });
  return collector.names;
}

async function eachItem(table: StateTable, runId: string, prefix: string, fn: (item: Record<string, unknown>) => void) {
  let after: string | undefined;
  do {
    const page = await table.query(runPk(runId), prefix, { after, limit: 1000 });
    for (const item of page.items) fn(item);
    after = page.next;
  } while (after);
}
