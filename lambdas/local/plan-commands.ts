/**
 * `azs3copy plan`: list and compare exactly as a copy with the same options would
 * (the same qualify and find-blobs stages, as a dry run whose state is kept in
 * memory), write nothing to the bucket, and print what the copy would do, cost
 * and take. Also what `copy --plan FILE` and `copy --dry-run` need: reading a
 * plan file, and the lines that put a run's costs beside its plan's.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { usd } from '../core/cost/cost';
import { planText, type PlanReport } from '../core/cost/plan-report';
import { DEFAULT_PRICE_REGION, pricesFor } from '../core/cost/prices';
import type { RunCosts } from '../core/cost/run-costs';
import { ConfigError, errorMessage } from '../core/errors';
import { copyOptionsFromFlags, str, type CliValues } from './commands';

/** --region, checked against the price list before anything else runs. */
export function priceRegionFromFlags(values: CliValues): string {
  const region = str(values, 'region') ?? DEFAULT_PRICE_REGION;
  pricesFor(region, '--region');
  return region;
}

export async function planCommand(values: CliValues, env: NodeJS.ProcessEnv): Promise<number> {
  const priceRegion = priceRegionFromFlags(values);
  const options = copyOptionsFromFlags(values, env);
  const { runLocalCopy } = await import('./runner');
  // A plan is made whether or not the secret's switch is on: it only reads.
  const result = await runLocalCopy({ ...options, isActive: true, dryRun: true, planOnly: true, priceRegion });
  if (!result.started || !result.plan) {
    process.stdout.write(`no plan: ${result.reason ?? 'the listing did not finish'}\n`);
    return 2;
  }
  const plan = { ...result.plan, location: undefined };
  process.stdout.write(planText(plan));
  const reportFile = str(values, 'report');
  if (reportFile) {
    writeFileSync(reportFile, JSON.stringify(plan, null, 2) + '\n');
    process.stdout.write(`plan written to ${reportFile}\n`);
  }
  return 0;
}

/** A plan written by `azs3copy plan --report` (or a dry run's report.json), for `copy --plan`. */
export function readPlanFile(path: string): { from: string; plan: PlanReport } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read the plan file ${path} (${(error as NodeJS.ErrnoException).code ?? errorMessage(error)}): check the path`);
  }
  let plan: PlanReport;
  try {
    plan = JSON.parse(text) as PlanReport;
  } catch {
    throw new ConfigError(`${path} is not JSON: give the file "azs3copy plan --report" wrote`);
  }
  if (plan?.kind !== 'plan' || !plan.local?.requests) throw new ConfigError(`${path} is not a plan of azs3copy: give the file "azs3copy plan --report" wrote`);
  return { from: path, plan };
}

/** Two lines for the copy's summary: what the run's requests cost, beside the plan's. */
export function costSummary(costs: RunCosts | undefined): string {
  if (!costs) return '';
  const made = Object.entries(costs.actual.requests)
    .map(([service, ops]) => `${service} ${Object.entries(ops).filter(([op]) => !op.startsWith('Bytes')).reduce((n, [, v]) => n + v, 0)}`)
    .join(', ');
  const lines = [`requests made: ${made}; cost ${usd(costs.actual.cost.totalUsd)} (AWS ${usd(costs.actual.cost.awsUsd)}, Azure ${usd(costs.actual.cost.azureUsd)}, ${costs.actual.cost.region} prices)`];
  if (costs.predicted) lines.push(`planned (${costs.predicted.from}): cost ${usd(costs.predicted.cost.totalUsd)}`);
  return lines.join('\n') + '\n';
}

export { planText };
