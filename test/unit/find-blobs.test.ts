/**
 * A listing step that fails gives its claim back: the queue's retry of the same
 * message lists the step, rather than finding it held (by an invocation that has
 * already failed) and dropping it as another delivery's, which left the run's
 * listing unfinished for good.
 */
import { describe, expect, it } from 'vitest';
import { MESSAGE_VERSION, type ListPageMessage, type StageMessage } from '../../lambdas/core/messages';
import { runLedger } from '../../lambdas/core/run-ledger';
import { findBlobs } from '../../lambdas/core/stages/find-blobs';
import { deletionStep } from '../../lambdas/core/stages/mirror';
import { memoryTable } from '../../lambdas/core/state/memory-table';
import type { BlobSource, ListedBlob, ObjectSink } from '../../lambdas/core/stores/types';
import { emptySink, runSettings, stageContext } from '../helpers/context';

const blob = (name: string): ListedBlob => ({
  name, etag: `"${name}"`, size: 10, lastModified: '2026-01-01T00:00:00.000Z', isDirectoryMarker: false, isArchived: false,
});

describe('find-blobs', () => {
  it('gives a failed step\'s claim back, so the retry lists it; a late duplicate of the done step does nothing', async () => {
    const ledger = runLedger(memoryTable());
    const settings = runSettings();
    await ledger.begin({ runId: 'run-test', pipeline: 'p', settings, stallAfterSeconds: 1800, owner: { kind: 'pipeline' } });
    let calls = 0;
    const source = {
      listPage: async () => {
        if (++calls === 1) throw new Error('Azure gave up: 503 ServerBusy after 8 tries');
        return { blobs: [blob('a'), blob('b'), blob('c')] };
      },
    } as unknown as BlobSource;
    const message: ListPageMessage = { v: MESSAGE_VERSION, kind: 'list-page', runId: 'run-test', run: settings, invocation: 0 };

    const first = stageContext({ source, sink: emptySink, settings, ledger });
    await expect(findBlobs(first.ctx, message)).rejects.toThrow(/ServerBusy/);

    const retry = stageContext({ source, sink: emptySink, settings, ledger });
    await findBlobs(retry.ctx, message);
    const routed = (retry.published as StageMessage[]).flatMap((m) => (m.kind === 'copy-blobs' ? m.blobs.map((b) => b.name) : []));
    expect(routed).toEqual(['a', 'b', 'c']);
    expect(await ledger.getRun('run-test')).toMatchObject({ listed: 3, routed: 3, listingDone: true });

    // Done: a late duplicate finds the step done and does nothing.
    const late = stageContext({ source, sink: emptySink, settings, ledger });
    await findBlobs(late.ctx, message);
    expect(late.published).toEqual([]);
  });

  it('finishes the mirror\'s deletions when they failed after the last listing step was counted: its retry deletes them', async () => {
    const ledger = runLedger(memoryTable());
    const settings = runSettings({ mirror: true });
    await ledger.begin({ runId: 'run-test', pipeline: 'p', settings, stallAfterSeconds: 1800, owner: { kind: 'pipeline' } });
    await ledger.addUnits('run-test', [{ unit: 'c.0.0.d0', blobs: [{ name: 'gone-1', size: 1 }, { name: 'gone-2', size: 1 }], deletes: true }]);
    let attempts = 0;
    const deletedKeys: string[] = [];
    const sink = {
      list: async () => ({ objects: [], truncated: false }),
      deleteMany: async (keys: string[]) => {
        if (++attempts === 1) throw new Error('S3 gave up: 503 SlowDown');
        deletedKeys.push(...keys);
        return [];
      },
    } as unknown as ObjectSink;
    // The last (only) listing step, counted with its two deletions planned; then the deletions fail.
    const source = { listPage: async () => ({ blobs: [] }) } as unknown as BlobSource;
    const message: ListPageMessage = { v: MESSAGE_VERSION, kind: 'list-page', runId: 'run-test', run: settings, invocation: 0 };
    const claim = await ledger.claimListing('run-test', settings.container, 0, 60_000);
    await ledger.listed('run-test', settings.container, 0, claim!, { listed: 0, beforeBeginDate: 0, filtered: 0, unchanged: 0, routed: 0, routedBytes: 0, done: true, toDelete: 2, destinationSeen: 10_000 });
    const first = stageContext({ source, sink, settings, ledger });
    await expect(deletionStep(first.ctx, message, 0)).rejects.toThrow(/SlowDown/);

    // The queue's retry of the listing message: the step is done, but its deletions are not.
    const retry = stageContext({ source, sink, settings, ledger });
    await findBlobs(retry.ctx, message);
    expect(deletedKeys.sort()).toEqual(['gone-1', 'gone-2']);
    expect(await ledger.getRun('run-test')).toMatchObject({ deletesPlanned: 2, deletesSettled: 2, deleted: 2 });
  });
});
