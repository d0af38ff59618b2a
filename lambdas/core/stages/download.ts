/**
 * Stage 3: copy small blobs, each in one S3 PUT. A blob of up to 8 MiB (most of
 * them) is read whole into memory, checked against its Content-MD5, and sent with
 * the CRC32C computed while reading it in the request's header; a larger one is
 * streamed from Azure straight into the PUT, never held whole. Nothing goes to
 * disk; the PUT is atomic, so no partial object is ever visible, and S3 checks the
 * CRC32C (and the Content-MD5 when the blob has one) before it stores a byte.
 */
import { createHash } from 'node:crypto';
import { objectAttributes } from '../attributes';
import { mapLimit } from '../batching';
import type { ContextOf } from '../context';
import { BlobFailure, SourceChangedError, codeOf, errorMessage, statusOf } from '../errors';
import { destinationKey } from '../keys';
import { MESSAGE_VERSION, type BlobRef, type CopyBlobsMessage } from '../messages';
import { CONSERVATIVE_PART_BYTES_PER_SECOND } from '../plan';
import { isTransient, withRetry } from '../retry';
import type { BlobOutcome } from '../run-ledger';
import type { BlobRead } from '../stores/types';
import { UPLOAD_CHUNK_BYTES, byteCounter, collectBody } from '../streams';
import type { STAGE_SPECS } from './specs';

type Ctx = ContextOf<(typeof STAGE_SPECS)['download']>;
type MessageBlob = CopyBlobsMessage['blobs'][number];

/** What became of one blob. */
type Result =
  | { status: 'copied'; bytes: number }
  | { status: 'skipped'; reason: string }
  /** It has grown to the large-blob size since it was listed: the multipart path takes its current version. */
  | { status: 'large'; blob: BlobRef };

/** Time kept back at the end of an invocation to record outcomes and send what is left. */
const RESERVE_MS = 5_000;

export async function download(ctx: Ctx, message: CopyBlobsMessage): Promise<void> {
  const outcomes: BlobOutcome[] = [];
  const grown: { blob: BlobRef; i?: number }[] = [];
  const again: { blob: MessageBlob; error: unknown }[] = [];
  const later: MessageBlob[] = [];
  let started = 0;
  await mapLimit(message.blobs, ctx.tuning.downloadConcurrency, async (blob) => {
    // A blob is begun only when it fits in the time left at the conservative rate (the first always is):
    // the rest go to another invocation, so no invocation runs past its timeout however big the message.
    const needMs = RESERVE_MS + (blob.size / CONSERVATIVE_PART_BYTES_PER_SECOND) * 1000;
    if (started > 0 && ctx.remainingMs() < needMs) {
      later.push(blob);
      return;
    }
    started++;
    try {
      const result = await copySmallBlob(ctx, blob);
      if (result.status === 'large') grown.push({ blob: result.blob, i: blob.i });
      else if (result.status === 'copied') outcomes.push({ name: blob.name, index: blob.i, status: 'copied', bytes: result.bytes, path: 'single' });
      else outcomes.push({ name: blob.name, index: blob.i, status: 'skipped', reason: result.reason });
      ctx.log.debug(`blob ${result.status}`, { name: blob.name });
    } catch (error) {
      if (isTransient(error)) {
        again.push({ blob, error });
        return;
      }
      const reason = failureReason(error);
      ctx.log.error('blob failed', { name: blob.name, reason });
      outcomes.push({ name: blob.name, index: blob.i, status: 'failed', reason });
    }
  });
  if (message.unit && outcomes.length > 0) await ctx.ledger.settle(ctx.runId, message.unit, outcomes);
  const base = { v: MESSAGE_VERSION, runId: ctx.runId, run: ctx.settings, unit: message.unit };
  if (grown.length > 0) {
    await ctx.publish(grown.map(({ blob, i }) => ({ ...base, kind: 'large-blob' as const, blob, i, replans: 0 })));
  }
  if (later.length > 0) {
    ctx.log.info('leaving blobs to another invocation, for lack of time in this one', { later: later.length });
    await ctx.publish([{ ...base, kind: 'copy-blobs', blobs: later, attempt: message.attempt ?? 1 }]);
  }
  const attempt = message.attempt ?? 1;
  ctx.log.info('copy message done', {
    blobs: message.blobs.length, copied: outcomes.filter((o) => o.status === 'copied').length, failed: outcomes.filter((o) => o.status === 'failed').length,
    grown: grown.length, again: again.length, later: later.length, attempt,
  });
  if (again.length === 0) return;
  if (again.length === message.blobs.length || attempt >= ctx.tuning.maxBlobAttempts) {
    // Nothing else in this message to spare, or rounds used up: the queue retries the message, then dead-letters it.
    const first = again[0];
    throw new Error(`${again.length} of ${message.blobs.length} blobs hit passing errors, first "${first.blob.name}": ${errorMessage(first.error)}`, {
      cause: first.error,
    });
  }
  // Only the blobs that failed go round again; the others are done and are not copied twice.
  ctx.log.warn('sending blobs that hit passing errors round again', { names: again.map((a) => a.blob.name), error: errorMessage(again[0].error) });
  await ctx.publish([{ ...base, kind: 'copy-blobs', blobs: again.map((a) => a.blob), attempt: attempt + 1 }]);
}

/** Copy one blob in one PUT: its current version if it changed since it was listed. */
export async function copySmallBlob(ctx: Ctx, listed: BlobRef): Promise<Result> {
  const key = destinationKey(ctx.settings.prefix, listed.name);
  let blob = listed;
  for (let replans = 0; ; replans++) {
    try {
      return { status: 'copied', bytes: await copyVersion(ctx, key, blob) };
    } catch (error) {
      if (!(error instanceof SourceChangedError)) throw error;
      // Changed since listed: copy the version there now (it is newer still), or note that it is gone.
      let fresh;
      try {
        fresh = await ctx.source.properties(blob.name);
      } catch (propsError) {
        if (propsError instanceof SourceChangedError) return { status: 'skipped', reason: 'deleted from the source after it was listed' };
        throw propsError;
      }
      if (replans >= ctx.tuning.maxReplans) {
        throw new BlobFailure(`the blob changed ${replans + 1} times while it was being copied; run again when it is quiet`);
      }
      ctx.log.info('blob changed since it was listed; copying its current version', { name: blob.name });
      blob = { ...blob, etag: fresh.etag, size: fresh.size, lastModified: fresh.lastModified, contentMd5: fresh.contentMd5 };
      if (blob.size >= ctx.settings.largeBlobBytes) return { status: 'large', blob };
    }
  }
}

/** Copy one version of a blob, pinned to its ETag; returns the bytes written. */
async function copyVersion(ctx: Ctx, key: string, blob: BlobRef): Promise<number> {
  const read = await ctx.source.read(blob.name, blob.etag);
  const md5 = read.contentMd5 ? createHash('md5') : undefined;
  if (read.length <= UPLOAD_CHUNK_BYTES && read.length === blob.size) {
    // Most blobs: read whole (a few MiB at most per blob in flight), checked before a byte is written, and
    // sent with the CRC32C computed on the way in the request's header. The read resumes a cut body and
    // the PUT retries itself, so no retry is needed around them.
    const body = await collectBody(read.body, read.length, { hash: md5 });
    const written = md5?.digest('base64');
    if (written !== read.contentMd5) {
      throw new BlobFailure(`the bytes read have MD5 ${written}, not the blob's Content-MD5 ${read.contentMd5}; nothing was written`);
    }
    await ctx.sink.put(key, body.buffer, objectAttributes(read, blob, ctx.settings.writing), {
      length: read.length, contentMd5: read.contentMd5, checksumCrc32c: body.crc32c,
    });
    return read.length;
  }
  // A streamed PUT is not retried by the SDK (its body cannot be replayed): retried here, each try a fresh read.
  let first: BlobRead | undefined = read;
  return withRetry(async () => {
    const current = first ?? (await ctx.source.read(blob.name, blob.etag));
    first = undefined;
    return streamVersion(ctx, key, blob, current);
  }, {
    ...ctx.tuning.retry,
    onRetry: (error, attempt) => ctx.log.warn('retrying blob', { name: blob.name, attempt, error }),
  });
}

async function streamVersion(ctx: Ctx, key: string, blob: BlobRef, read: BlobRead): Promise<number> {
  const md5 = read.contentMd5 ? createHash('md5') : undefined;
  const counted = byteCounter(read.body, { hash: md5 });
  try {
    // S3 itself rejects bytes that differ from Content-MD5; not every S3-compatible server does, so check too.
    await ctx.sink.put(key, counted.stream, objectAttributes(read, blob, ctx.settings.writing), { length: read.length, contentMd5: read.contentMd5 });
  } catch (error) {
    counted.discard();
    throw counted.sourceError() ?? error;
  }
  const written = md5?.digest('base64');
  if (written !== read.contentMd5 || counted.bytes() !== read.length) {
    await ctx.sink.delete(key);
    throw new BlobFailure(
      written !== read.contentMd5
        ? `the bytes read have MD5 ${written}, not the blob's Content-MD5 ${read.contentMd5}; the copy was deleted`
        : `read ${counted.bytes()} bytes but the blob has ${read.length}; the copy was deleted`,
    );
  }
  return read.length;
}

/** One line for the report: what went wrong with this blob, without secrets or stack. */
export function failureReason(error: unknown): string {
  if (error instanceof BlobFailure) return error.message;
  const code = codeOf(error);
  const status = statusOf(error);
  if (code === 'BadDigest' || code === 'InvalidDigest') {
    return 'the bytes read differ from the blob\'s Content-MD5; S3 refused them (BadDigest): the blob may be corrupt at the source';
  }
  if (status === 403 || code === 'AccessDenied') {
    return 'S3 refused the write (403 AccessDenied): allow s3:PutObject, and s3:PutObjectTagging for blobs with index tags, on the bucket';
  }
  const detail = errorMessage(error);
  return [code && !detail.includes(code) ? code : undefined, status ? `HTTP ${status}` : undefined, detail]
    .filter(Boolean)
    .join(': ');
}
