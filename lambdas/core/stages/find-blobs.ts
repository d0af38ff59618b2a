/**
 * Stage 2: list the container a page at a time, decide for each blob whether it
 * needs copying, and route it by size. Listing goes on while the invocation has
 * time, then hands the continuation token to the next invocation, so a container
 * of any size is listed within Lambda's limits.
 */
import { isCopyOf } from '../attributes';
import { mapLimit, packBySize } from '../batching';
import type { ContextOf } from '../context';
import { freshness } from '../incremental';
import { compareKeys, destinationKey, keyProblem } from '../keys';
import { MESSAGE_VERSION, type BlobRef, type CopyBlobsMessage, type LargeBlobMessage, type ListPageMessage } from '../messages';
import { sizeProblem } from '../plan';
import type { BlobOutcome, ListingTotals, NewUnit } from '../run-ledger';
import type { ListedBlob, ListedObject } from '../stores/types';
import { readManifest } from '../uploads';
import type { STAGE_SPECS } from './specs';

type Ctx = ContextOf<(typeof STAGE_SPECS)['find-blobs']>;

const S3_LIST_PAGE = 1000;
/** Blobs settled at the listing (skipped, or failed before a byte moves) are recorded in units of this many. */
const SETTLED_UNIT_BLOBS = 100;

export async function findBlobs(ctx: Ctx, message: ListPageMessage): Promise<ListingTotals | undefined> {
  // A duplicate delivery of this listing step, while the first works or after it finished, does nothing.
  const claim = await ctx.ledger.claimListing(ctx.runId, message.invocation, ctx.remainingMs() + 60_000);
  if (claim === undefined) {
    ctx.log.info('listing step already taken by another delivery; nothing to do', { invocation: message.invocation });
    return undefined;
  }
  const totals: ListingTotals = { listed: 0, beforeBeginDate: 0, filtered: 0, unchanged: 0, routed: 0, routedBytes: 0, done: false };
  let continuation = message.continuation;
  let afterKey = message.afterKey;
  let pages = 0;
  // Hand on with time to spare: two minutes of a 15-minute invocation, a third of a short one.
  const reserve = Math.min(ctx.tuning.listReserveMs, ctx.remainingMs() / 3);
  do {
    const page = await ctx.source.listPage(continuation, ctx.tuning.listPageSize);
    totals.listed += page.blobs.length;
    const routes = await routePage(ctx, page.blobs, afterKey, totals, `${message.invocation}.${pages}`);
    // Units exist before their messages go out, so an outcome always finds its unit.
    await ctx.ledger.addUnits(ctx.runId, routes.units);
    for (const settled of routes.settled) await ctx.ledger.settle(ctx.runId, settled.unit, settled.outcomes);
    await ctx.publish(routes.messages);
    pages++;
    afterKey = lastKey(ctx.settings.prefix, page.blobs) ?? afterKey;
    continuation = page.continuation;
  } while (continuation && ctx.remainingMs() > reserve);

  if (continuation) {
    // Sent before this step is counted: a step that dies between the two is taken over and sends it again,
    // and the next step's claim makes the duplicate harmless.
    await ctx.publish([{ ...message, v: MESSAGE_VERSION, continuation, afterKey, invocation: message.invocation + 1 } satisfies ListPageMessage]);
  } else {
    totals.done = true;
  }
  await ctx.ledger.listed(ctx.runId, message.invocation, claim, totals);
  ctx.log.info(totals.done ? 'listing finished' : 'listing continues in the next invocation', {
    pages, invocation: message.invocation, ...totals,
  });
  return totals;
}

function lastKey(prefix: string, blobs: ListedBlob[]): string | undefined {
  let last: string | undefined;
  for (const b of blobs) {
    const key = destinationKey(prefix, b.name);
    if (last === undefined || compareKeys(key, last) > 0) last = key;
  }
  return last;
}

interface Routes {
  messages: (CopyBlobsMessage | LargeBlobMessage)[];
  units: NewUnit[];
  settled: { unit: string; outcomes: BlobOutcome[] }[];
}

/** Why a listed blob is not copied at all, or undefined when it is a candidate. */
function verdictAtListing(blob: ListedBlob, settings: Ctx['settings']): BlobOutcome | undefined {
  if (blob.isDirectoryMarker) return { name: blob.name, status: 'skipped', reason: 'a directory marker (hdi_isfolder=true), not data' };
  if (blob.isArchived) {
    return { name: blob.name, status: 'skipped', reason: 'archived: the blob is in the Archive tier; rehydrate it to Hot or Cool to copy it' };
  }
  const problem = keyProblem(settings.prefix, blob.name) ?? sizeProblem(blob.size, settings.maxPartBytes);
  return problem ? { name: blob.name, status: 'failed', reason: problem } : undefined;
}

async function routePage(ctx: Ctx, blobs: ListedBlob[], afterKey: string | undefined, totals: ListingTotals, pageId: string): Promise<Routes> {
  const { settings } = ctx;
  const begin = settings.beginDate ? Date.parse(settings.beginDate) : undefined;
  const candidates: ListedBlob[] = [];
  const atListing: { blob: ListedBlob; outcome: BlobOutcome }[] = [];
  for (const blob of blobs) {
    if (begin !== undefined && Date.parse(blob.lastModified) <= begin) {
      totals.beforeBeginDate++;
      continue;
    }
    const outcome = verdictAtListing(blob, settings);
    if (outcome) atListing.push({ blob, outcome });
    else candidates.push(blob);
  }

  const held = await destinationIndex(ctx, candidates, afterKey);
  const verdicts = await mapLimit(candidates, 16, async (blob) => {
    const key = destinationKey(settings.prefix, blob.name);
    let verdict = freshness(blob, held.get(key));
    if (verdict === 'verify') {
      const head = await ctx.sink.head(key);
      verdict = head && isCopyOf(head.metadata, blob) ? 'unchanged' : 'changed';
    }
    // A large copy is there before it is checked against the blob's Content-MD5; while its manifest
    // stands, it is not a finished copy (the initializer carries the check on).
    if (verdict === 'unchanged' && blob.contentMd5 && blob.size >= settings.largeBlobBytes) {
      const manifest = await readManifest(ctx.sink, key);
      if (manifest?.blob.etag === blob.etag) verdict = 'changed';
    }
    return verdict;
  });

  const routes: Routes = { messages: [], units: [], settled: [] };
  const base = { v: MESSAGE_VERSION, runId: ctx.runId, run: settings };
  const small: BlobRef[] = [];
  candidates.forEach((blob, i) => {
    if (verdicts[i] === 'unchanged') {
      totals.unchanged++;
      return;
    }
    totals.routed++;
    totals.routedBytes += blob.size;
    if (blob.size >= settings.largeBlobBytes) {
      const unit = `${pageId}.L${routes.units.length}`;
      routes.units.push({ unit, blobs: [{ name: blob.name, size: blob.size }], large: true });
      routes.messages.push({ ...base, kind: 'large-blob', unit, blob: toBlobRef(blob), replans: 0 });
    } else {
      small.push(toBlobRef(blob));
    }
  });
  const batches = packBySize(small, {
    maxItems: ctx.tuning.blobsPerMessage,
    weight: (b) => b.size,
    maxWeight: ctx.tuning.bytesPerMessage,
    envelopeBytes: 2048 + Buffer.byteLength(JSON.stringify(settings)),
  });
  batches.forEach((batch, n) => {
    const unit = `${pageId}.${n}`;
    routes.units.push({ unit, blobs: batch.map((b) => ({ name: b.name, size: b.size })) });
    routes.messages.push({ ...base, kind: 'copy-blobs', unit, blobs: batch.map((b, i) => ({ ...b, i })), attempt: 1 });
  });
  // Blobs with an outcome at the listing are counted like the rest: in units, settled at once.
  for (let n = 0; n * SETTLED_UNIT_BLOBS < atListing.length; n++) {
    const chunk = atListing.slice(n * SETTLED_UNIT_BLOBS, (n + 1) * SETTLED_UNIT_BLOBS);
    const unit = `${pageId}.x${n}`;
    totals.routed += chunk.length;
    routes.units.push({ unit, blobs: chunk.map((c) => ({ name: c.blob.name, size: c.blob.size })) });
    routes.settled.push({ unit, outcomes: chunk.map((c, i) => ({ ...c.outcome, index: i })) });
  }
  return routes;
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
async function destinationIndex(ctx: Ctx, blobs: ListedBlob[], afterKey: string | undefined) {
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
