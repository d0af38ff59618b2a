/**
 * Stage 7 (events): blob events from Azure Event Grid, routed as the listing routes
 * blobs. A created blob is looked up in Azure when its event is handled (so an old
 * or duplicated event copies the blob as it is now, never an older version), decided
 * against the destination exactly as a listed blob is (filters, begindate, key
 * mapping, incremental comparison), and sent to the copy stages by size. A deleted
 * blob's copy is deleted only in mirror mode, and only under the mirror's rules.
 *
 * Event-driven blobs are accounted for in a rolling run, one per hour
 * (`20261201T080000Z-events`): each blob version is counted once in it however
 * often its events arrive (a claim per version, as a listing step is claimed), and
 * the run ends, with its report, once its hour is over and every blob has an outcome.
 */
import { createHash } from 'node:crypto';
import { mapLimit } from '../batching';
import { SwitchedOffError } from '../config';
import { contextFor, type ContextOf, type Runtime } from '../context';
import type { BlobEvent } from '../events/parse';
import type { EventsOutcome } from '../events/webhook';
import { destinationsOf, forContainer, keyIn } from '../destinations';
import { destinationKey } from '../keys';
import { MESSAGE_VERSION, type ListPageMessage, type RunSettings } from '../messages';
import { decideAcross, type Decided, type DestinationReader } from '../routing';
import { MAX_STEPS_DONE_WITH_COUNT, rollingPipeline, rollingRunId, type ListingTotals } from '../run-ledger';
import { routeDecided } from './find-blobs';
import { deleteUnit, deletionsOf } from './mirror';
import { runSettingsFrom, writeRunPointer } from './qualify';
import type { STAGE_SPECS } from './specs';

type Ctx = ContextOf<(typeof STAGE_SPECS)['events']>;

const zero = (): EventsOutcome => ({ copying: 0, unchanged: 0, settled: 0, notTaken: 0, deleted: 0, deletionsIgnored: 0, duplicates: 0, held: 0 });

/** Of several events for one blob in a batch, the latest (by sequencer; else the last delivered) speaks for it. */
export function latestPerBlob(events: BlobEvent[]): BlobEvent[] {
  const latest = new Map<string, BlobEvent>();
  for (const event of events) {
    const id = `${event.container}\u0000${event.name}`;
    const seen = latest.get(id);
    if (!seen || !seen.sequencer || !event.sequencer || event.sequencer >= seen.sequencer) latest.set(id, event);
  }
  return [...latest.values()];
}

export async function applyBlobEvents(runtime: Runtime, events: BlobEvent[], now = new Date()): Promise<EventsOutcome> {
  const outcome = zero();
  if (events.length === 0) return outcome;
  let config;
  try {
    config = await runtime.loadConfig();
  } catch (error) {
    if (error instanceof SwitchedOffError) return { ...outcome, switchedOff: true };
    throw error;
  }
  if (!config.isActive) return { ...outcome, switchedOff: true };
  const { settings, selection } = runSettingsFrom(runtime, config);
  // A dry run plans a listing; an event copies nothing then (the scheduled run's plan counts it).
  if (settings.dryRun) return { ...outcome, dryRun: true };
  const containers = selection.containers ?? [config.source.container];
  const byContainer = containers === 'all' || containers.length > 1;
  const runId = rollingRunId(now);
  const { previous, created } = await runtime.ledger.openRolling({
    runId, pipeline: rollingPipeline(runtime.pipeline), settings, stallAfterSeconds: runtime.stallAfterSeconds, byContainer,
  });
  // Where `azs3copy status --bucket` finds the run's state, as for a run qualify starts.
  if (created) await writeRunPointer(runtime, runId, settings);
  // The previous hour's run takes no more blobs: it ends once each of its blobs has an outcome.
  if (previous) await runtime.ledger.closeRolling(previous);
  outcome.runId = runId;
  const log = runtime.log.child({ runId, stage: 'events' });

  // A container's context, with its own key prefix when the run copies several.
  const contextOf = (container: string): Ctx => {
    const run: RunSettings = forContainer(settings, container, byContainer);
    const message: ListPageMessage = { v: MESSAGE_VERSION, kind: 'list-page', runId, run, invocation: 0 };
    return contextFor(runtime, message, 'events') as unknown as Ctx;
  };

  // By container: each blob is looked up and claimed on its own, then a container's new blob versions are
  // routed together (small blobs share copy messages, as a listing page's do).
  const byContainerName = new Map<string, BlobEvent[]>();
  for (const event of latestPerBlob(events)) {
    const taken = containers === 'all' ? !event.container.startsWith('$') : containers.includes(event.container);
    if (!taken || (event.account && event.account !== settings.account)) {
      outcome.notTaken++;
      continue;
    }
    byContainerName.set(event.container, [...(byContainerName.get(event.container) ?? []), event]);
  }
  await mapLimit([...byContainerName.entries()], 4, async ([container, group]) => {
    const ctx = contextOf(container);
    const taken: Taken[] = [];
    try {
      const claimed = await mapLimit(group.filter((e) => e.kind === 'created'), 16, (event) => claimCreated(ctx, event, outcome, taken));
      await routeCreated(ctx, claimed.filter((c): c is Claimed => c !== undefined), outcome, taken);
      await mapLimit(group.filter((e) => e.kind === 'deleted'), 16, (event) => deleted(ctx, event, outcome, taken));
    } catch (error) {
      // The delivery failed (Event Grid delivers it again): the claims it took go back, or the redelivery would
      // find them held, answer "duplicates", and Event Grid would not deliver the events again.
      await mapLimit(taken, 16, (t) => ctx.ledger.releaseListing(ctx.runId, t.step, 0, t.claim).catch(() => undefined));
      throw error;
    }
  });
  log.info('blob events handled', { events: events.length, ...outcome });
  return outcome;
}

/** A step key for one blob version (or one deletion), as a listing step is keyed: claimed once per run. */
function stepOf(kind: string, ...parts: string[]): string {
  return `${kind}${createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 24)}`;
}

const noTotals = (): ListingTotals => ({ listed: 0, beforeBeginDate: 0, filtered: 0, unchanged: 0, routed: 0, routedBytes: 0, done: false });

interface Taken {
  step: string;
  claim: number;
}

interface Claimed extends Taken {
  decided: Decided;
}

/** Look a created blob up as it is now, claim its version in the run, and decide it against the destination. */
async function claimCreated(ctx: Ctx, event: BlobEvent, outcome: EventsOutcome, taken: Taken[]): Promise<Claimed | undefined> {
  const blob = await ctx.source.blob(event.name);
  if (!blob) {
    // Gone since (its deletion's event follows), or not committed yet: nothing to copy now.
    outcome.notTaken++;
    return undefined;
  }
  const step = stepOf('ev', ctx.settings.container, blob.name, blob.etag);
  const claim = await claimOrCount(ctx, step, outcome);
  if (claim === undefined) return undefined;
  taken.push({ step, claim });
  const sinks = destinationsOf(ctx.settings).map((_, d) => oneKey(ctx.sinks[d], keyIn(ctx.settings, d, blob.name)));
  const { decided } = await decideAcross(sinks, ctx.settings, [blob], undefined);
  return { step, claim, decided: decided[0] };
}

/**
 * Route the claimed blob versions together, then count them once, together: under a step of the batch's own (one
 * update of the run's counters, not one per blob: a hundred writers of one item mostly wait for each other), in the
 * same write that marks each blob version's step done. Counted and done at once, a crash cannot leave a version
 * counted yet claimable again, to be counted (and copied) a second time by a redelivery that groups it with other
 * events. One write holds at most MAX_STEPS_DONE_WITH_COUNT versions, so a large batch is routed in slices.
 */
async function routeCreated(ctx: Ctx, claimed: Claimed[], outcome: EventsOutcome, taken: Taken[]): Promise<void> {
  for (let at = 0; at < claimed.length; at += MAX_STEPS_DONE_WITH_COUNT) {
    await routeSlice(ctx, claimed.slice(at, at + MAX_STEPS_DONE_WITH_COUNT), taken);
  }
  for (const { decided } of claimed) {
    const kind = decided.decision.kind;
    if (kind === 'copy') outcome.copying++;
    else if (kind === 'unchanged') outcome.unchanged++;
    else if (kind === 'filtered' || kind === 'before-begindate') outcome.notTaken++;
    else outcome.settled++;
  }
}

async function routeSlice(ctx: Ctx, claimed: Claimed[], taken: Taken[]): Promise<void> {
  const page = stepOf('evb', ...claimed.map((c) => c.step));
  // Counted as the listing counts what it routes; each claimed version is one blob listed.
  const totals = { ...noTotals(), listed: claimed.length };
  const routes = await routeDecided(ctx, claimed.map((c) => c.decided), totals, page);
  // Units exist before their messages go out, so an outcome always finds its unit.
  await ctx.ledger.addUnits(ctx.runId, routes.units);
  for (const settled of routes.settled) await ctx.ledger.settle(ctx.runId, settled.unit, settled.outcomes);
  await ctx.publish(routes.messages);
  const versions = claimed.map((c) => ({ container: c.step, invocation: 0, claimVersion: c.claim }));
  // The blob versions' claims are this delivery's alone, so the batch's step is too, but for two cases. Done: a
  // release before this one counted the batch and died before marking the versions done. Held: a delivery of these
  // same versions died after claiming the batch, whose claim (taken after the versions') has not lapsed yet.
  const batch = await ctx.ledger.claimStep(ctx.runId, page, 0, ctx.remainingMs() + 60_000);
  if ('claim' in batch) {
    taken.push({ step: page, claim: batch.claim });
    if (await ctx.ledger.listed(ctx.runId, page, 0, batch.claim, totals, versions)) return;
  } else if (batch.refused === 'held') {
    // Marked done now, the versions would never be counted: this delivery fails (its claims given back), and Event
    // Grid's next try, once the batch's claim has lapsed, counts them.
    throw new Error(`the count of ${claimed.length} blob versions is held by a delivery that stopped, until ${new Date(batch.until).toISOString()}: deliver the events again`);
  }
  // Not counted here (the hour's run has ended, or the batch was counted before): the versions are done all the same.
  await ctx.ledger.stepsDone(ctx.runId, versions);
}

/**
 * Claim a blob version's (or a deletion's) step; when it is refused, count why. Done: a duplicate, nothing to do.
 * Held by another delivery: that one may still be at work (Event Grid sends a batch again when its answer takes over
 * 30 s) or may have died holding it (a crash, the function's timeout). Either way this delivery is answered with a
 * retryable failure (webhook.ts), so Event Grid sends the events again later, when the step is done or its lease has
 * run out and the redelivery takes it over: answered "duplicates" with a 200 instead, a died holder's events would
 * end their retries with nothing copied.
 */
async function claimOrCount(ctx: Ctx, step: string, outcome: EventsOutcome): Promise<number | undefined> {
  const taken = await ctx.ledger.claimStep(ctx.runId, step, 0, ctx.remainingMs() + 60_000);
  if ('claim' in taken) return taken.claim;
  if (taken.refused === 'done') outcome.duplicates++;
  else outcome.held++;
  return undefined;
}

/** A destination as one key: a HEAD, not a listing from the start of the prefix. */
function oneKey(sink: Ctx['sink'], key: string): DestinationReader {
  return {
    head: (k) => sink.head(k),
    getJson: (k) => sink.getJson(k),
    list: async () => {
      const head = await sink.head(key);
      return { objects: head ? [{ key: head.key, size: head.size, lastModified: head.lastModified }] : [], truncated: false };
    },
  };
}

async function deleted(ctx: Ctx, event: BlobEvent, outcome: EventsOutcome, taken: Taken[]): Promise<void> {
  if (!ctx.settings.mirror) {
    outcome.deletionsIgnored++;
    return;
  }
  const key = destinationKey(ctx.settings.prefix, event.name);
  const head = await ctx.sink.head(key);
  if (!head) {
    outcome.deletionsIgnored++;
    return;
  }
  const step = stepOf('evd', ctx.settings.container, event.name, event.sequencer ?? event.id);
  const claim = await claimOrCount(ctx, step, outcome);
  if (claim === undefined) return;
  taken.push({ step, claim });
  // The mirror's own rules: a copy azs3copy wrote, in the run's scope, whose blob the source says is gone.
  const units = await deletionsOf(ctx, [{ key, size: head.size, lastModified: head.lastModified }], step);
  const totals = noTotals();
  totals.toDelete = units.reduce((n, u) => n + u.blobs.length, 0);
  await ctx.ledger.addUnits(ctx.runId, units);
  await ctx.ledger.listed(ctx.runId, step, 0, claim, totals);
  if (units.length === 0) {
    outcome.deletionsIgnored++;
    return;
  }
  for (const unit of units) outcome.deleted += await deleteUnit(ctx, unit.unit, unit.blobs.map((b) => b.name));
}
