/**
 * Mirror: the destination follows deletions at the source. Only copies azs3copy
 * itself wrote (they carry its source metadata) under the run's own prefix, whose
 * blob is gone from the source (asked of the source, not inferred from a listing's
 * order), and that no filter leaves out of the run's scope, are deleted. The
 * listing finds them page by page and records them in the run state; once every
 * container is listed, one step checks the guard (`maxDeletes`, by default 1,000 or
 * 1% of the destination, whichever is larger) and then deletes, continuing itself
 * while there is more than one invocation's worth. A run that would delete more
 * than the guard deletes nothing, and its report says so in one line.
 */
import { SOURCE_META } from '../attributes';
import { mapLimit } from '../batching';
import type { ContextOf } from '../context';
import { SourceChangedError } from '../errors';
import { compileFilters } from '../filters';
import { MESSAGE_VERSION, type ListPageMessage } from '../messages';
import type { DecisionRequests } from '../routing';
import type { NewUnit } from '../run-ledger';
import { deleteLimit } from '../selection';
import type { ListedObject } from '../stores/types';
import type { STAGE_SPECS } from './specs';

type Ctx = ContextOf<(typeof STAGE_SPECS)['find-blobs']>;

const DELETES_PER_UNIT = 1000;
const DELETE_RESERVE_MS = 10_000;
/** The mirror's steps are claimed like a listing's, under a name no Azure container can have. */
const MIRROR_STEP = '@mirror';

/** Of the objects no blob of a page accounts for, the copies whose blob is gone: as units of deletions. */
export async function deletionsOf(ctx: Pick<Ctx, 'settings' | 'sink' | 'source'>, orphans: ListedObject[], pageId: string, requests?: DecisionRequests): Promise<NewUnit[]> {
  const filters = compileFilters(ctx.settings.filters);
  const prefix = ctx.settings.prefix;
  const found = await mapLimit(orphans, 16, async (object) => {
    const name = object.key.slice(prefix.length);
    // Out of the run's scope (a filter leaves it out): not the run's to delete, whatever its blob.
    if (!filters.takes(name, object.size)) return undefined;
    if (requests) requests.head++;
    const head = await ctx.sink.head(object.key);
    if (!head || head.metadata[SOURCE_META.etag] === undefined) return undefined; // not a copy azs3copy wrote
    if (requests) requests.sourceProperties = (requests.sourceProperties ?? 0) + 1;
    try {
      await ctx.source.properties(name);
      return undefined; // the blob is there (listed elsewhere in Azure's order): keep its copy
    } catch (error) {
      if (error instanceof SourceChangedError) return object;
      throw error;
    }
  });
  const gone = found.filter((o): o is ListedObject => o !== undefined);
  const units: NewUnit[] = [];
  for (let n = 0; n * DELETES_PER_UNIT < gone.length; n++) {
    const chunk = gone.slice(n * DELETES_PER_UNIT, (n + 1) * DELETES_PER_UNIT);
    units.push({ unit: `${pageId}.d${n}`, blobs: chunk.map((o) => ({ name: o.key, size: o.size })), deletes: true });
  }
  return units;
}

/**
 * Once every container is listed: check the guard, then delete what the listings found, a unit at a time,
 * handing on to the next invocation when time runs short.
 */
export async function deletionStep(ctx: Ctx, message: ListPageMessage, step: number, after?: string): Promise<void> {
  // A dry run plans its deletions and makes none, whatever message asks.
  if (ctx.settings.dryRun) return;
  const claim = await ctx.ledger.claimListing(ctx.runId, MIRROR_STEP, step, ctx.remainingMs() + 60_000);
  if (claim === undefined) return;
  try {
    await deleteFrom(ctx, message, step, after);
  } catch (error) {
    // Failed: the claim goes back, so the retry deletes what is left rather than taking the step for another's.
    await ctx.ledger.releaseListing(ctx.runId, MIRROR_STEP, step, claim).catch(() => undefined);
    throw error;
  }
}

async function deleteFrom(ctx: Ctx, message: ListPageMessage, step: number, after: string | undefined): Promise<void> {
  const run = await ctx.ledger.getRun(ctx.runId);
  if (!run || (run.deletesPlanned ?? 0) === 0) return;
  if (step === 0) {
    const limit = deleteLimit(ctx.settings.maxDeletes, run.destinationSeen ?? 0);
    if (run.deletesPlanned > limit) {
      const reason = `mirror would delete ${run.deletesPlanned} objects, more than the guard allows (${limit}): nothing was deleted; ` +
        'check the source, then raise the guard (--max-deletes, "maxdeletes") if these deletions are meant';
      ctx.log.error('mirror refused', { reason });
      await ctx.ledger.refuseDeletions(ctx.runId, reason);
      return;
    }
  }
  let cursor = after;
  for (;;) {
    const page = await ctx.ledger.unitsPage(ctx.runId, cursor, { deletes: true });
    for (const unit of page.units) {
      if (!unit.status.includes('p')) continue;
      if (ctx.remainingMs() < DELETE_RESERVE_MS) {
        await ctx.publish([{ ...message, v: MESSAGE_VERSION, deleting: { step: step + 1, after: cursor } } satisfies ListPageMessage]);
        return;
      }
      const keys = unit.names.filter((_, i) => unit.status[i] === 'p');
      const deleted = await deleteUnit(ctx, unit.unit, keys);
      ctx.log.info('mirror deleted copies whose blob is gone', { deleted, refused: keys.length - deleted });
      cursor = `delete.${unit.unit}`;
    }
    if (!page.next) return;
    cursor = page.next;
  }
}

/** Delete a deletion unit's keys in one request and record each outcome (deleted, or why not); how many went. */
export async function deleteUnit(ctx: Pick<Ctx, 'runId' | 'sink' | 'ledger'>, unit: string, keys: string[]): Promise<number> {
  const refused = new Map((await ctx.sink.deleteMany(keys)).map((r) => [r.key, r.reason]));
  await ctx.ledger.settle(ctx.runId, unit, keys.map((key) => {
    const reason = refused.get(key);
    return reason ? { name: key, status: 'failed' as const, reason: `not deleted: ${reason}` } : { name: key, status: 'copied' as const };
  }), { deletes: true });
  return keys.length - refused.size;
}
