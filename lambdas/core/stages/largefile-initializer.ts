/**
 * Stage 4: start (or resume) the multipart upload of one large blob and hand each
 * byte range to a parter. Safe to run twice for the same blob: the manifest in the
 * bucket names the one upload of this blob version, and a second run only
 * re-sends the parts that are not in yet.
 */
import { isCopyOf, objectAttributes } from '../attributes';
import type { StageContext } from '../context';
import { SourceChangedError } from '../errors';
import { destinationKey } from '../keys';
import { MESSAGE_VERSION, type CopyPartMessage, type LargeBlobMessage, type PartsDoneMessage } from '../messages';
import { partCount, partRange, partSizeFor } from '../plan';
import { clearManifest, manifestKey, readManifest, type UploadManifest } from '../uploads';

export async function largefileInitializer(ctx: StageContext, message: LargeBlobMessage): Promise<void> {
  const { blob } = message;
  const key = destinationKey(ctx.settings.prefix, blob.name);
  const log = ctx.log.child({ name: blob.name });

  const existing = await ctx.sink.head(key);
  if (existing && isCopyOf(existing.metadata, blob)) {
    log.info('already copied; nothing to do');
    return;
  }

  let manifest = await readManifest(ctx.sink, key);
  if (manifest && manifest.blob.etag !== blob.etag) {
    // An upload of an older version of this blob; it can never complete correctly.
    log.info('abandoning the upload of an older version', { uploadId: manifest.uploadId });
    await ctx.sink.abort(key, manifest.uploadId);
    await ctx.sink.delete(manifestKey(key));
    manifest = undefined;
  }
  if (manifest) {
    const resumed = await resume(ctx, message, manifest);
    if (resumed) return;
    await clearManifest(ctx.sink, key, manifest.uploadId);
  }

  let props;
  try {
    props = await ctx.source.properties(blob.name, blob.etag);
  } catch (error) {
    if (error instanceof SourceChangedError) return replan(ctx, message);
    throw error;
  }
  const attributes = objectAttributes(props, blob);
  const partBytes = partSizeFor(blob.size, ctx.settings.partBytes);
  const uploadId = await ctx.sink.createUpload(key, attributes);
  const fresh: UploadManifest = {
    v: 1, key, blob, uploadId, partCount: partCount(blob.size, partBytes), partBytes, runId: ctx.runId,
    createdAt: new Date().toISOString(),
  };
  const claimed = await ctx.sink.putJson(manifestKey(key), fresh, { ifAbsent: true });
  // A refused write may be our own, retried after its answer was lost: then the manifest names our upload.
  const winner = claimed ? fresh : await readManifest(ctx.sink, key);
  if (winner?.uploadId !== uploadId) {
    // Another initializer for this blob won the race: its upload is the one; drop ours.
    await ctx.sink.abort(key, uploadId);
    log.info('another initializer holds this upload', { uploadId: winner?.uploadId });
    if (winner && winner.blob.etag === blob.etag) await resume(ctx, message, winner);
    return;
  }
  // A late duplicate can claim only after the first delivery completed the copy and forgot its upload.
  const done = await ctx.sink.head(key);
  if (done && isCopyOf(done.metadata, blob)) {
    await ctx.sink.abort(key, uploadId);
    await clearManifest(ctx.sink, key, uploadId);
    log.info('copied meanwhile by another delivery; nothing to do');
    return;
  }
  await abortOrphans(ctx, key, uploadId);
  log.info('multipart upload started', { uploadId, partCount: fresh.partCount, partBytes });
  await sendParts(ctx, message, fresh, new Set());
}

/**
 * Abort every open upload of this key but the manifest's. Any other is an orphan: a
 * CreateMultipartUpload whose answer was lost and which was retried (S3 made two
 * uploads; we learned one id), an initializer stopped before it wrote its manifest,
 * or a duplicate delivery that lost the claim (which aborts its own anyway). None
 * can become the manifest's upload while this manifest stands, so none is needed.
 */
async function abortOrphans(ctx: StageContext, key: string, keep: string) {
  for (const upload of await ctx.sink.listUploads(key)) {
    if (upload.uploadId === keep) continue;
    ctx.log.info('aborting an orphaned multipart upload', { key, uploadId: upload.uploadId });
    await ctx.sink.abort(key, upload.uploadId);
  }
}

/** Re-send the parts the upload lacks; false if the upload no longer exists. */
async function resume(ctx: StageContext, message: LargeBlobMessage, manifest: UploadManifest): Promise<boolean> {
  const parts = await ctx.sink.listParts(manifest.key, manifest.uploadId);
  if (parts === undefined) return false;
  await abortOrphans(ctx, manifest.key, manifest.uploadId);
  const have = new Set(parts.map((p) => p.partNumber));
  ctx.log.info('resuming multipart upload', { name: message.blob.name, uploadId: manifest.uploadId, have: have.size, of: manifest.partCount });
  await sendParts(ctx, message, manifest, have);
  return true;
}

async function sendParts(ctx: StageContext, message: LargeBlobMessage, manifest: UploadManifest, have: Set<number>) {
  const upload = {
    v: MESSAGE_VERSION, runId: ctx.runId, run: ctx.settings, blob: manifest.blob, key: manifest.key,
    uploadId: manifest.uploadId, partCount: manifest.partCount, partBytes: manifest.partBytes, replans: message.replans,
  };
  const parts: CopyPartMessage[] = [];
  for (let n = 1; n <= manifest.partCount; n++) {
    if (!have.has(n)) parts.push({ ...upload, kind: 'copy-part', part: partRange(manifest.blob.size, manifest.partBytes, n) });
  }
  if (parts.length > 0) {
    await ctx.publish(parts);
  } else {
    // Every part is in; the completion message may have been lost, so ask again.
    await ctx.publish([{ ...upload, kind: 'parts-done' } satisfies PartsDoneMessage]);
  }
}

/** The blob changed since it was listed: plan its current version instead, a bounded number of times. */
export async function replan(ctx: StageContext, message: LargeBlobMessage | { blob: LargeBlobMessage['blob']; replans: number }) {
  const name = message.blob.name;
  let fresh;
  try {
    fresh = await ctx.source.properties(name);
  } catch (error) {
    if (error instanceof SourceChangedError) {
      await ctx.ledger.record(ctx.runId, { status: 'skipped', name, reason: 'deleted from the source after it was listed' });
      return;
    }
    throw error;
  }
  if (message.replans >= ctx.tuning.maxReplans) {
    await ctx.ledger.record(ctx.runId, {
      status: 'failed', name, reason: `the blob changed ${message.replans + 1} times while it was being copied; run again when it is quiet`,
    });
    return;
  }
  ctx.log.info('blob changed mid-copy; re-planning its current version', { name, etag: fresh.etag });
  const blob = { ...message.blob, etag: fresh.etag, size: fresh.size, lastModified: fresh.lastModified, contentMd5: fresh.contentMd5 };
  if (blob.size < ctx.settings.largeBlobBytes) {
    await ctx.publish([{ v: MESSAGE_VERSION, runId: ctx.runId, run: ctx.settings, kind: 'copy-blobs', blobs: [blob] }]);
  } else {
    await ctx.publish([{ v: MESSAGE_VERSION, runId: ctx.runId, run: ctx.settings, kind: 'large-blob', blob, replans: message.replans + 1 }]);
  }
}
