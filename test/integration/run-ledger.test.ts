/**
 * The run state's logic, as the deployed functions run it (DynamoDB on moto) and as
 * a local run does (the bucket on moto), and in memory: counts stay exact under
 * duplicate and concurrent deliveries, each blob counts once with its last true
 * outcome, a run ends exactly once, a stall is noticed once, and a second start
 * while a run is alive starts nothing.
 */
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { buildReport } from '../../lambdas/core/report';
import { runLedger, type RunRecord } from '../../lambdas/core/run-ledger';
import { bucketTable } from '../../lambdas/core/state/bucket-table';
import { memoryTable } from '../../lambdas/core/state/memory-table';
import type { StateTable } from '../../lambdas/core/state/table';
import { runSettings } from '../helpers/context';
import { newBucket, s3 } from '../helpers/stores';
import { newDynamoTable } from '../helpers/state';

const STORES: [string, () => Promise<StateTable>][] = [
  ['memory', async () => memoryTable()],
  ['bucket (moto S3)', async () => bucketTable(s3(), await newBucket())],
  ['DynamoDB (moto)', newDynamoTable],
];

function ledgerOn(table: StateTable, clock = { now: Date.parse('2026-01-01T00:00:00Z') }) {
  const ended: RunRecord[] = [];
  const deltas: Record<string, number>[] = [];
  const ledger = runLedger(
    table,
    { onEnd: async (run) => void ended.push(run), onDelta: (_r, d) => void deltas.push(d as Record<string, number>) },
    () => clock.now,
  );
  return { ledger, ended, deltas, clock };
}

const begin = (ledger: ReturnType<typeof runLedger>, runId: string, owner: RunRecord['owner'] = { kind: 'pipeline' }, pipeline = 'p1') =>
  ledger.begin({ runId, pipeline, settings: runSettings(), stallAfterSeconds: 60, owner });

describe.each(STORES)('run state on %s', (_name, open) => {
  it('settles a blob bound for several destinations once each has an outcome: the worst of theirs, counted once', async () => {
    const { ledger, ended, deltas } = ledgerOn(await open());
    await begin(ledger, 'd1');
    await ledger.addUnits('d1', [{ unit: '0.0.0', blobs: [{ name: 'a', size: 10 }, { name: 'b', size: 20 }, { name: 'c', size: 30 }] }]);
    const claim = await ledger.claimListing('d1', 'c', 0, 60_000);
    await ledger.listed('d1', 'c', 0, claim!, { listed: 3, beforeBeginDate: 0, filtered: 0, unchanged: 0, routed: 3, routedBytes: 60, done: true });
    const all = [0, 1];
    // a: copied to the first, then (twice) to the second; b: copied to one, failed in the other; c: only the second needed it.
    await ledger.settle('d1', '0.0.0', [{ name: 'a', index: 0, status: 'copied', destination: 0, targets: all }]);
    expect((await ledger.getRun('d1'))!.settled).toBe(0);
    await Promise.all([1, 2].map(() => ledger.settle('d1', '0.0.0', [{ name: 'a', index: 0, status: 'copied', destination: 1, targets: all }])));
    await ledger.settle('d1', '0.0.0', [
      { name: 'b', index: 1, status: 'failed', reason: 's3://two/: AccessDenied', destination: 1, targets: all },
      { name: 'b', index: 1, status: 'copied', destination: 0, targets: all },
      { name: 'c', index: 2, status: 'copied', destination: 1, targets: [1] },
    ]);
    // A late duplicate's failure in a destination that has its copy changes nothing.
    expect(await ledger.settle('d1', '0.0.0', [{ name: 'a', index: 0, status: 'failed', reason: 'late', destination: 0, targets: all }])).toEqual({});
    expect(ended).toHaveLength(1);
    expect(await ledger.getRun('d1')).toMatchObject({ state: 'complete', settled: 3, copied: 2, failed: 1, bytesCopied: 40 });
    const { units } = await ledger.unitsPage('d1');
    expect(units[0]).toMatchObject({ status: 'cfc', reasons: { 1: 's3://two/: AccessDenied' }, dests: { 0: 'cc', 1: 'cf', 2: '-c' } });
    const sum = (key: string) => deltas.reduce((n, d) => n + (d[key] ?? 0), 0);
    expect([sum('copied'), sum('failed'), sum('settled')]).toEqual([2, 1, 3]);
  });

  it('claims a listing step once: refused while its lease holds and once it is done, taken over when given back or expired', async () => {
    const { ledger, clock } = ledgerOn(await open());
    await begin(ledger, 'k1');
    const totals = { listed: 1, beforeBeginDate: 0, filtered: 0, unchanged: 0, routed: 1, routedBytes: 5, done: false };
    // Three deliveries of one step at once: one claim.
    const first = (await Promise.all([1, 2, 3].map(() => ledger.claimListing('k1', 'c', 0, 10_000)))).filter((c) => c !== undefined);
    expect(first).toHaveLength(1);
    expect(await ledger.claimListing('k1', 'c', 0, 10_000)).toBeUndefined();
    // Refused, and why: held by another, until its lease runs out.
    expect(await ledger.claimStep('k1', 'c', 0, 10_000)).toEqual({ refused: 'held', until: clock.now + 10_000 });
    // Given back (its invocation failed): the retry takes it at once.
    await ledger.releaseListing('k1', 'c', 0, first[0]!);
    const retried = await ledger.claimListing('k1', 'c', 0, 10_000);
    expect(retried).toBeGreaterThan(first[0]!);
    // Held past its lease (its invocation was stopped): taken over.
    clock.now += 10_001;
    const taken = await ledger.claimListing('k1', 'c', 0, 10_000);
    expect(taken).toBeGreaterThan(retried!);
    // The holder it was taken from counts nothing; the one holding it counts once, and the step is done for good.
    await ledger.listed('k1', 'c', 0, retried!, totals);
    expect(await ledger.getRun('k1')).toMatchObject({ listed: 0, routed: 0 });
    await ledger.listed('k1', 'c', 0, taken!, totals);
    await ledger.listed('k1', 'c', 0, taken!, totals);
    expect(await ledger.getRun('k1')).toMatchObject({ listed: 1, routed: 1 });
    clock.now += 60_000;
    expect(await ledger.claimListing('k1', 'c', 0, 10_000)).toBeUndefined();
    expect(await ledger.claimStep('k1', 'c', 0, 10_000)).toEqual({ refused: 'done' });
  });

  it('counts each blob once, with its last true outcome, under duplicate and concurrent deliveries, and ends once', async () => {
    const { ledger, ended, deltas } = ledgerOn(await open());
    expect(await begin(ledger, 'r1')).toEqual({ started: true });
    await ledger.addUnits('r1', [
      { unit: '0.0.0', blobs: [{ name: 'a', size: 10 }, { name: 'b', size: 20 }, { name: 'c', size: 30 }] },
      { unit: '0.0.L0', blobs: [{ name: 'big', size: 1000 }], large: true },
    ]);
    await ledger.addUnits('r1', [{ unit: '0.0.0', blobs: [{ name: 'other', size: 1 }] }]); // a retried listing keeps the first
    const claim = await ledger.claimListing('r1', 'c', 0, 60_000);
    expect(claim).toBeDefined();
    expect(await ledger.claimListing('r1', 'c', 0, 60_000)).toBeUndefined(); // a duplicate of the listing step does nothing

    // Ten concurrent deliveries of one message, then a retry that copies b, then a late duplicate failing a.
    const first = [{ name: 'a', index: 0, status: 'copied' as const }, { name: 'b', index: 1, status: 'failed' as const, reason: 'boom' }];
    await Promise.all(Array.from({ length: 10 }, () => ledger.settle('r1', '0.0.0', first)));
    await ledger.settle('r1', '0.0.0', [{ name: 'b', index: 1, status: 'copied' }]);
    expect(await ledger.settle('r1', '0.0.0', [{ name: 'a', index: 0, status: 'failed', reason: 'late duplicate' }])).toEqual({});
    await ledger.settle('r1', '0.0.0', [{ name: 'c', status: 'skipped', reason: 'archived' }]);
    await ledger.listed('r1', 'c', 0, claim!, { listed: 6, beforeBeginDate: 1, filtered: 0, unchanged: 1, routed: 4, routedBytes: 1060, done: true });
    await ledger.listed('r1', 'c', 0, claim!, { listed: 6, beforeBeginDate: 1, filtered: 0, unchanged: 1, routed: 4, routedBytes: 1060, done: true });
    expect(ended).toEqual([]);

    // The large blob's two parts, each delivered twice: the count reaches 2 once.
    const parts = await Promise.all([1, 1, 2, 2].map((n) => ledger.partDone('r1', 'upload-1', n, 2, 500)));
    expect(parts.filter(Boolean).length).toBeGreaterThanOrEqual(1);
    expect(await ledger.partDone('r1', 'upload-1', 2, 2, 500)).toBe(true); // a late duplicate still sees it complete
    await Promise.all(Array.from({ length: 5 }, () => ledger.settle('r1', '0.0.L0', [{ name: 'big', status: 'copied', path: 'multipart' }])));

    expect(ended).toHaveLength(1);
    const run = (await ledger.getRun('r1'))!;
    expect(run).toMatchObject({
      state: 'complete', listed: 6, beforeBeginDate: 1, unchanged: 1, routed: 4, settled: 4, copied: 3, skipped: 1, failed: 0,
      bytesCopied: 1030, bytesMoved: 1030, listInvocations: 1, listingDone: true,
    });
    // The metrics the changes stand for add up to the same, though many deliveries were duplicates.
    const sum = (key: string) => deltas.reduce((n, d) => n + (d[key] ?? 0), 0);
    expect([sum('copied'), sum('failed'), sum('skipped'), sum('listed')]).toEqual([3, 0, 1, 6]);
    const { units } = await ledger.unitsPage('r1');
    expect(units.map((u) => [u.unit, u.status, u.reasons])).toEqual([
      ['0.0.0', 'ccs', { 2: 'archived' }],
      ['0.0.L0', 'c', {}],
    ]);
  });

  it('notes the copies checked from the source, once, and the report counts them', async () => {
    const { ledger, deltas } = ledgerOn(await open());
    await begin(ledger, 'r4');
    await ledger.addUnits('r4', [
      { unit: '0.0.L0', blobs: [{ name: 'deep', size: 100 }], large: true },
      { unit: '0.0.L1', blobs: [{ name: 'instant', size: 200 }], large: true },
    ]);
    const checked = { name: 'deep', index: 0, status: 'copied' as const, path: 'multipart' as const, fromSource: true };
    await Promise.all(Array.from({ length: 3 }, () => ledger.settle('r4', '0.0.L0', [checked])));
    await ledger.settle('r4', '0.0.L1', [{ name: 'instant', index: 0, status: 'copied', path: 'multipart' }]);
    // A late duplicate of the first changes nothing.
    expect(await ledger.settle('r4', '0.0.L0', [checked])).toEqual({});

    const { units } = await ledger.unitsPage('r4');
    expect(units.map((u) => [u.unit, u.status, u.fromSource])).toEqual([['0.0.L0', 'c', [0]], ['0.0.L1', 'c', undefined]]);
    expect(deltas.reduce((n, d) => n + (d.copied ?? 0), 0)).toBe(2);
    const report = await buildReport(ledger, (await ledger.getRun('r4'))!);
    expect(report).toMatchObject({ copied: ['deep', 'instant'], verifiedFromSource: 1 });
  });

  it('reads a run bigger than a page of units whole: its report names the blobs of every page', async () => {
    const { ledger } = ledgerOn(await open());
    await begin(ledger, 'r5');
    // Units sort by name: zero-padded, so that the last one added is the last one read.
    const units = Array.from({ length: 130 }, (_, i) => ({ unit: `0.${String(i).padStart(4, '0')}`, blobs: [{ name: `b${String(i).padStart(4, '0')}`, size: 1 }] }));
    await ledger.addUnits('r5', units);
    await ledger.settle('r5', units[0].unit, [{ name: 'b0000', index: 0, status: 'copied' }]);
    await ledger.settle('r5', units[129].unit, [{ name: 'b0129', index: 0, status: 'failed', reason: 'last page' }]);
    const first = await ledger.unitsPage('r5');
    expect(first.next).toBeDefined();
    expect(first.units.length).toBeLessThan(130);
    const report = await buildReport(ledger, (await ledger.getRun('r5'))!);
    expect(report).toMatchObject({ copied: ['b0000'], copiedCount: 1, failed: [{ name: 'b0129', reason: 'last page' }] });
    expect(report.outstanding.map((o) => o.name)).toEqual(units.slice(1, 129).map((u) => u.blobs[0].name));
  });

  it('starts no second run while one is in progress, and starts once it has ended', async () => {
    const { ledger } = ledgerOn(await open());
    expect(await begin(ledger, 'r1')).toEqual({ started: true });
    const refused = await begin(ledger, 'r2');
    expect(refused).toMatchObject({ started: false, reason: expect.stringMatching(/^run r1 of this pipeline is still in progress/) });
    expect(await begin(ledger, 'r3', { kind: 'pipeline' }, 'another-pipeline')).toEqual({ started: true });
    await ledger.listed('r1', 'c', 0, (await ledger.claimListing('r1', 'c', 0, 1000))!, {
      listed: 0, beforeBeginDate: 0, filtered: 0, unchanged: 0, routed: 0, routedBytes: 0, done: true,
    });
    expect((await ledger.getRun('r1'))?.state).toBe('complete');
    expect(await begin(ledger, 'r2')).toEqual({ started: true });
    expect((await ledger.currentRun('p1'))?.runId).toBe('r2');
  });

  it('takes over from a local run whose process is gone, marking it stalled with its report', async () => {
    const { ledger, ended } = ledgerOn(await open());
    const gone = spawnSync(process.execPath, ['-e', 'process.exit(0)']).pid!;
    await begin(ledger, 'r1', { kind: 'local', host: hostname(), pid: gone, heartbeatAt: new Date().toISOString() });
    await ledger.addUnits('r1', [{ unit: 'u', blobs: [{ name: 'x', size: 1 }] }]);
    expect(await begin(ledger, 'r2', { kind: 'local', host: hostname(), pid: process.pid, heartbeatAt: new Date().toISOString() })).toEqual({ started: true });
    expect(ended.map((r) => [r.runId, r.state, r.stalledReason])).toEqual([['r1', 'stalled', expect.stringMatching(/process that ran it \(pid \d+\) ended/)]]);
    // This process is alive: a third start is refused.
    expect((await begin(ledger, 'r3')).started).toBe(false);
  });

  it('marks a run with no progress for its stall time stalled, once; a late outcome still completes it', async () => {
    const { ledger, ended, clock } = ledgerOn(await open());
    await begin(ledger, 'r1');
    await ledger.addUnits('r1', [{ unit: 'u', blobs: [{ name: 'x', size: 1 }, { name: 'y', size: 2 }] }]);
    await ledger.listed('r1', 'c', 0, (await ledger.claimListing('r1', 'c', 0, 1000))!, {
      listed: 2, beforeBeginDate: 0, filtered: 0, unchanged: 0, routed: 2, routedBytes: 3, done: true,
    });
    await ledger.settle('r1', 'u', [{ name: 'x', status: 'copied' }]);
    clock.now += 30_000;
    expect(await ledger.checkStalled('r1')).toBeUndefined(); // within its stall time (60 s)
    clock.now += 60_000;
    const checks = await Promise.all([ledger.checkStalled('r1'), ledger.checkStalled('r1'), ledger.checkStalled('r1')]);
    expect(checks.filter(Boolean)).toHaveLength(1);
    expect(ended.map((r) => r.state)).toEqual(['stalled']);
    expect((await ledger.getRun('r1'))?.stalledReason).toMatch(/^no progress for 1m 30s \(stall time 1m 00s\) with blobs outstanding$/);
    // The redriven message arrives: the run completes after all.
    await ledger.settle('r1', 'u', [{ name: 'y', status: 'copied' }]);
    expect(ended.map((r) => r.state)).toEqual(['stalled', 'complete']);
  });
});

describe('run state in a bucket written by two processes', () => {
  // Each process remembers the run as it last wrote it, and looks for the run's end from that memory after
  // settling a unit; these check that memory's "not yet" and its stale state never leave a run unended.
  async function twoProcesses() {
    const bucket = await newBucket();
    const clock = { now: Date.parse('2026-01-01T00:00:00Z') };
    const afterTransact: { hook?: () => Promise<void> } = {};
    const tableA = bucketTable(s3(), bucket);
    // Process A, with a moment between a settle's write and its look for the end, for the other to write in.
    const a = ledgerOn({ ...tableA, transact: async (put, updates) => {
      const written = await tableA.transact(put, updates);
      const hook = afterTransact.hook;
      afterTransact.hook = undefined;
      await hook?.();
      return written;
    } }, clock);
    const b = ledgerOn(bucketTable(s3(), bucket), clock);
    await begin(a.ledger, 'r1');
    await a.ledger.addUnits('r1', [{ unit: 'u1', blobs: [{ name: 'x', size: 1 }] }, { unit: 'u2', blobs: [{ name: 'y', size: 2 }] }]);
    await a.ledger.listed('r1', 'c', 0, (await a.ledger.claimListing('r1', 'c', 0, 1000))!, {
      listed: 2, beforeBeginDate: 0, filtered: 0, unchanged: 0, routed: 2, routedBytes: 3, done: true,
    });
    return { a, b, afterTransact };
  }

  it('ends the run when its last unit settles just as the other process marks it stalled', async () => {
    const { a, b, afterTransact } = await twoProcesses();
    await a.ledger.settle('r1', 'u1', [{ name: 'x', status: 'copied' }]);
    afterTransact.hook = async () => {
      const run = (await b.ledger.getRun('r1'))!;
      expect(await b.ledger.markStalled('r1', 'quiet for too long', run.lastProgressAt)).toBeDefined();
    };
    await a.ledger.settle('r1', 'u2', [{ name: 'y', status: 'copied' }]);
    expect(afterTransact.hook).toBeUndefined();
    expect(b.ended.map((r) => r.state)).toEqual(['stalled']);
    expect(a.ended.map((r) => r.state)).toEqual(['complete']);
    expect(await a.ledger.getRun('r1')).toMatchObject({ state: 'complete', settled: 2, copied: 2 });
  });

  it('ends the run once when the two processes settle its last units at the same time', async () => {
    const { a, b } = await twoProcesses();
    await Promise.all([a.ledger.settle('r1', 'u1', [{ name: 'x', status: 'copied' }]), b.ledger.settle('r1', 'u2', [{ name: 'y', status: 'copied' }])]);
    expect([...a.ended, ...b.ended].map((r) => r.state)).toEqual(['complete']);
    expect(await b.ledger.getRun('r1')).toMatchObject({ state: 'complete', settled: 2, copied: 2 });
  });
});
