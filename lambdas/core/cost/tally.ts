/**
 * What a plan knows after listing and comparing: per listing page, the blobs
 * that would be copied (by path, size, tier, storage class), skipped, failed or
 * left unchanged, the requests the comparison itself made, and the messages the
 * run would send (packed exactly as find-blobs packs them). Tallies add up, page
 * by page and listing step by listing step; predictions (predict.ts) are made
 * from the sum.
 */
import type { RunSettings, StageMessage } from '../messages';
import { partCount, partSizeFor } from '../plan';
import { MAX_BUFFERED_BODY_BYTES, rangeReadsFor } from '../streams';
import { DEFAULT_TUNING } from '../context';
import type { Decided, DecisionRequests } from '../routing';
import { storageClassOf } from '../selection';

/**
 * One blob in a plan's lists: name, size, and what becomes of it (c: one PUT, m: multipart, s: skipped, f: failed;
 * d: with mirror, a copy whose blob is gone, deleted: its name is the key).
 */
export interface PlanEntry {
  n: string;
  s: number;
  k: 'c' | 'm' | 's' | 'f' | 'd';
  r?: string;
}

export interface MessageTally {
  count: number;
  bytes: number;
  /** SNS/SQS bill a message per 64 KB chunk. */
  chunks: number;
}

export interface PlanTally {
  /**
   * Several destinations: the writes beyond one per copy (a blob bound for three destinations is read once and
   * written three times): small blobs and their bytes, large blobs (an upload each) and their parts and bytes.
   */
  moreWrites?: { small: number; smallBytes: number; large: number; largeBytes: number; parts: number };
  /** Listing pages (one List Blobs each). */
  pages: number;
  listed: number;
  /** What comparing with the destination took: ListObjectsV2 pages, HeadObjects, manifest reads. */
  destLists: number;
  heads: number;
  manifestReads: number;
  /** Mirror: the source asked whether a copy's blob is gone (Get Blob Properties). */
  sourceProperties: number;
  /** Mirror: copies whose blob is gone, in how many units (one DeleteObjects each), and the destination's objects seen (the guard's base). */
  deletes: number;
  deleteBytes: number;
  deleteUnits: number;
  destinationSeen: number;
  /** Archived blobs whose rehydration a run would start (Set Blob Tier), and their bytes (Archive retrieval). */
  rehydrations: number;
  rehydrateBytes: number;
  small: number;
  smallBytes: number;
  large: number;
  largeBytes: number;
  /** Large blobs with a Content-MD5 (their copy is read back once to check it), and their bytes. */
  largeWithMd5: number;
  largeMd5Bytes: number;
  parts: number;
  /** Azure reads of the parts (each part read as a few ranges at once: rangeReadsFor). Absent in a tally of an older release: one per part. */
  partReads?: number;
  /** ListParts pages the recombinator needs (one per 1,000 parts of each upload). */
  listPartsPages: number;
  /** The largest part of any upload (the last part in flight sets the tail of a run). */
  maxPartBytes: number;
  /** Units settled at the listing (skipped and failed blobs, 100 to a unit). */
  settledUnits: number;
  skipped: number;
  failed: number;
  unchanged: number;
  unchangedBytes: number;
  beforeBeginDate: number;
  filtered: number;
  /** Sum of the copies' name bytes (the size of the run state's unit items). */
  nameBytes: number;
  /** Messages the run sends, by kind; publishBatches and their 64 KB chunks as SNS bills them. */
  messages: Record<string, MessageTally>;
  publishBatches: number;
  publishChunks: number;
  /** Bytes and Get Blob requests of the copies by access tier. */
  readsByTier: Record<string, number>;
  bytesByTier: Record<string, number>;
  /** Data write requests into each storage class (a class is set only when the run names one). */
  writesByClass: Record<string, number>;
  /** Per small-blob message, its blobs and bytes (kept summed: the time model needs the spread). */
  smallMessageSeconds: number;
}

export function emptyTally(): PlanTally {
  return {
    pages: 0, listed: 0, destLists: 0, heads: 0, manifestReads: 0, sourceProperties: 0, deletes: 0, deleteBytes: 0, deleteUnits: 0,
    destinationSeen: 0, rehydrations: 0, rehydrateBytes: 0, small: 0, smallBytes: 0, large: 0, largeBytes: 0, largeWithMd5: 0,
    largeMd5Bytes: 0, parts: 0, partReads: 0, listPartsPages: 0, maxPartBytes: 0, settledUnits: 0, skipped: 0, failed: 0, unchanged: 0, unchangedBytes: 0,
    beforeBeginDate: 0, filtered: 0, nameBytes: 0, messages: {}, publishBatches: 0, publishChunks: 0, readsByTier: {}, bytesByTier: {},
    writesByClass: {}, smallMessageSeconds: 0,
  };
}

/** Add `more` into `into` (numbers summed, maps merged, the largest part kept). */
export function addTally(into: PlanTally, more: Partial<PlanTally>): PlanTally {
  for (const [key, value] of Object.entries(more)) {
    const k = key as keyof PlanTally;
    if (typeof value === 'number') {
      (into as unknown as Record<string, number>)[k] = k === 'maxPartBytes' ? Math.max(into.maxPartBytes, value) : ((into[k] as number) ?? 0) + value;
    } else if (value && typeof value === 'object') {
      const target = ((into as unknown as Record<string, Record<string, unknown>>)[k] ??= {});
      for (const [name, v] of Object.entries(value)) {
        if (typeof v === 'number') target[name] = ((target[name] as number) ?? 0) + v;
        else {
          const t = ((target[name] as MessageTally) ??= { count: 0, bytes: 0, chunks: 0 });
          const m = v as MessageTally;
          t.count += m.count;
          t.bytes += m.bytes;
          t.chunks += m.chunks;
        }
      }
    }
  }
  return into;
}

const CHUNK = 64 * 1024;
/** Bytes a copy-part message adds to its blob's large-blob message (key, upload id, part count and size, the range). */
export const PART_MESSAGE_EXTRA_BYTES = 420;
/** Per-blob time of a small copy (one read, one PUT, across clouds) and one stream's rate: see predict.ts. */
export const SMALL_BLOB_SECONDS = 0.12;
export const STREAM_BYTES_PER_SECOND = 40 * 1024 * 1024;

export interface PageRoutes {
  decided: Decided[];
  requests: DecisionRequests;
  /** The messages find-blobs builds for the page (copy-blobs, large-blob), packed as it packs them. */
  messages: StageMessage[];
  /** Units settled at the listing (skipped and failed blobs). */
  settledUnits: number;
  /** Mirror: the page's copies whose blob is gone, as units of deletions, and the destination's objects it saw. */
  deletions?: { blobs: { name: string; size: number }[] }[];
  destinationSeen?: number;
}

/** The tally of one listing page, and its entries for the plan's lists. */
export function tallyPage(page: PageRoutes, settings: RunSettings, downloadConcurrency: number, rangeReadsPerPart = DEFAULT_TUNING.rangeReadsPerPart): { tally: PlanTally; entries: PlanEntry[] } {
  const t = emptyTally();
  const entries: PlanEntry[] = [];
  t.pages = 1;
  t.listed = page.decided.length;
  t.destLists = page.requests.list;
  t.heads = page.requests.head;
  t.manifestReads = page.requests.manifestReads;
  t.sourceProperties = page.requests.sourceProperties ?? 0;
  t.settledUnits = page.settledUnits;
  t.destinationSeen = page.destinationSeen ?? 0;
  for (const unit of page.deletions ?? []) {
    t.deleteUnits++;
    for (const { name, size } of unit.blobs) {
      t.deletes++;
      t.deleteBytes += size;
      entries.push({ n: name, s: size, k: 'd' });
    }
  }
  const tier = (accessTier: string | undefined) => accessTier ?? 'Hot';
  const write = (accessTier: string | undefined, n: number) => {
    const storageClass = storageClassOf(settings.writing, accessTier);
    if (storageClass) t.writesByClass[storageClass] = (t.writesByClass[storageClass] ?? 0) + n;
  };
  const destinations = 1 + (settings.also?.length ?? 0);
  const more = (t.moreWrites = { small: 0, smallBytes: 0, large: 0, largeBytes: 0, parts: 0 });
  for (const { blob, decision, to } of page.decided) {
    const extra = (to?.length ?? destinations) - 1;
    switch (decision.kind) {
      case 'before-begindate':
        t.beforeBeginDate++;
        break;
      case 'filtered':
        t.filtered++;
        break;
      case 'unchanged':
        t.unchanged++;
        t.unchangedBytes += blob.size;
        break;
      case 'skip':
        t.skipped++;
        entries.push({ n: blob.name, s: blob.size, k: 's', r: decision.reason });
        break;
      case 'rehydrate':
        // Skipped, as the run reports it, once its rehydration is asked for.
        t.skipped++;
        t.rehydrations++;
        t.rehydrateBytes += blob.size;
        entries.push({ n: blob.name, s: blob.size, k: 's', r: decision.reason });
        break;
      case 'fail':
        t.failed++;
        entries.push({ n: blob.name, s: blob.size, k: 'f', r: decision.reason });
        break;
      case 'copy': {
        entries.push({ n: blob.name, s: blob.size, k: decision.path === 'multipart' ? 'm' : 'c' });
        t.nameBytes += Buffer.byteLength(blob.name, 'utf8');
        const at = tier(blob.accessTier);
        t.bytesByTier[at] = (t.bytesByTier[at] ?? 0) + blob.size;
        if (decision.path === 'single') {
          t.small++;
          t.smallBytes += blob.size;
          t.readsByTier[at] = (t.readsByTier[at] ?? 0) + 1;
          write(blob.accessTier, 1 + extra);
          more.small += extra;
          more.smallBytes += extra * blob.size;
          break;
        }
        const partBytes = partSizeFor(blob.size, settings.partBytes, settings.maxPartBytes);
        const parts = partCount(blob.size, partBytes);
        t.large++;
        t.largeBytes += blob.size;
        t.parts += parts;
        const reads = (parts - 1) * readsOfPart(partBytes, rangeReadsPerPart) + readsOfPart(blob.size - (parts - 1) * partBytes, rangeReadsPerPart);
        t.partReads = (t.partReads ?? 0) + reads;
        t.listPartsPages += Math.max(1, Math.ceil(parts / 1000));
        t.maxPartBytes = Math.max(t.maxPartBytes, Math.min(partBytes, blob.size));
        t.readsByTier[at] = (t.readsByTier[at] ?? 0) + reads;
        write(blob.accessTier, (parts + 2) * (1 + extra));
        more.large += extra;
        more.largeBytes += extra * blob.size;
        more.parts += extra * parts;
        if (blob.contentMd5) {
          t.largeWithMd5++;
          t.largeMd5Bytes += blob.size;
        }
      }
    }
  }
  // The page's own messages, as find-blobs sends them (one publish: batches of 10 within 250 KB).
  const sizes = page.messages.map((m) => ({ kind: m.kind, bytes: Buffer.byteLength(JSON.stringify(m), 'utf8') }));
  const count = (kind: string, bytes: number, n = 1) => {
    const m = (t.messages[kind] ??= { count: 0, bytes: 0, chunks: 0 });
    m.count += n;
    m.bytes += bytes * n;
    m.chunks += Math.max(1, Math.ceil(bytes / CHUNK)) * n;
  };
  for (const s of sizes) count(s.kind, s.bytes);
  countBatches(t, sizes.map((s) => s.bytes));
  for (const m of page.messages) {
    if (m.kind === 'copy-blobs') {
      // One invocation's work: its blobs `downloadConcurrency` at a time, each a request pair and its bytes.
      const work = m.blobs.reduce((n, b) => n + SMALL_BLOB_SECONDS + b.size / STREAM_BYTES_PER_SECOND, 0);
      t.smallMessageSeconds += work / Math.min(downloadConcurrency, m.blobs.length);
    } else if (m.kind === 'large-blob') {
      // The initializer sends every part in one publish; each part's recombination ask is one message.
      const partBytes = Buffer.byteLength(JSON.stringify(m), 'utf8') + PART_MESSAGE_EXTRA_BYTES;
      const parts = partCount(m.blob.size, partSizeFor(m.blob.size, settings.partBytes, settings.maxPartBytes));
      count('copy-part', partBytes, parts);
      countBatches(t, new Array<number>(parts).fill(partBytes));
      count('parts-done', partBytes);
      countBatches(t, [partBytes]);
    }
  }
  return { tally: t, entries };
}

/** Azure reads of one part as the parter makes them: a few ranges at once when read whole, one stream otherwise. */
function readsOfPart(length: number, rangeReadsPerPart: number): number {
  return length <= MAX_BUFFERED_BODY_BYTES ? rangeReadsFor(length, rangeReadsPerPart) : 1;
}

/** PublishBatch calls for messages of these sizes, packed as the deployed publisher packs them (10 and 250 KB at most), and their 64 KB chunks. */
export function countBatches(t: Pick<PlanTally, 'publishBatches' | 'publishChunks'>, bytes: number[]): void {
  let items = 0;
  let total = 0;
  const close = () => {
    if (items === 0) return;
    t.publishBatches++;
    t.publishChunks += Math.max(1, Math.ceil(total / CHUNK));
    items = 0;
    total = 0;
  };
  for (const b of bytes) {
    if (items >= 10 || (items > 0 && total + b > 250 * 1024)) close();
    items++;
    total += b;
  }
  close();
}
