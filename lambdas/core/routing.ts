/**
 * What becomes of each listed blob, decided the same way by a run (find-blobs) and
 * by a plan (`azs3copy plan`, a dry run): before begindate, left out by a filter,
 * skipped (archived, a directory marker), failed before a byte moves (a name or a
 * size S3 cannot take), unchanged (the destination holds this version), or to copy,
 * in one PUT or in parts. It reads the destination (a listing per page, a HEAD
 * where the listing cannot tell) and never writes.
 */
import { isCopyOf } from './attributes';
import { afterKeyIn, destinationName, destinationsOf, settingsFor } from './destinations';
import { mapLimit } from './batching';
import { compileFilters } from './filters';
import { freshness } from './incremental';
import { STATE_PREFIX, compareKeys, destinationKey, keyProblem } from './keys';
import type { RunSettings } from './messages';
import { sizeProblem } from './plan';
import type { ListedBlob, ListedObject, ObjectReader, StateObjects } from './stores/types';
import { readManifest } from './uploads';

export type Decision =
  | { kind: 'before-begindate' }
  | { kind: 'filtered' }
  | { kind: 'skip'; reason: string }
  /** Archived, under the rehydrate policy, and not rehydrating yet: ask for it (a run does; a plan only counts it). */
  | { kind: 'rehydrate'; reason: string }
  | { kind: 'fail'; reason: string }
  | { kind: 'unchanged' }
  | { kind: 'copy'; path: 'single' | 'multipart' };

export interface Decided {
  blob: ListedBlob;
  decision: Decision;
  /** A copy needed in only some of the run's destinations (by place); absent, all of them. */
  to?: number[];
}

/** What the decisions cost in the destination: requests a plan predicts from. */
export interface DecisionRequests {
  list: number;
  head: number;
  manifestReads: number;
  /** Mirror: the source asked whether a copy's blob is gone (Get Blob Properties). */
  sourceProperties?: number;
}

export type DestinationReader = Pick<ObjectReader, 'list' | 'head'> & Pick<StateObjects, 'getJson'>;

const S3_LIST_PAGE = 1000;

/** Why a listed blob is not copied at all (skipped or failed), or undefined when it is a candidate. */
function verdictAtListing(blob: ListedBlob, settings: RunSettings): Decision | undefined {
  if (blob.isDirectoryMarker) return { kind: 'skip', reason: 'a directory marker (hdi_isfolder=true), not data' };
  if (blob.isArchived && settings.archive === 'rehydrate') {
    if (blob.archiveStatus?.startsWith('rehydrate-pending')) {
      return { kind: 'skip', reason: `rehydrating: its rehydration is under way (${blob.archiveStatus}); a later run copies it once it is readable` };
    }
    return { kind: 'rehydrate', reason: 'rehydrating: its rehydration to the Cool tier was started (standard priority, up to 15 hours); a later run copies it once it is readable' };
  }
  if (blob.isArchived) return { kind: 'skip', reason: 'archived: the blob is in the Archive tier; rehydrate it to Hot or Cool to copy it (or run with --archive rehydrate)' };
  const problem = keyProblem(settings.prefix, blob.name) ?? sizeProblem(blob.size, settings.maxPartBytes);
  return problem ? { kind: 'fail', reason: problem } : undefined;
}

export async function decidePage(
  sink: DestinationReader,
  settings: RunSettings,
  blobs: ListedBlob[],
  afterKey: string | undefined,
  requests: DecisionRequests = { list: 0, head: 0, manifestReads: 0 },
): Promise<Decided[]> {
  return (await decidePageAndDestination(sink, settings, blobs, afterKey, requests)).decided;
}

export interface PageAndDestination {
  decided: Decided[];
  /** With mirror: objects of the destination in this page's key range that no listed blob accounts for. */
  orphans: ListedObject[];
  /** Objects of the destination seen in the page's range. */
  destinationSeen: number;
}

/**
 * Decide a page, and with `mirror` also look at the whole of the destination's key range the page covers
 * (to the end of the prefix after the last page): what is there that no blob of the page accounts for.
 */
export async function decidePageAndDestination(
  sink: DestinationReader,
  settings: RunSettings,
  blobs: ListedBlob[],
  afterKey: string | undefined,
  requests: DecisionRequests = { list: 0, head: 0, manifestReads: 0 },
  options: { mirror?: boolean; lastPage?: boolean } = {},
): Promise<PageAndDestination> {
  const begin = settings.beginDate ? Date.parse(settings.beginDate) : undefined;
  const filters = compileFilters(settings.filters);
  const decided: Decided[] = [];
  const candidates: number[] = [];
  for (const blob of blobs) {
    let decision: Decision | undefined;
    if (begin !== undefined && Date.parse(blob.lastModified) <= begin) decision = { kind: 'before-begindate' };
    else if (!filters.takes(blob.name, blob.size)) decision = { kind: 'filtered' };
    else decision = verdictAtListing(blob, settings);
    if (!decision) candidates.push(decided.length);
    decided.push({ blob, decision: decision ?? { kind: 'unchanged' } });
  }

  const held = options.mirror
    ? await destinationIndex(sink, settings.prefix, blobs, afterKey, requests, options.lastPage)
    : await destinationIndex(sink, settings.prefix, candidates.map((i) => decided[i].blob), afterKey, requests);
  await mapLimit(candidates, 16, async (i) => {
    const { blob } = decided[i];
    const key = destinationKey(settings.prefix, blob.name);
    let verdict = freshness(blob, held.get(key));
    if (verdict === 'verify') {
      requests.head++;
      const head = await sink.head(key);
      verdict = head && isCopyOf(head.metadata, blob) ? 'unchanged' : 'changed';
    }
    // A large copy is there before it is checked against the blob's Content-MD5; while its manifest
    // stands, it is not a finished copy (the initializer carries the check on).
    if (verdict === 'unchanged' && blob.contentMd5 && blob.size >= settings.largeBlobBytes) {
      requests.manifestReads++;
      const manifest = await readManifest(sink, key);
      if (manifest?.blob.etag === blob.etag) verdict = 'changed';
    }
    decided[i].decision = verdict === 'unchanged' ? { kind: 'unchanged' } : { kind: 'copy', path: blob.size >= settings.largeBlobBytes ? 'multipart' : 'single' };
  });
  const orphans: ListedObject[] = [];
  if (options.mirror) {
    const accounted = new Set(blobs.map((b) => destinationKey(settings.prefix, b.name)));
    for (const object of held.values()) {
      if (!accounted.has(object.key) && !object.key.startsWith(STATE_PREFIX)) orphans.push(object);
    }
  }
  return { decided, orphans, destinationSeen: held.size };
}

/**
 * Decide a page against each of the run's destinations (destinations.ts): a blob is copied when any destination
 * lacks its version, to those that do; unchanged when every one holds it. What does not depend on the
 * destination (begindate, filters, archived, a size S3 cannot take) is decided once, by the first.
 */
export async function decideAcross(
  sinks: DestinationReader[],
  settings: RunSettings,
  blobs: ListedBlob[],
  afterKey: string | undefined,
  requests: DecisionRequests = { list: 0, head: 0, manifestReads: 0 },
  options: { mirror?: boolean; lastPage?: boolean } = {},
): Promise<PageAndDestination> {
  const first = await decidePageAndDestination(sinks[0], settings, blobs, afterKey, requests, options);
  if (sinks.length === 1) return first;
  const others = await Promise.all(
    sinks.slice(1).map(async (sink, k) => (await decidePageAndDestination(sink, settingsFor(settings, k + 1), blobs, afterKeyIn(settings, k + 1, afterKey), requests)).decided),
  );
  const all = destinationsOf(settings);
  const decided = first.decided.map((entry, i): Decided => {
    if (entry.decision.kind !== 'unchanged' && entry.decision.kind !== 'copy') return entry;
    const decisions = [entry.decision, ...others.map((o) => o[i].decision)];
    // A key too long under a longer prefix: the blob fails, naming the destination that cannot take it.
    const refused = decisions.findIndex((d) => d.kind === 'fail');
    if (refused > 0) {
      const reason = (decisions[refused] as { reason: string }).reason;
      return { blob: entry.blob, decision: { kind: 'fail', reason: `${destinationName(all[refused])}: ${reason}` } };
    }
    const to = decisions.flatMap((d, n) => (d.kind === 'copy' ? [n] : []));
    if (to.length === 0) return entry;
    const path = entry.blob.size >= settings.largeBlobBytes ? 'multipart' : 'single';
    return { blob: entry.blob, decision: { kind: 'copy', path }, to: to.length === all.length ? undefined : to };
  });
  return { ...first, decided };
}

/** The destination key of the last blob of a page (in S3's order), where the next page's destination listing resumes. */
export function lastKey(prefix: string, blobs: ListedBlob[]): string | undefined {
  let last: string | undefined;
  for (const b of blobs) {
    const key = destinationKey(prefix, b.name);
    if (last === undefined || compareKeys(key, last) > 0) last = key;
  }
  return last;
}

/**
 * What the destination holds for this page's keys: list the destination from where
 * the previous page ended to this page's last key. Keys this misses (where Azure's
 * order and S3's byte order disagree) are simply copied again: safe, not lost.
 */
async function destinationIndex(
  sink: DestinationReader, prefix: string, blobs: ListedBlob[], afterKey: string | undefined, requests: DecisionRequests, toTheEnd = false,
) {
  const index = new Map<string, ListedObject>();
  if (blobs.length === 0 && !toTheEnd) return index;
  const last = toTheEnd ? undefined : lastKey(prefix, blobs)!;
  let startAfter = afterKey;
  for (;;) {
    requests.list++;
    const { objects, truncated } = await sink.list(prefix, startAfter, S3_LIST_PAGE);
    for (const object of objects) {
      if (last !== undefined && compareKeys(object.key, last) > 0) return index;
      index.set(object.key, object);
    }
    if (!truncated || objects.length === 0) return index;
    startAfter = objects[objects.length - 1].key;
  }
}
