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
import type { StageContext } from '../context';
import { BlobFailure, SourceChangedError, codeOf, errorMessage, statusOf } from '../errors';
import { destinationKey } from '../keys';
import type { BlobRef, CopyBlobsMessage } from '../messages';
import { isTransient, withRetry } from '../retry';
import { UPLOAD_CHUNK_BYTES, byteCounter, collectBody } from '../streams';

export async function download(ctx: StageContext, message: CopyBlobsMessage): Promise<void> {
  const transient: { name: string; error: unknown }[] = [];
  await mapLimit(message.blobs, ctx.tuning.downloadConcurrency, async (blob) => {
    try {
      const bytes = await copySmallBlob(ctx, blob);
      if (bytes !== undefined) {
        await ctx.ledger.record(ctx.runId, {
          status: 'copied', name: blob.name, key: destinationKey(ctx.settings.prefix, blob.name), bytes, path: 'single',
        });
      }
    } catch (error) {
      if (isTransient(error)) {
        transient.push({ name: blob.name, error });
        return;
      }
      await ctx.ledger.record(ctx.runId, { status: 'failed', name: blob.name, reason: failureReason(error) });
    }
  });
  if (transient.length > 0) {
    // Let the platform retry the message, then dead-letter it; copies already made are simply made again.
    const first = transient[0];
    throw new Error(`${transient.length} of ${message.blobs.length} blobs hit transient errors, first "${first.name}": ${errorMessage(first.error)}`, {
      cause: first.error,
    });
  }
}

/** Copy one blob; returns the bytes written, or undefined when it was skipped. */
export async function copySmallBlob(ctx: StageContext, listed: BlobRef): Promise<number | undefined> {
  const key = destinationKey(ctx.settings.prefix, listed.name);
  let blob = listed;
  for (let replans = 0; ; replans++) {
    try {
      return await withRetry(async () => {
        const read = await ctx.source.read(blob.name, blob.etag);
        const md5 = read.contentMd5 ? createHash('md5') : undefined;
        if (read.length <= UPLOAD_CHUNK_BYTES && read.length === blob.size) {
          // Most blobs: read whole (a few MiB at most per blob in flight), checked before a byte is written,
          // and sent with the CRC32C computed on the way in the request's header.
          const body = await collectBody(read.body, read.length, { hash: md5 });
          const written = md5?.digest('base64');
          if (written !== read.contentMd5) {
            throw new BlobFailure(`the bytes read have MD5 ${written}, not the blob's Content-MD5 ${read.contentMd5}; nothing was written`);
          }
          await ctx.sink.put(key, body.buffer, objectAttributes(read, blob), {
            length: read.length, contentMd5: read.contentMd5, checksumCrc32c: body.crc32c,
          });
          return read.length;
        }
        const counted = byteCounter(read.body, { hash: md5 });
        try {
          // S3 itself rejects bytes that differ from Content-MD5; not every S3-compatible server does, so check too.
          await ctx.sink.put(key, counted.stream, objectAttributes(read, blob), { length: read.length, contentMd5: read.contentMd5 });
        } catch (error) {
          counted.discard();
          throw counted.sourceError() ?? error;
        }
        const written = md5?.digest('base64');
        if (written !== read.contentMd5 || counted.bytes() !== blob.size) {
          await ctx.sink.delete(key);
          throw new BlobFailure(
            written !== read.contentMd5
              ? `the bytes read have MD5 ${written}, not the blob's Content-MD5 ${read.contentMd5}; the copy was deleted`
              : `read ${counted.bytes()} bytes but the blob has ${blob.size}; the copy was deleted`,
          );
        }
        return read.length;
      }, { ...ctx.tuning.retry, onRetry: (error, attempt) => ctx.log.warn('retrying blob', { name: blob.name, attempt, error }) });
    } catch (error) {
      if (!(error instanceof SourceChangedError)) throw error;
      // Changed since listed: copy the version there now (it is newer still), or note that it is gone.
      let fresh;
      try {
        fresh = await ctx.source.properties(blob.name);
      } catch (propsError) {
        if (propsError instanceof SourceChangedError) {
          await ctx.ledger.record(ctx.runId, { status: 'skipped', name: blob.name, reason: 'deleted from the source after it was listed' });
          return undefined;
        }
        throw propsError;
      }
      if (replans >= ctx.tuning.maxReplans) {
        throw new BlobFailure(`the blob changed ${replans + 1} times while it was being copied; run again when it is quiet`);
      }
      ctx.log.info('blob changed since it was listed; copying its current version', { name: blob.name });
      blob = { ...blob, etag: fresh.etag, size: fresh.size, lastModified: fresh.lastModified, contentMd5: fresh.contentMd5 };
    }
  }
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
