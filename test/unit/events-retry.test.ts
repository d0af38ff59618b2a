/**
 * A delivery of blob events that fails gives back the claims it took: Event Grid
 * delivers it again, and the redelivery copies the blobs, rather than finding their
 * versions claimed (by the failed delivery), answering "duplicates" with a 200, and
 * so ending Event Grid's retries with nothing copied.
 */
import { describe, expect, it } from 'vitest';
import type { CopyConfig } from '../../lambdas/core/config';
import { DEFAULT_TUNING, type Runtime } from '../../lambdas/core/context';
import type { BlobEvent } from '../../lambdas/core/events/parse';
import { silentLogger } from '../../lambdas/core/log';
import type { StageMessage } from '../../lambdas/core/messages';
import { runLedger } from '../../lambdas/core/run-ledger';
import { applyBlobEvents } from '../../lambdas/core/stages/events';
import { handleWebhook } from '../../lambdas/core/events/webhook';
import { eventGridBatch } from '../helpers/event-grid';
import { memoryTable } from '../../lambdas/core/state/memory-table';
import type { StateTable } from '../../lambdas/core/state/table';
import type { BlobSource, ListedBlob, ObjectSink } from '../../lambdas/core/stores/types';

const blob = (name: string): ListedBlob => ({
  name, etag: `"${name}"`, size: 10, lastModified: '2026-01-01T00:00:00.000Z', isDirectoryMarker: false, isArchived: false,
});

/** A runtime over an empty bucket and an in-memory run state; `publish` says what sending messages does. */
function runtimeWith(publish: (messages: StageMessage[]) => Promise<void>, clock: () => number = Date.now, table: StateTable = memoryTable()) {
  const config: CopyConfig = {
    source: { account: 'acct', container: 'src', credentials: { kind: 'connection-string', connectionString: 'UseDevelopmentStorage=true' } },
    isActive: true,
  };
  const published: StageMessage[] = [];
  // An empty bucket: no copy of anything, every state write taken.
  const known: Record<string, unknown> = { head: async () => undefined, getJson: async () => undefined, putJson: async () => true };
  const sink = new Proxy(known, { get: (target, name: string) => target[name] ?? (async () => undefined) }) as unknown as ObjectSink;
  const runtime: Runtime = {
    loadConfig: async () => config,
    defaults: { bucket: 'dest', prefix: '', largeBlobBytes: 100 * 1024 * 1024, partBytes: 64 * 1024 * 1024, partTimeoutSeconds: 900 },
    pipeline: 'p',
    owner: 'pipeline',
    stallAfterSeconds: 1800,
    sourceFor: async () => ({ blob: async (name: string) => blob(name) }) as unknown as BlobSource,
    listContainers: async () => ['src'],
    sinkFor: () => sink,
    publish: async (messages) => {
      await publish(messages);
      published.push(...messages);
    },
    ledger: runLedger(table, {}, clock),
    log: silentLogger,
    tuning: DEFAULT_TUNING,
    remainingMs: () => 60_000,
  };
  return { runtime, published };
}

describe('blob events', () => {
  it('give back their claims when the delivery fails, so the redelivery copies the blobs', async () => {
    let publishes = 0;
    const { runtime, published } = runtimeWith(async () => {
      if (++publishes === 1) throw new Error('SNS refused the batch: throttled');
    });
    const events: BlobEvent[] = ['a', 'b'].map((name, i) => ({ id: `e${i}`, kind: 'created', container: 'src', name, sequencer: String(i) }));
    const now = new Date('2026-12-01T10:15:00Z');

    await expect(applyBlobEvents(runtime, events, now)).rejects.toThrow(/throttled/);
    const again = await applyBlobEvents(runtime, events, now);
    expect(again).toMatchObject({ copying: 2, duplicates: 0 });
    expect(published.flatMap((m) => (m.kind === 'copy-blobs' ? m.blobs.map((b) => b.name) : []))).toEqual(['a', 'b']);
    // The hour's run counts the two versions once: listed and routed, as a listing counts them.
    expect(await runtime.ledger.getRun(again.runId!)).toMatchObject({ listed: 2, routed: 2, routedBytes: 20, unchanged: 0 });
    // Delivered a third time, after it worked: duplicates, nothing sent again.
    expect(await applyBlobEvents(runtime, events, now)).toMatchObject({ copying: 0, duplicates: 2 });
  });

  it('answer a redelivery 503 while another delivery holds the blob versions, so Event Grid tries again and the blobs are copied once the holder\'s lease runs out', async () => {
    const clock = { now: Date.parse('2026-12-01T10:15:00Z') };
    let dead = true;
    // The first delivery dies holding its claims (a crash, or the function's timeout): its publish never returns.
    const { runtime, published } = runtimeWith(() => (dead ? new Promise<void>(() => {}) : Promise.resolve()), () => clock.now);
    const request = {
      method: 'POST', headers: {}, query: { code: 'k'.repeat(32) },
      body: JSON.stringify(eventGridBatch(['a', 'b'].map((name, i) => ({ container: 'src', name, kind: 'created' as const, sequencer: i + 1, account: 'acct' })))),
    };
    const deps = { key: async () => 'k'.repeat(32), apply: (events: BlobEvent[]) => applyBlobEvents(runtime, events, new Date(clock.now)) };
    void handleWebhook(request, deps);
    await new Promise((r) => setTimeout(r, 50));
    dead = false;

    // Event Grid's retry 10 s later: the versions are held, so not "duplicates" with a 200 (that would end its retries
    // with nothing copied) but a 503, which Event Grid retries.
    clock.now += 10_000;
    const held = await handleWebhook(request, deps);
    expect(held.response.status).toBe(503);
    expect(held.outcome).toMatchObject({ held: 2, duplicates: 0, copying: 0 });
    expect(held.summary).toMatch(/2 held by another delivery \(answered 503: delivered again later\)/);
    expect(published).toEqual([]);

    // A retry after the holder's lease (its time left, 60 s, and a minute more) takes the versions over and copies them.
    clock.now += 120_001 - 10_000;
    const taken = await handleWebhook(request, deps);
    expect(taken.response.status).toBe(200);
    expect(taken.outcome).toMatchObject({ held: 0, duplicates: 0, copying: 2 });
    expect(published.flatMap((m) => (m.kind === 'copy-blobs' ? m.blobs.map((b) => b.name) : []))).toEqual(['a', 'b']);
    expect(await runtime.ledger.getRun(taken.outcome!.runId!)).toMatchObject({ listed: 2, routed: 2 });

    // Once they are done, a redelivery is answered as duplicates, with a 200.
    const again = await handleWebhook(request, deps);
    expect(again.response.status).toBe(200);
    expect(again.outcome).toMatchObject({ held: 0, duplicates: 2, copying: 0 });
  });

  it('count each blob version once whichever state write a delivery dies at, when Event Grid delivers its events again in other batches', async () => {
    const created = (names: string[]): BlobEvent[] => names.map((name) => ({ id: `e-${name}`, kind: 'created', container: 'src', name, sequencer: '1' }));
    let dieAt = 1;
    for (let died = true; died; dieAt++) {
      const clock = { now: Date.parse('2026-12-01T10:15:00Z') };
      // The first delivery dies at its dieAt-th state write (a crash, or the function's timeout): it never returns.
      let writes = 0;
      let dying = true;
      const inner = memoryTable();
      const write = <T>(fn: () => Promise<T>): Promise<T> => (dying && ++writes === dieAt ? new Promise<T>(() => {}) : fn());
      const table: StateTable = {
        ...inner,
        put: (item, precondition) => write(() => inner.put(item, precondition)),
        update: (update) => write(() => inner.update(update)),
        transact: (put, updates) => write(() => inner.transact(put, updates)),
        delete: (pk, sk) => write(() => inner.delete(pk, sk)),
      };
      const { runtime } = runtimeWith(async () => {}, () => clock.now, table);
      const apply = (names: string[]) => applyBlobEvents(runtime, created(names), new Date(clock.now));
      const first = apply(['a', 'b']).then(() => false);
      died = await Promise.race([first, new Promise<boolean>((r) => setTimeout(() => r(true), 50))]);
      dying = false;

      // Past the dead delivery's claims (its time left and a minute), Event Grid's retries group the events otherwise.
      clock.now += 120_001;
      await apply(['b', 'c']);
      await apply(['a']);
      const last = await apply(['a', 'b', 'c']);
      expect(last, `died at write ${dieAt}`).toMatchObject({ copying: 0, held: 0, duplicates: 3 });
      expect(await runtime.ledger.getRun(last.runId!), `died at write ${dieAt}`).toMatchObject({ listed: 3, routed: 3, routedBytes: 30 });
    }
    // It died at every write a delivery of two blobs makes, and once more it did not.
    expect(dieAt).toBeGreaterThan(5);
  });

  it('do not mark versions done uncounted when the delivery that died had claimed their batch after them: the redelivery fails until that claim lapses', async () => {
    const clock = { now: Date.parse('2026-12-01T10:15:00Z') };
    const inner = memoryTable();
    let dying = true;
    // The first delivery claims its batch's step 5 s after its blob versions, then dies at its next state write.
    let batchClaimed = false;
    const write = <T>(fn: () => Promise<T>): Promise<T> => (dying && batchClaimed ? new Promise<T>(() => {}) : fn());
    const table: StateTable = {
      ...inner,
      put: (item, precondition) => {
        if (dying && String(item.sk).startsWith('list.evb') && !batchClaimed) return inner.put(item, precondition).finally(() => void (batchClaimed = true));
        return write(() => inner.put(item, precondition));
      },
      update: (update) => write(() => inner.update(update)),
      transact: (put, updates) => write(() => inner.transact(put, updates)),
    };
    // Sending the copy messages takes 5 s: the batch is claimed that much after the versions.
    const { runtime } = runtimeWith(async () => void (dying && (clock.now += 5_000)), () => clock.now, table);
    const events: BlobEvent[] = ['a', 'b'].map((name) => ({ id: `e-${name}`, kind: 'created', container: 'src', name, sequencer: '1' }));
    void applyBlobEvents(runtime, events, new Date(clock.now));
    await new Promise((r) => setTimeout(r, 50));
    expect(batchClaimed).toBe(true);
    dying = false;

    // The versions' claims have lapsed, the batch's not yet: the redelivery fails, counting nothing and leaving nothing done.
    clock.now += 120_001 - 5_000;
    await expect(applyBlobEvents(runtime, events, new Date(clock.now))).rejects.toThrow(/held by a delivery that stopped/);
    // Once it has lapsed too, the next one counts the two versions, once.
    clock.now += 5_000;
    const counted = await applyBlobEvents(runtime, events, new Date(clock.now));
    expect(counted).toMatchObject({ copying: 2, held: 0, duplicates: 0 });
    expect(await runtime.ledger.getRun(counted.runId!)).toMatchObject({ listed: 2, routed: 2 });
    expect(await applyBlobEvents(runtime, events, new Date(clock.now))).toMatchObject({ copying: 0, duplicates: 2 });
  });
});
