/**
 * One suite for every state store: DynamoDB and the bucket (both on moto, as the
 * deployed pipeline and a local run use them) and the in-memory double. What the
 * run's exact counting stands on: a create happens once, a stale version never
 * overwrites, counters add up under concurrency, and a refused transaction
 * writes nothing.
 */
import { describe, expect, it } from 'vitest';
import { bucketTable } from '../../lambdas/core/state/bucket-table';
import { memoryTable } from '../../lambdas/core/state/memory-table';
import type { StateTable } from '../../lambdas/core/state/table';
import { newDynamoTable } from '../helpers/state';
import { newBucket, s3, uniqueName } from '../helpers/stores';

const STORES: [string, () => Promise<StateTable>][] = [
  ['memory', async () => memoryTable()],
  ['bucket (S3 conditional writes on moto)', async () => bucketTable(s3(), await newBucket())],
  ['DynamoDB (moto)', newDynamoTable],
];

describe.each(STORES)('state table: %s', (_name, open) => {
  it('creates an item once, and replaces it only at the version read', async () => {
    const table = await open();
    expect(await table.put({ pk: 'p', sk: 'a', n: 1 }, { ifAbsent: true })).toBe(true);
    expect(await table.put({ pk: 'p', sk: 'a', n: 2 }, { ifAbsent: true })).toBe(false);
    const first = await table.get('p', 'a');
    expect(first).toMatchObject({ n: 1, v: 1 });
    expect(await table.put({ pk: 'p', sk: 'a', n: 3 }, { ifVersion: 1 })).toBe(true);
    expect(await table.put({ pk: 'p', sk: 'a', n: 4 }, { ifVersion: 1 })).toBe(false);
    expect(await table.get('p', 'a')).toMatchObject({ n: 3, v: 2 });
    expect(await table.get('p', 'missing')).toBeUndefined();
  });

  it('keeps nested values, lists, booleans and nulls as written', async () => {
    const table = await open();
    const value = { names: ['a b', 'ü', ''], sizes: [0, 5, 2 ** 40], on: false, none: null, map: { 'x.y': { deep: 'z' } } };
    await table.put({ pk: 'p', sk: 'nested', ...value });
    expect(await table.get('p', 'nested')).toMatchObject(value);
  });

  it('adds to counters atomically under concurrent updates, and applies a condition', async () => {
    const table = await open();
    await Promise.all(Array.from({ length: 20 }, (_, i) => table.update({ pk: 'p', sk: 'c', add: { n: 1, bytes: i }, set: { last: 'x' } })));
    expect(await table.get('p', 'c')).toMatchObject({ n: 20, bytes: 190, last: 'x' });
    expect(await table.update({ pk: 'p', sk: 'c', set: { state: 'done' }, when: { attribute: 'state', absent: true } })).toMatchObject({ state: 'done' });
    expect(await table.update({ pk: 'p', sk: 'c', set: { state: 'again' }, when: { attribute: 'state', absent: true } })).toBeUndefined();
    expect(await table.update({ pk: 'p', sk: 'c', set: { state: 'next' }, when: { attribute: 'state', in: ['running', 'done'] } })).toMatchObject({ state: 'next' });
    expect(await table.update({ pk: 'p', sk: 'c', set: { state: 'x' }, when: { attribute: 'state', in: ['running'] } })).toBeUndefined();
    expect(await table.get('p', 'c')).toMatchObject({ n: 20, state: 'next' });
  });

  it('elects exactly one winner among concurrent conditional updates', async () => {
    const table = await open();
    await table.put({ pk: 'p', sk: 'run', state: 'running' });
    const results = await Promise.all(
      Array.from({ length: 8 }, () => table.update({ pk: 'p', sk: 'run', set: { state: 'complete' }, when: { attribute: 'state', in: ['running'] } })),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it('applies a transaction whole, or not at all when its put is refused', async () => {
    const table = await open();
    const unit = { pk: 'r', sk: 'unit.1', status: 'cc' };
    expect(await table.transact({ item: unit, precondition: { ifAbsent: true } }, [{ pk: 'r', sk: 'totals', add: { copied: 2 } }])).toBe(true);
    expect(await table.transact({ item: unit, precondition: { ifAbsent: true } }, [{ pk: 'r', sk: 'totals', add: { copied: 2 } }])).toBe(false);
    expect(await table.get('r', 'totals')).toMatchObject({ copied: 2 });
    expect(await table.transact({ item: { ...unit, status: 'cf' }, precondition: { ifVersion: 1 } }, [{ pk: 'r', sk: 'totals', add: { copied: -1, failed: 1 } }])).toBe(true);
    expect(await table.get('r', 'totals')).toMatchObject({ copied: 1, failed: 1 });
    expect(await table.get('r', 'unit.1')).toMatchObject({ status: 'cf', v: 2 });
    // A transaction whose update condition fails writes nothing either.
    expect(
      await table.transact({ item: { ...unit, status: 'ff' }, precondition: { ifVersion: 2 } }, [
        { pk: 'r', sk: 'totals', add: { failed: 1 }, when: { attribute: 'state', in: ['gone'] } },
      ]),
    ).toBe(false);
    expect(await table.get('r', 'unit.1')).toMatchObject({ status: 'cf', v: 2 });
  });

  it('marks up to 98 other items in one transaction, each only at the version it was claimed at, or none of them', async () => {
    const table = await open();
    const steps = Array.from({ length: 98 }, (_, i) => ({ pk: 'r', sk: `step.${String(i).padStart(2, '0')}`, state: 'running' }));
    await Promise.all(steps.map((step) => table.put(step, { ifAbsent: true })));
    // One step was taken over since (its version moved on): nothing is written, the count included.
    expect(await table.put({ ...steps[57], state: 'running' }, { ifVersion: 1 })).toBe(true);
    const markDone = (versions: number[]) => steps.map((step, i) => ({ pk: step.pk, sk: step.sk, set: { state: 'done' }, when: { attribute: 'v', in: [versions[i]] } }));
    const mine = steps.map(() => 1);
    expect(await table.transact({ item: { pk: 'r', sk: 'batch', state: 'done' }, precondition: { ifAbsent: true } }, [
      { pk: 'r', sk: 'totals', add: { listed: 98 } }, ...markDone(mine),
    ])).toBe(false);
    expect(await table.get('r', 'totals')).toBeUndefined();
    expect(await table.get('r', 'batch')).toBeUndefined();
    expect((await table.query('r', 'step.')).items.filter((i) => i.state === 'done')).toEqual([]);
    // At the versions as they are: the count, the batch and every step, together.
    mine[57] = 2;
    expect(await table.transact({ item: { pk: 'r', sk: 'batch', state: 'done' }, precondition: { ifAbsent: true } }, [
      { pk: 'r', sk: 'totals', add: { listed: 98 } }, ...markDone(mine),
    ])).toBe(true);
    expect(await table.get('r', 'totals')).toMatchObject({ listed: 98 });
    const after = (await table.query('r', 'step.')).items;
    expect(after.map((i) => [i.sk, i.state, i.v])).toEqual(steps.map((step, i) => [step.sk, 'done', mine[i] + 1]));
  });

  it('pages through a partition in sort-key order, by prefix', async () => {
    const table = await open();
    const pk = `q.${uniqueName('x')}`;
    for (let i = 0; i < 25; i++) await table.put({ pk, sk: `unit.${String(i).padStart(3, '0')}`, i });
    await table.put({ pk, sk: 'other', i: -1 });
    const seen: number[] = [];
    let after: string | undefined;
    do {
      const page = await table.query(pk, 'unit.', { after, limit: 10 });
      seen.push(...page.items.map((item) => item.i as number));
      after = page.next;
    } while (after);
    expect(seen).toEqual(Array.from({ length: 25 }, (_, i) => i));
    await table.delete(pk, 'unit.000');
    expect((await table.query(pk, 'unit.')).items).toHaveLength(24);
  });
});

describe('state table: the bucket, written by two processes', () => {
  /** A table as a second process would have it (its own client, its own memory), and the GETs it sends. */
  const processOn = (bucket: string) => {
    const client = s3();
    const gets = { count: 0 };
    client.middlewareStack.add((next, context) => async (args) => {
      if (context.commandName === 'GetObjectCommand') gets.count++;
      return next(args);
    }, { step: 'initialize' });
    return { table: bucketTable(client, bucket), gets };
  };

  it('reads nothing back to update what it wrote last, and never lets what it remembers win over the other\'s writes', async () => {
    const bucket = await newBucket();
    const a = processOn(bucket);
    const b = processOn(bucket);
    await a.table.update({ pk: 'p', sk: 'c', add: { n: 1 } });
    const before = a.gets.count;
    await a.table.update({ pk: 'p', sk: 'c', add: { n: 2 } });
    await a.table.update({ pk: 'p', sk: 'c', add: { n: 4 } });
    expect(a.gets.count).toBe(before);

    // b writes; a's next update, from its memory, is refused by the store and made on b's version instead.
    await b.table.update({ pk: 'p', sk: 'c', add: { n: 10 } });
    expect(await a.table.update({ pk: 'p', sk: 'c', add: { n: 100 } })).toMatchObject({ n: 117 });
    // A condition that holds for what a remembers but not for what is there fails.
    await b.table.update({ pk: 'p', sk: 'c', set: { state: 'taken' } });
    expect(await a.table.update({ pk: 'p', sk: 'c', set: { state: 'mine' }, when: { attribute: 'state', absent: true } })).toBeUndefined();
    // One that fails for what a remembers but holds for what is there succeeds.
    const seen = await a.table.get('p', 'c');
    await b.table.update({ pk: 'p', sk: 'c', set: { state: undefined } });
    expect(seen?.state).toBe('taken');
    expect(await a.table.update({ pk: 'p', sk: 'c', set: { state: 'mine' }, when: { attribute: 'state', absent: true } })).toMatchObject({ state: 'mine', n: 117 });

    // Versions: a put at a version a remembers as current but b has replaced is refused; one at b's version is not.
    const version = (await a.table.get('p', 'c'))!.v as number;
    await a.table.put({ pk: 'p', sk: 'x', n: 1 });
    await b.table.put({ pk: 'p', sk: 'x', n: 2 });
    expect(await a.table.put({ pk: 'p', sk: 'x', n: 3 }, { ifVersion: 1 })).toBe(false);
    expect(await a.table.put({ pk: 'p', sk: 'x', n: 4 }, { ifVersion: 2 })).toBe(true);
    expect(await b.table.get('p', 'x')).toMatchObject({ n: 4, v: 3 });
    expect(version).toBeGreaterThan(1);

    // Deleted by b: a's update starts from nothing, as it would have read.
    await b.table.delete('p', 'c');
    expect(await a.table.update({ pk: 'p', sk: 'c', add: { n: 1 } })).toMatchObject({ n: 1, v: 1 });
    expect(await b.table.get('p', 'c')).toMatchObject({ n: 1 });
  });
});
