/**
 * A dry run's plan names up to PLAN_NAMES blobs in each of its lists and counts
 * every one, by reason too: a plan of ten million blobs does not hold every name
 * in the memory of the invocation that writes it.
 */
import { describe, expect, it } from 'vitest';
import { PLAN_NAMES, PLAN_REASONS, planHtml, planText } from '../../lambdas/core/cost/plan-report';
import { recordPlanPage } from '../../lambdas/core/cost/plan-state';
import { pricesFor } from '../../lambdas/core/cost/prices';
import { buildPlanReport } from '../../lambdas/core/cost/run-costs';
import type { PlanEntry } from '../../lambdas/core/cost/tally';
import { runLedger } from '../../lambdas/core/run-ledger';
import { memoryTable } from '../../lambdas/core/state/memory-table';
import { runSettings } from '../helpers/context';

describe('a plan', () => {
  it('names up to its bound in each list, counts every blob, and every reason up to its bound', async () => {
    const ledger = runLedger(memoryTable());
    const settings = runSettings();
    await ledger.begin({ runId: 'p', pipeline: 'x', settings, stallAfterSeconds: 1800, owner: { kind: 'pipeline' } });
    const copies = PLAN_NAMES + 500;
    const skips = PLAN_NAMES + 300;
    const fails = 150;
    const entries: PlanEntry[] = [
      ...Array.from({ length: copies }, (_, i): PlanEntry => ({ n: `c/${String(i).padStart(6, '0')}`, s: 1, k: 'c' })),
      ...Array.from({ length: skips }, (_, i): PlanEntry => ({ n: `s/${String(i).padStart(6, '0')}`, s: 1, k: 's', r: i % 2 ? 'archived' : 'a name S3 cannot hold' })),
      // A reason of each blob its own: more reasons than a plan counts one by one.
      ...Array.from({ length: fails }, (_, i): PlanEntry => ({ n: `f/${String(i).padStart(6, '0')}`, s: 1, k: 'f', r: `Content-MD5 ${i} is not an MD5` })),
    ];
    for (let at = 0; at < entries.length; at += 1000) await recordPlanPage(ledger.table, 'p', `c.0.${at / 1000}`, entries.slice(at, at + 1000));

    const plan = await buildPlanReport(ledger, (await ledger.getRun('p'))!, { prices: () => ({ prices: pricesFor() }), blobsPerMessage: 100 });
    expect([plan.copy.length, plan.skip.length, plan.fail.length]).toEqual([PLAN_NAMES, PLAN_NAMES, fails]);
    expect(plan.copy).toEqual([...plan.copy].sort());
    expect(plan.counts).toEqual({ copy: copies, skip: skips, fail: fails, delete: 0 });
    expect(plan.skipReasons).toEqual({ archived: skips / 2, 'a name S3 cannot hold': skips / 2 });
    expect(Object.keys(plan.failReasons!)).toHaveLength(PLAN_REASONS + 1);
    expect(plan.failReasons!['(other reasons)']).toBe(fails - PLAN_REASONS);
    const text = planText(plan);
    expect(text).toContain(`  skipped       ${skips.toLocaleString('en-US')}\n`);
    expect(text).toContain(`    ${String(skips / 2).padStart(8)}  archived\n`);
    expect(text).toContain(`  will fail     ${fails}\n`);
    expect(planHtml(plan)).toContain(`<h2>Skipped (${skips}, the first ${PLAN_NAMES.toLocaleString('en-US')} named)</h2>`);
  });
});
