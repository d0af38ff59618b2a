/**
 * Listing a large container continues across invocations: with a listing budget
 * forced down to one page per invocation, 10,000 blobs take 40 invocations and
 * every blob is routed exactly once, in messages that respect SNS's size limit.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { ContainerClient } from '@azure/storage-blob';
import { mapLimit } from '../../lambdas/core/batching';
import { DEFAULT_TUNING } from '../../lambdas/core/context';
import { MAX_MESSAGE_BYTES, MESSAGE_VERSION, messageBytes, type ListPageMessage, type StageMessage } from '../../lambdas/core/messages';
import { findBlobs } from '../../lambdas/core/stages/find-blobs';
import { azureSource } from '../../lambdas/core/stores/azure-source';
import { emptySink, runSettings, stageContext, MiB } from '../helpers/context';
import { newContainer, sourceOf } from '../helpers/stores';

const BLOBS = 10_000;
const PAGE = 250;

describe('listing at scale', () => {
  let container: ContainerClient;

  beforeAll(async () => {
    container = await newContainer();
    const names = Array.from({ length: BLOBS }, (_, i) => `scale/${String(i % 97).padStart(2, '0')}/blob-${i}.txt`);
    // A few large ones, so both routes are exercised.
    await mapLimit(names, 48, (name, i) =>
      container.getBlockBlobClient(name).upload('x'.repeat(i % 5), i % 5).then(() => undefined),
    );
  }, 400_000);

  it('routes every blob exactly once across many invocations', async () => {
    const source = azureSource(sourceOf(container));
    const settings = runSettings({ container: container.containerName, largeBlobBytes: 3, partBytes: 5 * MiB });
    const routed = new Map<string, number>();
    let next: ListPageMessage | undefined = { v: MESSAGE_VERSION, kind: 'list-page', runId: 'run-scale', run: settings, invocation: 0 };
    let invocations = 0;
    let largest = 0;
    while (next) {
      // No time left after the first page: each invocation lists one page, then hands on.
      const { ctx, published } = stageContext({ source, sink: emptySink, settings, tuning: { listPageSize: PAGE }, remainingMs: () => 0 });
      await findBlobs(ctx, next);
      invocations++;
      next = undefined;
      for (const message of published as StageMessage[]) {
        largest = Math.max(largest, messageBytes(message));
        if (message.kind === 'list-page') next = message;
        if (message.kind === 'copy-blobs') for (const b of message.blobs) routed.set(b.name, (routed.get(b.name) ?? 0) + 1);
        if (message.kind === 'large-blob') routed.set(message.blob.name, (routed.get(message.blob.name) ?? 0) + 1);
      }
    }
    // The run's first page is one message's worth (copying starts sooner), the rest whole pages.
    expect(invocations).toBe(1 + Math.ceil((BLOBS - DEFAULT_TUNING.blobsPerMessage) / PAGE));
    expect(routed.size).toBe(BLOBS);
    expect([...routed.values()].every((n) => n === 1)).toBe(true);
    expect(largest).toBeLessThanOrEqual(MAX_MESSAGE_BYTES);
  });
});
