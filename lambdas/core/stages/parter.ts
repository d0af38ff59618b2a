/**
 * Stage 5: copy one byte range of a blob into one part of its multipart upload.
 * A part of up to 128 MiB (every part of a blob up to about 1.2 TiB with the default
 * part size) is read whole into memory, then sent with its CRC32C in the header;
 * a larger one is streamed.
 * The read is pinned to the blob's ETag: if the blob changed, the whole upload is
 * abandoned and the blob re-planned, so parts of two versions are never mixed.
 * Each part is counted in the run state once; the parter whose part makes the count
 * complete asks the recombinator to finish the upload, so completion costs one
 * listing of the parts, not one per part.
 */
import { isCopyOf } from '../attributes';
import type { ContextOf } from '../context';
import { SourceChangedError, codeOf } from '../errors';
import type { CopyPartMessage, PartsDoneMessage } from '../messages';
import { isTransient, withRetry } from '../retry';
import { MAX_BUFFERED_BODY_BYTES, byteCounter, collectBody, releaseBody } from '../streams';
import { clearManifest, readManifest } from '../uploads';
import { replan } from './largefile-initializer';
import type { STAGE_SPECS } from './specs';

type Ctx = ContextOf<(typeof STAGE_SPECS)['parter']>;

export async function parter(ctx: Ctx, message: CopyPartMessage): Promise<void> {
  const { blob, key, uploadId, part } = message;
  const length = part.end - part.start + 1;
  const log = ctx.log.child({ name: blob.name, uploadId, partNumber: part.partNumber });
  try {
    await withRetry(async () => {
      const read = await ctx.source.read(blob.name, blob.etag, part);
      if (length <= MAX_BUFFERED_BODY_BYTES) {
        // The usual case: the part read whole, its CRC32C computed on the way and sent in the header.
        if (read.length !== length) {
          read.body.on('error', () => undefined).destroy();
          throw new Error(`Azure returned ${read.length} bytes for a range of ${length}`);
        }
        const body = await collectBody(read.body, length);
        const sent = await ctx.sink.uploadPart(key, uploadId, part.partNumber, body.buffer, length, body.crc32c);
        releaseBody(body);
        return sent;
      }
      const counted = byteCounter(read.body);
      let uploaded;
      try {
        if (read.length !== length) throw new Error(`Azure returned ${read.length} bytes for a range of ${length}`);
        uploaded = await ctx.sink.uploadPart(key, uploadId, part.partNumber, counted.stream, length);
      } catch (error) {
        counted.discard();
        throw counted.sourceError() ?? error;
      }
      if (counted.bytes() !== length) throw new Error(`sent ${counted.bytes()} bytes for a part of ${length}`);
      return uploaded;
    }, {
      ...ctx.tuning.retry,
      // The sink found the upload gone (completed or abandoned by another delivery): retrying cannot help.
      isRetryable: (error) => codeOf(error) !== 'NoSuchUpload' && isTransient(error),
      onRetry: (error, attempt) => log.warn('retrying part', { attempt, error }),
    });
  } catch (error) {
    if (error instanceof SourceChangedError) {
      await abandon(ctx, message);
      return;
    }
    if (codeOf(error) === 'NoSuchUpload') {
      await uploadGone(ctx, message);
      return;
    }
    throw error;
  }
  const done: PartsDoneMessage = {
    v: message.v, runId: message.runId, run: message.run, kind: 'parts-done', unit: message.unit, i: message.i, blob, key, uploadId,
    partCount: message.partCount, partBytes: message.partBytes, replans: message.replans,
  };
  if (message.v === 1) {
    // An older release's message: its recombinator looked at the parts after every one.
    await ctx.publish([done]);
    return;
  }
  if (await ctx.ledger.partDone(ctx.runId, uploadId, part.partNumber, message.partCount, length)) {
    log.info('every part is in; asking for completion');
    await ctx.publish([done]);
  } else {
    log.debug('part copied');
  }
}

/** Abort the upload and re-plan the blob; only the first parter to notice does the re-plan. */
async function abandon(ctx: Ctx, message: CopyPartMessage) {
  const claimed = await clearManifest(ctx.sink, message.key, message.uploadId);
  await ctx.sink.abort(message.key, message.uploadId);
  if (claimed) {
    await ctx.ledger.forgetUpload(ctx.runId, message.uploadId);
    await replan(ctx, message);
  }
}

/**
 * The upload this part was for no longer exists. Completed by another delivery (its copy is there), or
 * replaced by a newer upload of the blob (the manifest names that one): nothing to do. Otherwise it was
 * abandoned under a message that still needs it (aborted by the bucket's lifecycle rule while the message
 * waited in a dead-letter queue, say): plan the blob afresh, so that a redriven message still copies it.
 */
async function uploadGone(ctx: Ctx, message: CopyPartMessage) {
  const log = ctx.log.child({ name: message.blob.name, uploadId: message.uploadId });
  const copy = await ctx.sink.head(message.key);
  if (copy && isCopyOf(copy.metadata, message.blob)) {
    log.info('upload already completed; part not needed');
    return;
  }
  const manifest = await readManifest(ctx.sink, message.key);
  if (manifest?.uploadId !== message.uploadId) {
    // Replaced by a newer upload, or abandoned by whoever cleared the manifest (and re-planned the blob then).
    log.info('upload no longer current; part dropped', { current: manifest?.uploadId });
    return;
  }
  // The manifest still names it: nobody has planned the blob again. The parter that clears the manifest does.
  if (!(await clearManifest(ctx.sink, message.key, message.uploadId))) return;
  log.warn('upload no longer exists and no copy is there; planning the blob again');
  await ctx.ledger.forgetUpload(ctx.runId, message.uploadId);
  await replan(ctx, message);
}
