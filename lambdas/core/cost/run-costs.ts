/**
 * A run's costs at its end: for a dry run, its plan (built from the plan it kept
 * in the run state); for a copy, what it actually did (the requests it counted,
 * priced as a plan is) beside the plan that preceded it, when there was one.
 */
import type { RunSettings } from '../messages';
import { reportKeys } from '../report';
import type { RunLedger, RunRecord } from '../run-ledger';
import type { StateObjects } from '../stores/types';
import { costOf, type CostEstimate } from './cost';
import { planReport, type PlanReport } from './plan-report';
import { planNames, planTally } from './plan-state';
import type { PriceList } from './prices';
import { tidyCounts, type RequestCounts } from './requests';

export interface RunCosts {
  /** What the run did, as it counted it, and its cost. */
  actual: { requests: RequestCounts; cost: CostEstimate };
  /** The plan that preceded it (a dry run's id, or the plan file given), its prediction for this mode, and its time. */
  predicted?: { from: string; requests: RequestCounts; cost: CostEstimate; seconds: number };
}

export interface CostOptions {
  mode: 'local' | 'deployed';
  prices(): { prices: PriceList; note?: string };
  /** The requests the run made (deployed: summed on the run's item; local: the process's meter). */
  actual(run: RunRecord): Promise<RequestCounts>;
  /** The plan that preceded the run, if any. */
  plan?(run: RunRecord): Promise<{ from: string; plan: PlanReport } | undefined>;
  blobsPerMessage: number;
}

/** A dry run's plan, from what its listing kept. */
export async function buildPlanReport(ledger: RunLedger, run: RunRecord, options: Pick<CostOptions, 'prices' | 'blobsPerMessage'>): Promise<PlanReport> {
  const [{ tally, containers }, names] = await Promise.all([planTally(ledger, run.runId), planNames(ledger, run.runId, { byContainer: run.byContainer })]);
  const { prices, note } = options.prices();
  return planReport({
    runId: run.runId, settings: run.settings, containers: containers.length ? containers : [run.settings.container], tally, names, prices,
    pricesNote: note, blobsPerMessage: options.blobsPerMessage, location: true,
  });
}

export async function runCosts(run: RunRecord, options: CostOptions): Promise<RunCosts> {
  const { prices } = options.prices();
  const requests = tidyCounts(await options.actual(run));
  const single = run.settings.writing?.storageClass && !run.settings.writing.tierMap ? run.settings.writing.storageClass : undefined;
  const dataWrites = ['PutObject', 'CreateMultipartUpload', 'UploadPart', 'CompleteMultipartUpload'].reduce((n, op) => n + (requests.s3?.[op] ?? 0), 0);
  const cost = costOf(requests, prices, {
    mode: options.mode,
    kms: options.mode === 'deployed',
    writesByClass: single ? { [single]: dataWrites } : undefined,
  });
  const costs: RunCosts = { actual: { requests, cost } };
  const preceding = await options.plan?.(run).catch(() => undefined);
  if (preceding) {
    const estimate = options.mode === 'local' ? preceding.plan.local : preceding.plan;
    costs.predicted = { from: preceding.from, requests: estimate.requests, cost: estimate.cost, seconds: estimate.seconds };
  }
  return costs;
}

/** The latest dry run of the pipeline that ended before this run began, with its plan from the bucket. */
export async function latestDryRun(
  ledger: RunLedger, state: (settings: RunSettings) => Pick<StateObjects, 'getJson'>, run: RunRecord,
): Promise<{ from: string; plan: PlanReport } | undefined> {
  const earlier = (await ledger.recentRuns(50)).find((r) =>
    // By when it ended, not by id: two runs started within one second have ids that differ only in a random tail.
    r.pipeline === run.pipeline && r.settings.dryRun && r.state === 'complete' && r.runId !== run.runId && (r.finishedAt ?? '') <= run.startedAt);
  if (!earlier) return undefined;
  const plan = await state(run.settings).getJson<PlanReport>(reportKeys(earlier.runId).json);
  return plan?.kind === 'plan' ? { from: `dry run ${earlier.runId}`, plan } : undefined;
}
