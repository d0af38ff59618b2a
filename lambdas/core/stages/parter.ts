/**
 * Stage 5: copy one byte range of a blob into one part of its multipart upload.
 * A part of up to 128 MiB (every part of a blob up to about 1.2 TiB with the default
 * part size) is read whole into memory, then sent with its CRC32C in the header;
 * a larger one is streamed.
 * The read is pinned to the blob's ETag: if the blob changed, the whole upload is
 * abandoned and the blob re-planned, so parts of two versions are never mixed.
 */
import type { StageContext } from '../context';
import { SourceChangedError, codeOf } from '../errors';
import type { CopyPartMessage, PartsDoneMessage } from '../messages';
import { isTransient, withRetry } from '../retry';
import { MAX_BUFFERED_BODY_BYTES, byteCounter, collectBody, releaseBody } from '../streams';
import { clearManifest } from '../uploads';
import { replan } from './largefile-initializer';

export async function parter(ctx: StageContext, message: CopyPartMessage): Promise<void> {
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
      // The upload was completed or abandoned by another delivery; this part is not needed.
      log.info('upload no longer exists; part dropped');
      return;
    }
    throw error;
  }
  const done: PartsDoneMessage = {
    v: message.v, runId: message.runId, run: message.run, kind: 'parts-done', blob, key, uploadId,
    partCount: message.partCount, partBytes: message.partBytes, replans: message.replans,
  };
  await ctx.publish([done]);
}

/** Abort the upload and re-plan the blob; only the first parter to notice does the re-plan. */
async function abandon(ctx: StageContext, message: CopyPartMessage) {
  const claimed = await clearManifest(ctx.sink, message.key, message.uploadId);
  await ctx.sink.abort(message.key, message.uploadId);
  if (claimed) await replan(ctx, message);
}
