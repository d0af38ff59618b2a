/**
 * A run's report names the copied blobs up to a bound, and the failed, skipped and
 * outstanding ones up to another: a run of millions of blobs does not hold every
 * name in the memory of the invocation that ends it (nor write them as one JSON
 * string past V8's largest), while its counts stay exact.
 */
import { describe, expect, it } from 'vitest';
import { REPORT_COPIED_NAMES, REPORT_OUTCOME_NAMES, buildReport, countOf, endedBadly, reportHtml, summaryLine } from '../../lambdas/core/report';
import { summary } from '../../lambdas/local/progress';
import { runLedger } from '../../lambdas/core/run-ledger';
import { memoryTable } from '../../lambdas/core/state/memory-table';
import { runSettings } from '../helpers/context';

/** A run of `total` blobs named `<prefix>000000`..., in units of 100, none settled yet. */
async function runOf(total: number, prefix: string) {
  const ledger = runLedger(memoryTable());
  await ledger.begin({ runId: 'r', pipeline: 'p', settings: runSettings(), stallAfterSeconds: 1800, owner: { kind: 'pipeline' } });
  const units = Array.from({ length: Math.ceil(total / 100) }, (_, u) => ({
    unit: `c.0.${String(u).padStart(4, '0')}`,
    blobs: Array.from({ length: Math.min(100, total - u * 100) }, (_, i) => ({ name: `${prefix}${String(u * 100 + i).padStart(6, '0')}`, size: 1 })),
  }));
  await ledger.addUnits('r', units);
  return { ledger, units };
}

describe('the run report', () => {
  it('names the copied blobs up to its bound, counts them all, and names every failed one', async () => {
    const total = REPORT_COPIED_NAMES + 250;
    const { ledger, units } = await runOf(total, 'b/');
    for (const unit of units) {
      // The last blob of every tenth unit fails; the rest are copied.
      await ledger.settle('r', unit.unit, unit.blobs.map((b, i) => (i === unit.blobs.length - 1 && Number(unit.unit.slice(-4)) % 10 === 0
        ? { name: b.name, index: i, status: 'failed' as const, reason: 'S3 refused it' }
        : { name: b.name, index: i, status: 'copied' as const })));
    }
    const failures = units.filter((u) => Number(u.unit.slice(-4)) % 10 === 0).length;
    const report = await buildReport(ledger, (await ledger.getRun('r'))!);
    expect(report.copiedCount).toBe(total - failures);
    expect(report.copied).toHaveLength(REPORT_COPIED_NAMES);
    expect(report.copied).toEqual([...report.copied].sort());
    expect(report.failed).toHaveLength(failures);
    expect(reportHtml(report)).toContain(`${total - failures} objects`);
  });

  it('names the skipped, failed and outstanding blobs up to its bound each, and counts them all', async () => {
    // A container of archived blobs: every one skipped (a third of them rehydrating), a few failed, one unit left outstanding.
    const total = REPORT_OUTCOME_NAMES + 1_150;
    const { ledger, units } = await runOf(total, 'a/');
    const outstandingUnit = units[units.length - 1];
    for (const unit of units.slice(0, -1)) {
      await ledger.settle('r', unit.unit, unit.blobs.map((b, i) => (i === 0
        ? { name: b.name, index: i, status: 'failed' as const, reason: 'S3 refused it' }
        : { name: b.name, index: i, status: 'skipped' as const, reason: i % 3 === 0 ? 'rehydrating: started' : 'the blob is in the Archive tier' })));
    }
    const report = await buildReport(ledger, (await ledger.getRun('r'))!);
    const failures = units.length - 1;
    const skips = total - outstandingUnit.blobs.length - failures;
    expect(report.skipped).toHaveLength(REPORT_OUTCOME_NAMES);
    expect(report.skipped).toEqual([...report.skipped].sort((a, b) => (a.name < b.name ? -1 : 1)));
    expect([countOf(report, 'skipped'), countOf(report, 'failed'), countOf(report, 'outstanding')]).toEqual([skips, failures, outstandingUnit.blobs.length]);
    expect(report.failed).toHaveLength(failures);
    expect(report.outstanding).toHaveLength(outstandingUnit.blobs.length);
    // Counted over every skipped blob, not the ones named.
    expect(report.rehydrating).toBe(units.slice(0, -1).reduce((n, u) => n + u.blobs.filter((_, i) => i > 0 && i % 3 === 0).length, 0));
    expect(endedBadly(report)).toBe(true);
    expect(summaryLine(report)).toContain(`skipped ${skips}, failed ${failures}, outstanding ${outstandingUnit.blobs.length}`);
    expect(summary(report)).toContain(`${skips} skipped, ${failures} failed, ${outstandingUnit.blobs.length} outstanding`);
    expect(summary(report)).toContain(`  ... and ${skips - 20} more (see the report)`);
    expect(reportHtml(report)).toContain(`<td>${skips}</td>`);
    // A report of an older release has no counts: its lists' lengths stand for them.
    const older = { ...report, skippedCount: undefined, failedCount: undefined, outstandingCount: undefined };
    expect(countOf(older, 'skipped')).toBe(REPORT_OUTCOME_NAMES);
  });
});
