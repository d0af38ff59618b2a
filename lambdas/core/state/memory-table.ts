/**
 * The state table in memory, for unit tests of the run-state logic. It passes the
 * same shared suite as the DynamoDB and bucket stores.
 */
import { applyUpdate, checkKey, holds, writeToken, type StateItem, type StateTable } from './table';

export function memoryTable(): StateTable & { items: Map<string, StateItem> } {
  const items = new Map<string, StateItem>();
  const id = (pk: string, sk: string) => `${checkKey(pk, 'pk')}\u0000${checkKey(sk, 'sk')}`;
  const clone = <T>(value: T): T => (value === undefined ? value : structuredClone(value));

  const table: StateTable & { items: Map<string, StateItem> } = {
    items,
    description: { kind: 'memory' },
    async get(pk, sk) {
      return clone(items.get(id(pk, sk)));
    },
    async put(item, precondition) {
      const key = id(item.pk, item.sk);
      const current = items.get(key);
      if (!holds(current, precondition)) return false;
      items.set(key, { ...clone(item), v: (current?.v ?? 0) + 1, w: writeToken() });
      return true;
    },
    async update(update) {
      const key = id(update.pk, update.sk);
      const after = applyUpdate(items.get(key), update, writeToken());
      if (after) items.set(key, after);
      return clone(after);
    },
    async query(pk, skPrefix, options = {}) {
      checkKey(pk, 'pk');
      const matching = [...items.values()]
        .filter((i) => i.pk === pk && i.sk.startsWith(skPrefix) && (options.after === undefined || i.sk > options.after))
        .sort((a, b) => (a.sk < b.sk ? -1 : a.sk > b.sk ? 1 : 0));
      const limit = options.limit ?? 1000;
      const page = matching.slice(0, limit);
      return { items: clone(page), next: matching.length > limit ? page[page.length - 1].sk : undefined };
    },
    async delete(pk, sk) {
      items.delete(id(pk, sk));
    },
    async transact(put, updates) {
      const key = id(put.item.pk, put.item.sk);
      if (!holds(items.get(key), put.precondition)) return false;
      // Check every update's condition before writing anything: all or none.
      const w = writeToken();
      const afters = updates.map((u) => [id(u.pk, u.sk), applyUpdate(items.get(id(u.pk, u.sk)), u, w)] as const);
      if (afters.some(([, after]) => after === undefined)) return false;
      items.set(key, { ...clone(put.item), v: (items.get(key)?.v ?? 0) + 1, w });
      for (const [k, after] of afters) items.set(k, after!);
      return true;
    },
  };
  return table;
}
