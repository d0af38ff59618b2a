/**
 * Stage 4: start (or resume) the multipart upload of one large blob and hand each
 * byte range to a parter. Safe to run twice for the same blob: the manifest in the
 * bucket names the one upload of this blob version, and a second run only
 * re-sends the parts that are not in yet.
 */
import { isCopyOf, objectAttributes } from '../attributes';
import type { ContextOf } from '../context';
import { BlobFailure, SourceChangedError } from '../errors';
import { inDestination, keyIn, targetsOf } from '../destinations';
import { isTransient } from '../retry';
import type { BlobProperties } from '../stores/types';
import { failureReason } from './download';
import { MESSAGE_VERSION, type BlobRef, type CopyPartMessage, type LargeBlobMessage, type PartsDoneMessage } from '../messages';
import { partCount, partRange, partSizeFor } from '../plan';
import type { BlobOutcome } from '../run-ledger';
import { clearManifest, manifestKey, readManifest, type UploadManifest } from '../uploads';
import type { STAGE_SPECS } from './specs';

type Ctx = ContextOf<(typeof STAGE_SPECS)['largefile-initializer']>;

/** What one destination's share of the blob came to: nothing more to do there, a re-plan, or an upload to feed. */
type Lane =
  | { kind: 'done' }
  | { kind: 'replan' }
  | { kind: 'ready'; d: number; manifest: UploadManifest; have: Set<number> };

export async function largefileInitializer(ctx: Ctx, message: LargeBlobMessage): Promise<void> {
  const targets = targetsOf(ctx.settings, message.blob);
  // Each destination has its own upload; the parts are read once and written to each (parter.ts).
  const lanes: Lane[] = [];
  // The blob's properties, asked of Azure once for every destination's upload.
  let asked: Promise<BlobProperties> | undefined;
  const properties = () => (asked ??= ctx.source.properties(message.blob.name, message.blob.etag));
  for (const d of targets) {
    try {
      lanes.push(await prepareLane(ctx, message, d, properties));
    } catch (error) {
      // One destination refusing the blob for good (a bucket the role may not write, say) does not hold up the
      // others: the blob fails there, by name. A passing error retries the message, which resumes every upload.
      if (targets.length === 1 || isTransient(error) || error instanceof SourceChangedError) throw error;
      const failed = inDestination(ctx.settings, message.blob, d, { status: 'failed' as const, reason: failureReason(error) });
      ctx.log.error('blob failed', { name: message.blob.name, reason: failed.reason });
      await settle(ctx, message, failed);
      lanes.push({ kind: 'done' });
    }
  }
  const replanned = targets.filter((_, n) => lanes[n].kind === 'replan');
  if (replanned.length > 0) {
    // The blob changed: planned again once, for the destinations that still need it.
    const to = replanned.length === targets.length ? message.blob.to : replanned;
    await replan(ctx, { ...message, blob: { ...message.blob, to } });
  }
  const ready = lanes.filter((lane): lane is Extract<Lane, { kind: 'ready' }> => lane.kind === 'ready');
  // Uploads of one part size share their part messages (an upload resumed from an older run may differ).
  const bySize = new Map<number, typeof ready>();
  for (const lane of ready) bySize.set(lane.manifest.partBytes, [...(bySize.get(lane.manifest.partBytes) ?? []), lane]);
  for (const group of bySize.values()) await sendParts(ctx, message, group);
}

/** Start or resume the blob's upload in destination `d`. */
async function prepareLane(ctx: Ctx, message: LargeBlobMessage, d: number, properties: () => Promise<BlobProperties>): Promise<Lane> {
  const { blob } = message;
  const sink = ctx.sinks[d];
  const key = keyIn(ctx.settings, d, blob.name);
  const log = ctx.log.child({ name: blob.name, ...(d > 0 ? { destination: d } : {}) });
  const outcome = (o: Omit<BlobOutcome, 'name' | 'index'>) => settle(ctx, message, inDestination(ctx.settings, blob, d, o));

  const existing = await sink.head(key);
  let manifest = await readManifest(sink, key);
  if (existing && isCopyOf(existing.metadata, blob)) {
    if (manifest?.blob.etag === blob.etag && manifest.phase === 'verifying') {
      // Completed but not yet checked (its check stopped part way): carry the check on.
      log.info('copy completed but not verified yet; continuing its verification');
      await ctx.publish([{ ...uploadMessage(ctx, message, manifest, d), kind: 'parts-done', verify: true }]);
      return { kind: 'done' };
    }
    log.info('already copied; nothing to do');
    await outcome({ status: 'copied', bytes: blob.size, path: 'multipart' });
    return { kind: 'done' };
  }

  if (manifest && manifest.blob.etag !== blob.etag) {
    // Two versions of one blob: only the one the source holds now may go on. Look before aborting anything,
    // so that a late message about an older version never aborts the upload of the newer one.
    const current = await currentEtag(ctx, blob.name);
    if (current !== blob.etag) {
      log.info('this message is about a version the source no longer holds; re-planning', { manifestEtag: manifest.blob.etag });
      return { kind: 'replan' };
    }
    log.info('abandoning the upload of an older version', { uploadId: manifest.uploadId });
    await sink.abort(key, manifest.uploadId);
    await ctx.ledger.forgetUpload(ctx.runId, manifest.uploadId);
    await sink.deleteState(manifestKey(key));
    manifest = undefined;
  }
  if (manifest) {
    const have = await resume(ctx, message, manifest, d);
    if (have) return { kind: 'ready', d, manifest, have };
    await clearManifest(sink, key, manifest.uploadId);
  }

  let attributes;
  try {
    attributes = objectAttributes(await properties(), blob, ctx.settings.writing);
  } catch (error) {
    if (error instanceof SourceChangedError) return { kind: 'replan' };
    if (error instanceof BlobFailure) {
      log.error('blob failed', { reason: error.message });
      await outcome({ status: 'failed', reason: error.message });
      return { kind: 'done' };
    }
    throw error;
  }
  const partBytes = partSizeFor(blob.size, ctx.settings.partBytes, ctx.settings.maxPartBytes);
  const uploadId = await sink.createUpload(key, attributes);
  const fresh: UploadManifest = {
    v: 1, key, blob, uploadId, partCount: partCount(blob.size, partBytes), partBytes, runId: ctx.runId,
    createdAt: new Date().toISOString(),
  };
  const claimed = await sink.putJson(manifestKey(key), fresh, { ifAbsent: true });
  // A refused write may be our own, retried after its answer was lost: then the manifest names our upload.
  const winner = claimed ? fresh : await readManifest(sink, key);
  if (winner?.uploadId !== uploadId) {
    // Another initializer for this blob won the race: its upload is the one; drop ours.
    await sink.abort(key, uploadId);
    log.info('another initializer holds this upload', { uploadId: winner?.uploadId });
    if (winner && winner.blob.etag === blob.etag) {
      const have = await resume(ctx, message, winner, d);
      if (have) return { kind: 'ready', d, manifest: winner, have };
    }
    return { kind: 'done' };
  }
  // A late duplicate can claim only after the first delivery completed the copy and forgot its upload.
  const done = await sink.head(key);
  if (done && isCopyOf(done.metadata, blob)) {
    await sink.abort(key, uploadId);
    await clearManifest(sink, key, uploadId);
    log.info('copied meanwhile by another delivery; nothing to do');
    await outcome({ status: 'copied', bytes: blob.size, path: 'multipart' });
    return { kind: 'done' };
  }
  await abortOrphans(ctx, d, key, uploadId);
  log.info('multipart upload started', { uploadId, partCount: fresh.partCount, partBytes });
  return { kind: 'ready', d, manifest: fresh, have: new Set() };
}

/** The ETag the source holds for this blob now, or undefined when it is gone. */
async function currentEtag(ctx: Ctx, name: string): Promise<string | undefined> {
  try {
    return (await ctx.source.properties(name)).etag;
  } catch (error) {
    if (error instanceof SourceChangedError) return undefined;
    throw error;
  }
}

/** Record this message's blob's outcome in its unit. */
async function settle(ctx: Pick<Ctx, 'ledger' | 'runId'>, message: { unit?: string; blob: BlobRef; i?: number }, outcome: Omit<BlobOutcome, 'name' | 'index'>) {
  if (message.unit) await ctx.ledger.settle(ctx.runId, message.unit, [{ name: message.blob.name, index: message.i, ...outcome }]);
}

/**
 * Abort every open upload of this key but the manifest's. Any other is an orphan: a
 * CreateMultipartUpload whose answer was lost and which was retried (S3 made two
 * uploads; we learned one id), an initializer stopped before it wrote its manifest,
 * or a duplicate delivery that lost the claim (which aborts its own anyway). None
 * can become the manifest's upload while this manifest stands, so none is needed.
 */
async function abortOrphans(ctx: Ctx, d: number, key: string, keep: string) {
  for (const upload of await ctx.sinks[d].listUploads(key)) {
    if (upload.uploadId === keep) continue;
    ctx.log.info('aborting an orphaned multipart upload', { key, uploadId: upload.uploadId });
    await ctx.sinks[d].abort(key, upload.uploadId);
  }
}

/** The parts the upload already has; undefined if the upload no longer exists. */
async function resume(ctx: Ctx, message: LargeBlobMessage, manifest: UploadManifest, d: number): Promise<Set<number> | undefined> {
  const parts = await ctx.sinks[d].listParts(manifest.key, manifest.uploadId);
  if (parts === undefined) return undefined;
  await abortOrphans(ctx, d, manifest.key, manifest.uploadId);
  const have = new Set(parts.map((p) => p.partNumber));
  ctx.log.info('resuming multipart upload', { name: message.blob.name, uploadId: manifest.uploadId, have: have.size, of: manifest.partCount });
  // A part can be in the upload without having been counted (its parter stopped in between): count what is
  // there, once, so the count reaches every part when the rest are in.
  await ctx.ledger.partsPresent(ctx.runId, manifest.uploadId, parts.map((p) => ({ partNumber: p.partNumber, bytes: p.size })), manifest.partCount);
  return have;
}

/** The fields every message about this upload carries. */
function uploadMessage(ctx: Ctx, message: LargeBlobMessage, manifest: UploadManifest, d: number) {
  return {
    v: MESSAGE_VERSION, runId: ctx.runId, run: ctx.settings, unit: message.unit, i: message.i, blob: { ...manifest.blob, to: message.blob.to },
    key: manifest.key, uploadId: manifest.uploadId, ...(d > 0 ? { d } : {}), partCount: manifest.partCount, partBytes: manifest.partBytes,
    replans: message.replans,
  };
}

/**
 * Send each part some destination's upload lacks, once, to be read once and written to every upload of the
 * blob (the first's in the message, the others as its lanes); with every part in everywhere, ask for completion.
 */
async function sendParts(ctx: Ctx, message: LargeBlobMessage, lanes: Extract<Lane, { kind: 'ready' }>[]) {
  const [first, ...others] = lanes;
  // Every destination's upload is planned alike (the same blob, part size and count), so a part is one range.
  const upload = uploadMessage(ctx, message, first.manifest, first.d);
  const more = others.map((lane) => ({ d: lane.d, key: lane.manifest.key, uploadId: lane.manifest.uploadId }));
  const parts: CopyPartMessage[] = [];
  for (let n = 1; n <= first.manifest.partCount; n++) {
    if (lanes.some((lane) => !lane.have.has(n))) {
      parts.push({ ...upload, kind: 'copy-part', part: partRange(first.manifest.blob.size, first.manifest.partBytes, n), ...(more.length > 0 ? { lanes: more } : {}) });
    }
  }
  if (parts.length > 0) {
    await ctx.publish(parts);
  } else {
    // Every part is in; the completion message may have been lost, so ask again.
    await ctx.publish(lanes.map((lane) => ({ ...uploadMessage(ctx, message, lane.manifest, lane.d), kind: 'parts-done' as const }) satisfies PartsDoneMessage));
  }
}

type Replanner = Pick<ContextOf<{ needs: []; sends: ['copy-blobs', 'large-blob']; readsAzure: true }>, 'source' | 'ledger' | 'runId' | 'settings' | 'tuning' | 'log' | 'publish'>;

/** The blob changed since it was listed: plan its current version instead, a bounded number of times. */
export async function replan(ctx: Replanner, message: { unit?: string; i?: number; blob: BlobRef; replans: number }) {
  const name = message.blob.name;
  let fresh;
  try {
    fresh = await ctx.source.properties(name);
  } catch (error) {
    if (error instanceof SourceChangedError) {
      await settle(ctx, message, { status: 'skipped', reason: 'deleted from the source after it was listed' });
      return;
    }
    throw error;
  }
  if (message.replans >= ctx.tuning.maxReplans) {
    const reason = `the blob changed ${message.replans + 1} times while it was being copied; run again when it is quiet`;
    ctx.log.error('blob failed', { name, reason });
    await settle(ctx, message, { status: 'failed', reason });
    return;
  }
  ctx.log.info('blob changed mid-copy; re-planning its current version', { name, etag: fresh.etag });
  const blob = { ...message.blob, etag: fresh.etag, size: fresh.size, lastModified: fresh.lastModified, contentMd5: fresh.contentMd5 };
  const base = { v: MESSAGE_VERSION, runId: ctx.runId, run: ctx.settings, unit: message.unit };
  if (blob.size < ctx.settings.largeBlobBytes) {
    await ctx.publish([{ ...base, kind: 'copy-blobs', blobs: [{ ...blob, i: message.i }], attempt: 1 }]);
  } else {
    await ctx.publish([{ ...base, kind: 'large-blob', blob, i: message.i, replans: message.replans + 1 }]);
  }
}
