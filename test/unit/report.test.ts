/**
 * A run's report names every failed, skipped and outstanding blob, and the copied
 * ones up to a bound: a run of millions of blobs does not hold every name in the
 * memory of the invocation that ends it (nor write them as one JSON string past
 * V8's largest), while its counts stay exact.
 */
import { describe, expect, it } from 'vitest';
import { REPORT_COPIED_NAMES, buildReport, reportHtml } from '../../lambdas/core/report';
import { runLedger } from '../../lambdas/core/run-ledger';
import { memoryTable } from '../../lambdas/core/state/memory-table';
import { runSettings } from '../helpers/context';

describe('the run report', () => {
  it('names the copied blobs up to its bound, counts them all, and names every failed one', async () => {
    const ledger = runLedger(memoryTable());
    await ledger.begin({ runId: 'r', pipeline: 'p', settings: runSettings(), stallAfterSeconds: 1800, owner: { kind: 'pipeline' } });
    const total = REPORT_COPIED_NAMES + 250;
    const units = Array.from({ length: Math.ceil(total / 100) }, (_, u) => ({
      unit: `c.0.${String(u).padStart(4, '0')}`,
      blobs: Array.from({ length: Math.min(100, total - u * 100) }, (_, i) => ({ name: `b/${String(u * 100 + i).padStart(6, '0')}`, size: 1 })),
    }));
    await ledger.addUnits('r', units);
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
});
