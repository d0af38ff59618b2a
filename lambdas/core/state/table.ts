import { randomUUID } from 'node:crypto';

/**
 * The run state's one storage capability: a small table of items addressed by a
 * partition key and a sort key, with what exact counting under duplicate and
 * retried deliveries needs and nothing more: versioned conditional writes, atomic
 * counters, and one conditional write applied together with counter updates.
 *
 * Two stores implement it and pass one shared suite (test/integration/state-table.test.ts):
 * DynamoDB (the deployed pipeline: created by the stack, on demand) and the
 * destination bucket itself (local runs: S3 conditional writes, nothing to set up).
 * An in-memory one serves unit tests.
 */

/** An item: its keys, a version the store maintains, and JSON-able attributes. */
export interface StateItem {
  pk: string;
  sk: string;
  /** Set by the store: 1 on create, +1 on every write. */
  v?: number;
  /**
   * Set by the store: a token unique to the write that made this version. A write whose answer was lost
   * is retried (by the SDK, or the store); when the retry is refused because the first attempt went
   * through, the token in the item shows it was ours, so the write counts once and is reported as done.
   */
  w?: string;
  [attribute: string]: unknown;
}

/** A write's precondition: the item must not exist, or must be at this version. */
export type Precondition = { ifAbsent: true } | { ifVersion: number };

export interface Update {
  pk: string;
  sk: string;
  /** Added atomically (a missing attribute counts as 0). */
  add?: Record<string, number>;
  /** Set as given. */
  set?: Record<string, unknown>;
  /** Only when each condition holds: an attribute equals one of these values (or, with `absent`, has none). */
  when?: Condition | Condition[];
}

export type Condition = { attribute: string; in: unknown[] } | { attribute: string; absent: true };

export function conditionsOf(update: Update): Condition[] {
  return update.when === undefined ? [] : [update.when].flat();
}

export interface Page {
  items: StateItem[];
  /** Give this back as `after` for the next page; absent on the last. */
  next?: string;
}

export interface StateTable {
  /** What the store is, for messages and for a reader to find it again. */
  readonly description: StateLocation;
  /** The item as last written (strongly consistent), or undefined. */
  get(pk: string, sk: string): Promise<StateItem | undefined>;
  /**
   * The item as this process last wrote it, else as `get` reads it: possibly stale (another process may have
   * written since), so only for a read whose write is conditional on the version read. A store that keeps
   * nothing in memory leaves it out.
   */
  recall?(pk: string, sk: string): Promise<StateItem | undefined>;
  /** Write the whole item; false (and nothing written) when the precondition does not hold. */
  put(item: StateItem, precondition?: Precondition): Promise<boolean>;
  /**
   * Apply one update; the item after it, or undefined when its `when` did not hold. Creates a missing item.
   * Counters that must count once are added in `transact`, which is idempotent under retries; an election
   * made with `when` sets a token of its own and checks it when refused (see run-ledger.ts).
   */
  update(update: Update): Promise<StateItem | undefined>;
  /** Items of one partition whose sort key starts with `skPrefix`, in sort-key order, a page at a time. */
  query(pk: string, skPrefix: string, options?: { after?: string; limit?: number }): Promise<Page>;
  delete(pk: string, sk: string): Promise<void>;
  /**
   * A conditional put and unconditional counter updates, all or none: false (nothing written) when the
   * put's precondition does not hold. DynamoDB does this in one transaction; the bucket store writes the
   * put first and the updates after it, which is all or none except for a crash in between (a local run's
   * crash ends its whole attempt, and the resumed attempt counts afresh).
   */
  transact(put: { item: StateItem; precondition: Precondition }, updates: Update[]): Promise<boolean>;
}

/**
 * Items whose last version the bucket store remembers (state/bucket-table.ts), so that it writes them again
 * without reading them first. A unit is settled about 150 writes after it is created (a backlog of 40 units
 * created ahead, each settle writing its unit and the run's item): this many cover that, in about 2 MiB.
 */
export const BUCKET_REMEMBERED_ITEMS = 256;

export type StateLocation =
  | { kind: 'dynamodb'; table: string; region?: string; endpoint?: string }
  | { kind: 'bucket'; bucket: string; endpoint?: string }
  | { kind: 'memory' };

/** Keys are plain so every store can hold them unescaped (S3 keys, DynamoDB strings) and sort them alike. */
const KEY_PATTERN = /^[A-Za-z0-9._:+=@-]{1,512}$/;

export function checkKey(value: string, what: 'pk' | 'sk'): string {
  if (!KEY_PATTERN.test(value)) throw new Error(`state ${what} ${JSON.stringify(value)} holds characters outside [A-Za-z0-9._:+=@-]`);
  return value;
}

/** Apply an update to an item in memory (the bucket and memory stores; DynamoDB does it server-side). */
export function applyUpdate(before: StateItem | undefined, update: Update, token?: string): StateItem | undefined {
  for (const condition of conditionsOf(update)) {
    const current = before?.[condition.attribute];
    const holds = 'absent' in condition ? current === undefined : condition.in.some((v) => v === current);
    if (!holds) return undefined;
  }
  const after: StateItem = { ...(before ?? { pk: update.pk, sk: update.sk }), pk: update.pk, sk: update.sk };
  for (const [name, delta] of Object.entries(update.add ?? {})) {
    const current = after[name];
    after[name] = (typeof current === 'number' ? current : 0) + delta;
  }
  for (const [name, value] of Object.entries(update.set ?? {})) {
    if (value === undefined) delete after[name];
    else after[name] = value;
  }
  after.v = (before?.v ?? 0) + 1;
  if (token !== undefined) after.w = token;
  return after;
}

export function writeToken(): string {
  return randomUUID();
}

/** The precondition holds for an item as it stands. */
export function holds(current: StateItem | undefined, precondition: Precondition | undefined): boolean {
  if (!precondition) return true;
  if ('ifAbsent' in precondition) return current === undefined;
  return current !== undefined && current.v === precondition.ifVersion;
}
