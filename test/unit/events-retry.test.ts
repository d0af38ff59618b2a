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
import { memoryTable } from '../../lambdas/core/state/memory-table';
import type { BlobSource, ListedBlob, ObjectSink } from '../../lambdas/core/stores/types';

const blob = (name: string): ListedBlob => ({
  name, etag: `"${name}"`, size: 10, lastModified: '2026-01-01T00:00:00.000Z', isDirectoryMarker: false, isArchived: false,
});

describe('blob events', () => {
  it('give back their claims when the delivery fails, so the redelivery copies the blobs', async () => {
    const config: CopyConfig = {
      source: { account: 'acct', container: 'src', credentials: { kind: 'connection-string', connectionString: 'UseDevelopmentStorage=true' } },
      isActive: true,
    };
    const published: StageMessage[] = [];
    let publishes = 0;
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
        if (++publishes === 1) throw new Error('SNS refused the batch: throttled');
        published.push(...messages);
      },
      ledger: runLedger(memoryTable()),
      log: silentLogger,
      tuning: DEFAULT_TUNING,
      remainingMs: () => 60_000,
    };
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
});
