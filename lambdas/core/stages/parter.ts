/**
 * Stage 5: copy one byte range of a blob into one part of its multipart upload.
 * A part of up to 128 MiB (every part of a blob up to about 1.2 TiB with the default
 * part size) is read whole into memory, as a few ranges at once (one connection from
 * far away carries less than several), then sent with its CRC32C in the header;
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
import { MAX_BUFFERED_BODY_BYTES, byteCounter, collectRanges, rangeReadsFor, releaseBody, writeEach } from '../streams';
import { clearManifest, readManifest } from '../uploads';
import { inDestination, onlyIn } from '../destinations';
import { failureReason } from './download';
import { replan } from './largefile-initializer';
import type { STAGE_SPECS } from './specs';

type Ctx = ContextOf<(typeof STAGE_SPECS)['parter']>;

/** One upload the part goes to: the message's own, or one of its lanes (the blob's upload in another destination). */
interface LaneUpload {
  d: number;
  key: string;
  uploadId: string;
}

export async function parter(ctx: Ctx, message: CopyPartMessage): Promise<void> {
  const { blob, part } = message;
  const length = part.end - part.start + 1;
  const lanes: LaneUpload[] = [{ d: message.d ?? 0, key: message.key, uploadId: message.uploadId }, ...(message.lanes ?? [])];
  const log = ctx.log.child({ name: blob.name, uploadId: message.uploadId, partNumber: part.partNumber });
  /** By lane: its part is in, its upload is gone, or (several destinations) its destination refused it for good. */
  const finished = new Map<LaneUpload, 'in' | 'gone' | { refused: unknown }>();
  try {
    await withRetry(async () => {
      const todo = lanes.filter((lane) => !finished.has(lane));
      /** Bytes `start` to `end` of the part (inclusive), pinned to the blob's ETag. */
      const readRange = async (start: number, end: number) => {
        const read = await ctx.source.read(blob.name, blob.etag, { start: part.start + start, end: part.start + end });
        if (read.length !== end - start + 1) {
          read.body.on('error', () => undefined).destroy();
          throw new Error(`Azure returned ${read.length} bytes for a range of ${end - start + 1}`);
        }
        return read.body;
      };
      let results: PromiseSettledResult<unknown>[];
      if (length <= MAX_BUFFERED_BODY_BYTES) {
        // The usual case: the part read whole (as several ranges at once), its CRC32C sent in the header, and
        // the same bytes written to each destination's upload.
        const body = await collectRanges(length, rangeReadsFor(length, ctx.tuning.rangeReadsPerPart), readRange);
        results = await Promise.allSettled(todo.map((lane) => ctx.sinks[lane.d].uploadPart(lane.key, lane.uploadId, part.partNumber, body.buffer, length, body.crc32c)));
        releaseBody(body);
      } else {
        const counted = byteCounter(await readRange(0, length - 1));
        results = await writeEach(counted, todo.length, (body, n) =>
          ctx.sinks[todo[n].d].uploadPart(todo[n].key, todo[n].uploadId, part.partNumber, body, length));
        const sourceError = counted.sourceError();
        if (sourceError) throw sourceError;
        if (counted.bytes() !== length) throw new Error(`sent ${counted.bytes()} bytes for a part of ${length}`);
      }
      let failure: unknown;
      results.forEach((result, n) => {
        // The sink found the upload gone (completed or abandoned by another delivery): retrying cannot help.
        if (result.status === 'fulfilled') finished.set(todo[n], 'in');
        else if (codeOf(result.reason) === 'NoSuchUpload') finished.set(todo[n], 'gone');
        else if (lanes.length > 1 && !isTransient(result.reason)) finished.set(todo[n], { refused: result.reason });
        else failure ??= result.reason;
      });
      if (failure !== undefined) throw failure;
    }, {
      ...ctx.tuning.retry,
      isRetryable: (error) => isTransient(error),
      onRetry: (error, attempt) => log.warn('retrying part', { attempt, error }),
    });
  } catch (error) {
    if (error instanceof SourceChangedError) {
      await abandon(ctx, message, lanes);
      return;
    }
    throw error;
  }
  for (const lane of lanes) {
    const end = finished.get(lane);
    if (end === 'gone') await uploadGone(ctx, message, lane);
    else if (typeof end === 'object') await refused(ctx, message, lane, end.refused);
    else await partIn(ctx, message, lane, length);
  }
}

/**
 * One destination refused its part for good (several destinations): the blob fails there, by name, and its
 * upload there is abandoned; the other destinations go on. Later parts for it find the upload gone.
 */
async function refused(ctx: Ctx, message: CopyPartMessage, lane: LaneUpload, error: unknown) {
  const failed = inDestination(ctx.settings, message.blob, lane.d, { status: 'failed' as const, reason: failureReason(error) });
  ctx.log.error('blob failed', { name: message.blob.name, reason: failed.reason });
  if (await clearManifest(ctx.sinks[lane.d], lane.key, lane.uploadId)) await ctx.ledger.forgetUpload(ctx.runId, lane.uploadId);
  await ctx.sinks[lane.d].abort(lane.key, lane.uploadId).catch(() => undefined);
  if (message.unit) {
    await ctx.ledger.settle(ctx.runId, message.unit, [{ name: message.blob.name, index: message.i, ...failed }]);
  }
}

/** Count the part in its upload; the parter whose part completes the count asks for the upload's completion. */
async function partIn(ctx: Ctx, message: CopyPartMessage, lane: LaneUpload, length: number) {
  const done: PartsDoneMessage = {
    v: message.v, runId: message.runId, run: message.run, kind: 'parts-done', unit: message.unit, i: message.i, blob: message.blob,
    key: lane.key, uploadId: lane.uploadId, ...(lane.d > 0 ? { d: lane.d } : {}),
    partCount: message.partCount, partBytes: message.partBytes, replans: message.replans,
  };
  if (message.v === 1) {
    // An older release's message: its recombinator looked at the parts after every one.
    await ctx.publish([done]);
    return;
  }
  if (await ctx.ledger.partDone(ctx.runId, lane.uploadId, message.part.partNumber, message.partCount, length)) {
    ctx.log.info('every part is in; asking for completion', { name: message.blob.name, uploadId: lane.uploadId });
    await ctx.publish([done]);
  }
}

/** Abort the uploads and re-plan the blob; only the first parter to notice does the re-plan. */
async function abandon(ctx: Ctx, message: CopyPartMessage, lanes: LaneUpload[]) {
  const claimed: LaneUpload[] = [];
  for (const lane of lanes) {
    if (await clearManifest(ctx.sinks[lane.d], lane.key, lane.uploadId)) claimed.push(lane);
    await ctx.sinks[lane.d].abort(lane.key, lane.uploadId);
  }
  for (const lane of claimed) await ctx.ledger.forgetUpload(ctx.runId, lane.uploadId);
  if (claimed.length > 0) {
    const to = claimed.length === lanes.length ? message.blob.to : claimed.map((lane) => lane.d);
    await replan(ctx, { ...message, blob: { ...message.blob, to } });
  }
}

/**
 * The upload this part was for no longer exists. Completed by another delivery (its copy is there), or
 * replaced by a newer upload of the blob (the manifest names that one): nothing to do. Otherwise it was
 * abandoned under a message that still needs it (aborted by the bucket's lifecycle rule while the message
 * waited in a dead-letter queue, say): plan the blob afresh, so that a redriven message still copies it.
 */
async function uploadGone(ctx: Ctx, message: CopyPartMessage, lane: LaneUpload) {
  const sink = ctx.sinks[lane.d];
  const log = ctx.log.child({ name: message.blob.name, uploadId: lane.uploadId });
  const copy = await sink.head(lane.key);
  if (copy && isCopyOf(copy.metadata, message.blob)) {
    log.info('upload already completed; part not needed');
    return;
  }
  const manifest = await readManifest(sink, lane.key);
  if (manifest?.uploadId !== lane.uploadId) {
    // Replaced by a newer upload, or abandoned by whoever cleared the manifest (and re-planned the blob then).
    log.info('upload no longer current; part dropped', { current: manifest?.uploadId });
    return;
  }
  // The manifest still names it: nobody has planned the blob again. The parter that clears the manifest does.
  if (!(await clearManifest(sink, lane.key, lane.uploadId))) return;
  log.warn('upload no longer exists and no copy is there; planning the blob again');
  await ctx.ledger.forgetUpload(ctx.runId, lane.uploadId);
  await replan(ctx, onlyIn(ctx.settings, message, lane.d));
}
