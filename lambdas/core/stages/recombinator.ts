/**
 * Stage 6: complete a multipart upload once every part is in, and check it. Runs
 * once per finished part, so it must be cheap when parts are missing, correct when
 * two copies race to complete, and correct past 1,000 parts (ListParts pages).
 */
import { isCopyOf } from '../attributes';
import type { StageContext } from '../context';
import type { PartsDoneMessage } from '../messages';
import { partRange } from '../plan';
import type { UploadedPart } from '../stores/types';
import { md5OfStream } from '../streams';
import { clearManifest, readManifest } from '../uploads';

export async function recombinator(ctx: StageContext, message: PartsDoneMessage): Promise<void> {
  const { blob, key, uploadId, partCount, partBytes } = message;
  const log = ctx.log.child({ name: blob.name, uploadId });

  // Parts are listed in order, so the first gap in numbering means "not yet": stop reading pages there.
  const gapSeen = (parts: UploadedPart[]) => parts.some((p, i) => p.partNumber !== i + 1);
  const parts = await ctx.sink.listParts(key, uploadId, gapSeen);
  if (parts === undefined) return settleMissing(ctx, message);
  if (parts.length < partCount || gapSeen(parts)) {
    log.debug('upload not complete yet', { have: parts.length, of: partCount });
    return;
  }

  const problem = checkParts(parts, blob.size, partBytes, partCount);
  if (problem) {
    log.error('parts do not add up to the blob; abandoning the upload', { problem });
    await ctx.sink.abort(key, uploadId);
    await clearManifest(ctx.sink, key, uploadId);
    await ctx.ledger.record(ctx.runId, { status: 'failed', name: blob.name, reason: `multipart upload inconsistent: ${problem}` });
    return;
  }

  const outcome = await ctx.sink.complete(key, uploadId, parts);
  if (outcome === 'missing') return settleMissing(ctx, message);
  log.info('multipart upload completed', { parts: parts.length, bytes: blob.size });
  await finish(ctx, message);
}

/** The object is complete: check it against the blob's Content-MD5, then forget the upload and record the copy. */
async function finish(ctx: StageContext, message: PartsDoneMessage): Promise<void> {
  const { blob, key, uploadId } = message;
  if (blob.contentMd5) {
    const { md5, bytes } = await md5OfStream(await ctx.sink.read(key));
    if (md5 !== blob.contentMd5 || bytes !== blob.size) {
      // Better no object than a wrong one.
      await ctx.sink.delete(key);
      await clearManifest(ctx.sink, key, uploadId);
      await ctx.ledger.record(ctx.runId, {
        status: 'failed', name: blob.name,
        reason: `the copy's MD5 ${md5} differs from the blob's Content-MD5 ${blob.contentMd5}; the copy was deleted`,
      });
      return;
    }
  }
  await clearManifest(ctx.sink, key, uploadId);
  await ctx.ledger.record(ctx.runId, { status: 'copied', name: blob.name, key, bytes: blob.size, path: 'multipart' });
}

/** Every planned part present, each of its planned size: no byte lost or doubled at a boundary. */
export function checkParts(parts: UploadedPart[], size: number, partBytes: number, partCount: number): string | undefined {
  if (parts.length !== partCount) return `${parts.length} parts for a plan of ${partCount}`;
  let total = 0;
  for (const part of parts) {
    const range = partRange(size, partBytes, part.partNumber);
    const expected = range.end - range.start + 1;
    if (part.size !== expected) return `part ${part.partNumber} has ${part.size} bytes, planned ${expected}`;
    total += part.size;
  }
  return total === size ? undefined : `parts hold ${total} bytes, the blob ${size}`;
}

/**
 * The upload is gone: completed (by an earlier delivery, or by this one when the answer
 * to CompleteMultipartUpload was lost and the retry found nothing), or abandoned.
 */
async function settleMissing(ctx: StageContext, message: PartsDoneMessage) {
  const { blob, key, uploadId } = message;
  const head = await ctx.sink.head(key);
  if (head && isCopyOf(head.metadata, blob)) {
    // While the manifest still names the upload, whoever completed it has not checked and recorded it yet.
    const manifest = await readManifest(ctx.sink, key);
    if (manifest?.uploadId === uploadId) return finish(ctx, message);
    await ctx.ledger.record(ctx.runId, { status: 'copied', name: blob.name, key, bytes: blob.size, path: 'multipart' });
    return;
  }
  // No copy, no upload: a manifest still naming the upload names nothing.
  await clearManifest(ctx.sink, key, uploadId);
  ctx.log.info('upload no longer exists and no copy of this version is there; it was abandoned', { name: blob.name });
}
