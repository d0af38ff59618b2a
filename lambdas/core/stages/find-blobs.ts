/**
 * Stage 2: list the container a page at a time, decide for each blob whether it
 * needs copying, and route it by size. Listing goes on while the invocation has
 * time, then hands the continuation token to the next invocation, so a container
 * of any size is listed within Lambda's limits.
 */
import { mapLimit, packBySize } from '../batching';
import { BlobFailure } from '../errors';
import type { ContextOf, Tuning } from '../context';
import { recordPlanPage } from '../cost/plan-state';
import { addTally, emptyTally, tallyPage } from '../cost/tally';
import { MESSAGE_VERSION, type BlobRef, type CopyBlobsMessage, type LargeBlobMessage, type ListPageMessage } from '../messages';
import { decideAcross, lastKey, type Decided, type DecisionRequests } from '../routing';
import { deletionStep, deletionsOf } from './mirror';
import type { BlobOutcome, ListingTotals, NewUnit } from '../run-ledger';
import type { ListedBlob, ListPage } from '../stores/types';
import type { STAGE_SPECS } from './specs';

type Ctx = ContextOf<(typeof STAGE_SPECS)['find-blobs']>;

/** Blobs settled at the listing (skipped, or failed before a byte moves) are recorded in units of this many. */
const SETTLED_UNIT_BLOBS = 100;

export async function findBlobs(ctx: Ctx, message: ListPageMessage): Promise<ListingTotals | undefined> {
  if (message.deleting) {
    await deletionStep(ctx, message, message.deleting.step, message.deleting.after);
    return undefined;
  }
  // A duplicate delivery of this listing step, while the first works or after it finished, does nothing.
  const claim = await ctx.ledger.claimListing(ctx.runId, ctx.settings.container, message.invocation, ctx.remainingMs() + 60_000);
  if (claim === undefined) {
    // The retry of a run's last listing step whose mirror deletions failed after it was counted: the deletions
    // are still this message's to finish (their own claim keeps a duplicate from deleting twice).
    if (ctx.settings.mirror && !ctx.settings.dryRun) {
      const run = await ctx.ledger.getRun(ctx.runId);
      if (run?.listingDone && !run.mirrorRefused && (run.deletesSettled ?? 0) < (run.deletesPlanned ?? 0)) {
        await deletionStep(ctx, message, 0);
        return undefined;
      }
    }
    ctx.log.info('listing step already taken by another delivery; nothing to do', { invocation: message.invocation });
    return undefined;
  }
  try {
    return await listStep(ctx, message, claim);
  } catch (error) {
    // Failed (Azure or S3 gave up on a request): the claim goes back, so the queue's retry lists this step again
    // (the pages routed so far are routed again under the same units, which counts nothing twice).
    await ctx.ledger.releaseListing(ctx.runId, ctx.settings.container, message.invocation, claim).catch(() => undefined);
    throw error;
  }
}

/**
 * A run's first page is one message's worth, so that copying starts after one short round trip rather than after
 * Azure has listed (and the listing routed) a whole page; the rest are whole pages.
 */
export function firstListPageSize(tuning: Pick<Tuning, 'blobsPerMessage' | 'listPageSize'>): number {
  return Math.min(tuning.blobsPerMessage, tuning.listPageSize);
}

async function listStep(ctx: Ctx, message: ListPageMessage, claim: number): Promise<ListingTotals> {
  const totals: ListingTotals = { listed: 0, beforeBeginDate: 0, filtered: 0, unchanged: 0, routed: 0, routedBytes: 0, done: false };
  let continuation = message.continuation;
  let afterKey = message.afterKey;
  let pages = 0;
  // Hand on with time to spare: two minutes of a 15-minute invocation, a third of a short one.
  const reserve = Math.min(ctx.tuning.listReserveMs, ctx.remainingMs() / 3);
  // A dry run routes nothing: it keeps what it would have routed as the plan (cost/plan-state.ts).
  const plan = ctx.settings.dryRun ? emptyTally() : undefined;
  const firstSize = continuation === undefined && message.invocation === 0 ? firstListPageSize(ctx.tuning) : ctx.tuning.listPageSize;
  let next: Promise<ListPage> | undefined = ctx.source.listPage(continuation, firstSize);
  do {
    const page: ListPage = await next!;
    // The next page is asked for now, and arrives while this one is routed (its blobs copying meanwhile).
    next = page.continuation && ctx.remainingMs() > reserve ? ctx.source.listPage(page.continuation, ctx.tuning.listPageSize) : undefined;
    totals.listed += page.blobs.length;
    const pageId = `${ctx.settings.container}.${message.invocation}.${pages}`;
    const routes = await routePage(ctx, page.blobs, afterKey, totals, pageId, !page.continuation, plan !== undefined);
    if (plan) {
      const { tally, entries } = tallyPage({ ...routes, settledUnits: routes.settled.length }, ctx.settings, ctx.tuning.downloadConcurrency, ctx.tuning.rangeReadsPerPart);
      addTally(plan, tally);
      await recordPlanPage(ctx.ledger.table, ctx.runId, pageId, entries);
    } else {
      // Units exist before their messages go out, so an outcome always finds its unit.
      await ctx.ledger.addUnits(ctx.runId, routes.units);
      for (const settled of routes.settled) await ctx.ledger.settle(ctx.runId, settled.unit, settled.outcomes);
      await ctx.publish(routes.messages);
    }
    pages++;
    afterKey = lastKey(ctx.settings.prefix, page.blobs) ?? afterKey;
    continuation = page.continuation;
  } while (continuation && next && ctx.remainingMs() > reserve);
  // Asked for ahead, then not used (the invocation hands on): the next invocation asks for it again.
  next?.catch(() => undefined);

  if (continuation) {
    // Sent before this step is counted: a step that dies between the two is taken over and sends it again,
    // and the next step's claim makes the duplicate harmless.
    await ctx.publish([{ ...message, v: MESSAGE_VERSION, continuation, afterKey, invocation: message.invocation + 1 } satisfies ListPageMessage]);
  } else {
    totals.done = true;
  }
  // A dry run's deletions are planned, not counted as the run's to do (its run ends with its listing).
  if (plan) Object.assign(totals, { routed: 0, routedBytes: 0, toDelete: undefined, plan });
  await ctx.ledger.listed(ctx.runId, ctx.settings.container, message.invocation, claim, totals);
  ctx.log.info(totals.done ? 'listing finished' : 'listing continues in the next invocation', {
    pages, invocation: message.invocation, ...totals,
  });
  // The last listing of the run to finish starts the mirror's deletions (its guard first); a dry run deletes nothing.
  if (totals.done && ctx.settings.mirror && !plan && (await ctx.ledger.getRun(ctx.runId))?.listingDone) {
    await deletionStep(ctx, message, 0);
  }
  return totals;
}

export interface Routes {
  messages: (CopyBlobsMessage | LargeBlobMessage)[];
  units: NewUnit[];
  settled: { unit: string; outcomes: BlobOutcome[] }[];
  /** What became of each blob, and what deciding it cost in the destination (a dry run's plan is made of them). */
  decided: Decided[];
  requests: DecisionRequests;
  /** Mirror: the copies to delete (also among the units), and the objects of the destination seen. */
  deletions: NewUnit[];
  destinationSeen: number;
}

async function routePage(
  ctx: Ctx, blobs: ListedBlob[], afterKey: string | undefined, totals: ListingTotals, pageId: string, lastPage: boolean, _dryRun: boolean,
): Promise<Routes> {
  const { settings } = ctx;
  const requests: DecisionRequests = { list: 0, head: 0, manifestReads: 0 };
  const { decided, orphans, destinationSeen } = await decideAcross(ctx.sinks, settings, blobs, afterKey, requests, { mirror: settings.mirror, lastPage });
  const routes = await routeDecided(ctx, decided, totals, pageId, requests, destinationSeen);
  if (settings.mirror) {
    const deletions = await deletionsOf(ctx, orphans, pageId, requests);
    totals.toDelete = (totals.toDelete ?? 0) + deletions.reduce((n, u) => n + u.blobs.length, 0);
    totals.destinationSeen = (totals.destinationSeen ?? 0) + destinationSeen;
    routes.units.push(...deletions);
    routes.deletions = deletions;
  }
  return routes;
}

/**
 * Decided blobs as the run's units and the copy stages' messages: small blobs packed into messages, each
 * large blob its own; skipped and failed ones settled at once; archived ones under rehydrate asked for.
 * Shared by the listing and by blob events (lambdas/core/stages/events.ts).
 */
export async function routeDecided(
  ctx: Pick<Ctx, 'runId' | 'settings' | 'source' | 'tuning'>, decided: Decided[], totals: ListingTotals, pageId: string,
  requests: DecisionRequests = { list: 0, head: 0, manifestReads: 0 }, destinationSeen = 0,
): Promise<Routes> {
  const { settings } = ctx;
  const routes: Routes = { messages: [], units: [], settled: [], decided, requests, deletions: [], destinationSeen };
  const base = { v: MESSAGE_VERSION, runId: ctx.runId, run: settings };
  const small: BlobRef[] = [];
  const atListing: { blob: ListedBlob; outcome: BlobOutcome }[] = [];
  const rehydrating: { blob: ListedBlob; reason: string }[] = [];
  for (const { blob, decision, to } of decided) {
    switch (decision.kind) {
      case 'before-begindate':
        totals.beforeBeginDate++;
        break;
      case 'filtered':
        totals.filtered++;
        break;
      case 'unchanged':
        totals.unchanged++;
        break;
      case 'skip':
        atListing.push({ blob, outcome: { name: blob.name, status: 'skipped', reason: decision.reason } });
        break;
      case 'rehydrate':
        rehydrating.push({ blob, reason: decision.reason });
        break;
      case 'fail':
        atListing.push({ blob, outcome: { name: blob.name, status: 'failed', reason: decision.reason } });
        break;
      case 'copy': {
        totals.routed++;
        totals.routedBytes += blob.size;
        if (decision.path === 'multipart') {
          const unit = `${pageId}.L${routes.units.length}`;
          routes.units.push({ unit, blobs: [{ name: blob.name, size: blob.size }], large: true });
          routes.messages.push({ ...base, kind: 'large-blob', unit, blob: toBlobRef(blob, to), replans: 0 });
        } else {
          small.push(toBlobRef(blob, to));
        }
      }
    }
  }
  // Archived blobs under the rehydrate policy: their rehydration is asked for now, and they are copied by a later run.
  // A dry run asks for none (the plan counts them): it reports them as the run would.
  await mapLimit(rehydrating, 8, async ({ blob, reason }) => {
    if (settings.dryRun) {
      atListing.push({ blob, outcome: { name: blob.name, status: 'skipped', reason } });
      return;
    }
    try {
      await ctx.source.rehydrate(blob.name);
      atListing.push({ blob, outcome: { name: blob.name, status: 'skipped', reason } });
    } catch (error) {
      if (!(error instanceof BlobFailure)) throw error;
      atListing.push({ blob, outcome: { name: blob.name, status: 'failed', reason: error.message } });
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

function toBlobRef(blob: ListedBlob, to: number[] | undefined): BlobRef {
  const { name, etag, size, lastModified, contentMd5, tags, accessTier } = blob;
  return { name, etag, size, lastModified, contentMd5, tags, tier: accessTier, ...(to ? { to } : {}) };
}

