/**
 * Stage 2: list the container a page at a time, decide for each blob whether it
 * needs copying, and route it by size. Listing goes on while the invocation has
 * time, then hands the continuation token to the next invocation, so a container
 * of any size is listed within Lambda's limits.
 */
import { isCopyOf } from '../attributes';
import { mapLimit, packBySize } from '../batching';
import type { StageContext } from '../context';
import { freshness } from '../incremental';
import { compareKeys, destinationKey, keyProblem } from '../keys';
import type { ListingProgress } from '../ledger';
import { MESSAGE_VERSION, type BlobRef, type ListPageMessage, type StageMessage } from '../messages';
import { sizeProblem } from '../plan';
import type { ListedBlob, ListedObject } from '../stores/types';

const S3_LIST_PAGE = 1000;

export async function findBlobs(ctx: StageContext, message: ListPageMessage): Promise<ListingProgress> {
  const progress: ListingProgress = {
    listed: 0, routedSmall: 0, routedLarge: 0, routedBytes: 0, unchanged: 0, beforeBeginDate: 0, done: false,
  };
  let continuation = message.continuation;
  let afterKey = message.afterKey;
  let pages = 0;
  do {
    const page = await ctx.source.listPage(continuation, ctx.tuning.listPageSize);
    pages++;
    progress.listed += page.blobs.length;
    const routes = await routePage(ctx, page.blobs, afterKey, progress);
    await ctx.publish(routes);
    afterKey = lastKey(ctx.settings.prefix, page.blobs) ?? afterKey;
    continuation = page.continuation;
  } while (continuation && ctx.remainingMs() > ctx.tuning.listReserveMs);

  if (continuation) {
    await ctx.publish([
      { ...message, continuation, afterKey, invocation: message.invocation + 1 } satisfies ListPageMessage,
    ]);
  } else {
    progress.done = true;
  }
  await ctx.ledger.listed(ctx.runId, progress);
  ctx.log.info(progress.done ? 'listing finished' : 'listing continues in the next invocation', {
    pages, invocation: message.invocation, ...progress,
  });
  return progress;
}

function lastKey(prefix: string, blobs: ListedBlob[]): string | undefined {
  let last: string | undefined;
  for (const b of blobs) {
    const key = destinationKey(prefix, b.name);
    if (last === undefined || compareKeys(key, last) > 0) last = key;
  }
  return last;
}

async function routePage(
  ctx: StageContext,
  blobs: ListedBlob[],
  afterKey: string | undefined,
  progress: ListingProgress,
): Promise<StageMessage[]> {
  const { settings } = ctx;
  const begin = settings.beginDate ? Date.parse(settings.beginDate) : undefined;
  const candidates: ListedBlob[] = [];
  for (const blob of blobs) {
    if (begin !== undefined && Date.parse(blob.lastModified) <= begin) {
      progress.beforeBeginDate++;
      continue;
    }
    const skip = blob.isDirectoryMarker
      ? 'a directory marker (hdi_isfolder=true), not data'
      : blob.isArchived
        ? 'archived: the blob is in the Archive tier; rehydrate it to Hot or Cool to copy it'
        : undefined;
    if (skip) {
      await ctx.ledger.record(ctx.runId, { status: 'skipped', name: blob.name, reason: skip });
      continue;
    }
    const problem = keyProblem(settings.prefix, blob.name) ?? sizeProblem(blob.size);
    if (problem) {
      await ctx.ledger.record(ctx.runId, { status: 'failed', name: blob.name, reason: problem });
      continue;
    }
    candidates.push(blob);
  }

  const held = await destinationIndex(ctx, candidates, afterKey);
  const verdicts = await mapLimit(candidates, 16, async (blob) => {
    const key = destinationKey(settings.prefix, blob.name);
    const verdict = freshness(blob, held.get(key));
    if (verdict !== 'verify') return verdict;
    const head = await ctx.sink.head(key);
    return head && isCopyOf(head.metadata, blob) ? 'unchanged' : 'changed';
  });

  const small: BlobRef[] = [];
  const messages: StageMessage[] = [];
  const base = { v: MESSAGE_VERSION, runId: ctx.runId, run: settings };
  candidates.forEach((blob, i) => {
    if (verdicts[i] === 'unchanged') {
      progress.unchanged++;
      return;
    }
    progress.routedBytes += blob.size;
    const ref = toBlobRef(blob);
    if (blob.size >= settings.largeBlobBytes) {
      progress.routedLarge++;
      messages.push({ ...base, kind: 'large-blob', blob: ref, replans: 0 });
    } else {
      progress.routedSmall++;
      small.push(ref);
    }
  });
  const batches = packBySize(small, {
    maxItems: ctx.tuning.blobsPerMessage,
    weight: (b) => b.size,
    maxWeight: ctx.tuning.bytesPerMessage,
    envelopeBytes: 2048 + Buffer.byteLength(JSON.stringify(settings)),
  });
  for (const blobsOfMessage of batches) messages.push({ ...base, kind: 'copy-blobs', blobs: blobsOfMessage });
  return messages;
}

function toBlobRef(blob: ListedBlob): BlobRef {
  const { name, etag, size, lastModified, contentMd5, tags } = blob;
  return { name, etag, size, lastModified, contentMd5, tags };
}

/**
 * What the destination holds for this page's keys: list the destination from where
 * the previous page ended to this page's last key. Keys this misses (where Azure's
 * order and S3's byte order disagree) are simply copied again: safe, not lost.
 */
async function destinationIndex(ctx: StageContext, blobs: ListedBlob[], afterKey: string | undefined) {
  const index = new Map<string, ListedObject>();
  if (blobs.length === 0) return index;
  const last = lastKey(ctx.settings.prefix, blobs)!;
  let startAfter = afterKey;
  for (;;) {
    const { objects, truncated } = await ctx.sink.list(ctx.settings.prefix, startAfter, S3_LIST_PAGE);
    for (const object of objects) {
      if (compareKeys(object.key, last) > 0) return index;
      index.set(object.key, object);
    }
    if (!truncated || objects.length === 0) return index;
    startAfter = objects[objects.length - 1].key;
  }
}
