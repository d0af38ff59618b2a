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
import { inDestination, keyIn, targetsOf } from '../destinations';
import { MESSAGE_VERSION, type BlobRef, type CopyBlobsMessage } from '../messages';
import { CONSERVATIVE_PART_BYTES_PER_SECOND } from '../plan';
import { isTransient, withRetry } from '../retry';
import type { BlobOutcome } from '../run-ledger';
import type { BlobRead } from '../stores/types';
import { UPLOAD_CHUNK_BYTES, byteCounter, collectBody, writeEach } from '../streams';
import type { STAGE_SPECS } from './specs';

type Ctx = ContextOf<(typeof STAGE_SPECS)['download']>;
type MessageBlob = CopyBlobsMessage['blobs'][number];

/** What became of one blob. */
type Result =
  /** Copied to `copiedTo` (destinations by place); with several destinations, some may have failed. */
  | { status: 'copied'; bytes: number; copiedTo: number[]; failed: { d: number; error: unknown }[] }
  | { status: 'skipped'; reason: string }
  /** It has grown to the large-blob size since it was listed: the multipart path takes its current version. */
  | { status: 'large'; blob: BlobRef };

/** Where one blob's copy goes: a destination (by place) and its key there. */
interface Target {
  d: number;
  key: string;
}

/** Time kept back at the end of an invocation to record outcomes and send what is left. */
const RESERVE_MS = 5_000;

export async function download(ctx: Ctx, message: CopyBlobsMessage): Promise<void> {
  const outcomes: BlobOutcome[] = [];
  const grown: { blob: BlobRef; i?: number }[] = [];
  const again: { blob: MessageBlob; error: unknown }[] = [];
  const later: MessageBlob[] = [];
  let started = 0;
  const several = (ctx.settings.also?.length ?? 0) > 0;
  await mapLimit(message.blobs, ctx.tuning.downloadConcurrency, async (blob) => {
    // A blob is begun only when it fits in the time left at the conservative rate (the first always is):
    // the rest go to another invocation, so no invocation runs past its timeout however big the message.
    const needMs = RESERVE_MS + (blob.size / CONSERVATIVE_PART_BYTES_PER_SECOND) * 1000;
    if (started > 0 && ctx.remainingMs() < needMs) {
      later.push(blob);
      return;
    }
    started++;
    const targets = targetsOf(ctx.settings, blob);
    try {
      const result = await copySmallBlob(ctx, blob, targets);
      if (result.status === 'large') grown.push({ blob: result.blob, i: blob.i });
      else if (result.status === 'copied' && !several) outcomes.push({ name: blob.name, index: blob.i, status: 'copied', bytes: result.bytes, path: 'single' });
      else if (result.status === 'copied') {
        // Each destination's outcome on its own; one that failed for a passing reason goes round again, alone.
        const one = { name: blob.name, index: blob.i };
        for (const d of result.copiedTo) outcomes.push(inDestination(ctx.settings, blob, d, { ...one, status: 'copied', bytes: result.bytes, path: 'single' }));
        const passing = result.failed.filter((f) => isTransient(f.error));
        if (passing.length > 0) again.push({ blob: { ...blob, to: passing.map((f) => f.d) }, error: passing[0].error });
        for (const { d, error } of result.failed.filter((f) => !isTransient(f.error))) {
          const failed = inDestination(ctx.settings, blob, d, { ...one, status: 'failed' as const, reason: failureReason(error) });
          ctx.log.error('blob failed', { name: blob.name, reason: failed.reason });
          outcomes.push(failed);
        }
      } else outcomes.push({ name: blob.name, index: blob.i, status: 'skipped', reason: result.reason });
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

/** Copy one blob in one PUT to each target destination: its current version if it changed since it was listed. */
export async function copySmallBlob(ctx: Ctx, listed: BlobRef, destinations: number[] = [0]): Promise<Result> {
  const targets = destinations.map((d) => ({ d, key: keyIn(ctx.settings, d, listed.name) }));
  let blob = listed;
  for (let replans = 0; ; replans++) {
    try {
      if (targets.length === 1) return { status: 'copied', bytes: await copyVersion(ctx, targets[0], blob), copiedTo: [targets[0].d], failed: [] };
      return { status: 'copied', ...(await copyVersionToEach(ctx, targets, blob)) };
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

/** Copy one version of a blob, pinned to its ETag, to one destination; returns the bytes written. */
async function copyVersion(ctx: Ctx, target: Target, blob: BlobRef): Promise<number> {
  const sink = ctx.sinks[target.d];
  const read = await ctx.source.read(blob.name, blob.etag);
  if (read.length <= UPLOAD_CHUNK_BYTES && read.length === blob.size) {
    // Most blobs: read whole (a few MiB at most per blob in flight), checked before a byte is written, and
    // sent with the CRC32C computed on the way in the request's header. The read resumes a cut body and
    // the PUT retries itself, so no retry is needed around them.
    const body = await readChecked(read);
    await sink.put(target.key, body.buffer, objectAttributes(read, blob, ctx.settings.writing), {
      length: read.length, contentMd5: read.contentMd5, checksumCrc32c: body.crc32c,
    });
    return read.length;
  }
  // A streamed PUT is not retried by the SDK (its body cannot be replayed): retried here, each try a fresh read.
  let first: BlobRead | undefined = read;
  return withRetry(async () => {
    const current = first ?? (await ctx.source.read(blob.name, blob.etag));
    first = undefined;
    return streamVersion(ctx, target, blob, current);
  }, {
    ...ctx.tuning.retry,
    onRetry: (error, attempt) => ctx.log.warn('retrying blob', { name: blob.name, attempt, error }),
  });
}

/** The whole body of a small blob, checked against its Content-MD5 before a byte is written anywhere. */
async function readChecked(read: BlobRead) {
  const md5 = read.contentMd5 ? createHash('md5') : undefined;
  const body = await collectBody(read.body, read.length, { hash: md5 });
  const written = md5?.digest('base64');
  if (written !== read.contentMd5) {
    throw new BlobFailure(`the bytes read have MD5 ${written}, not the blob's Content-MD5 ${read.contentMd5}; nothing was written`);
  }
  return body;
}

async function streamVersion(ctx: Ctx, target: Target, blob: BlobRef, read: BlobRead): Promise<number> {
  const sink = ctx.sinks[target.d];
  const md5 = read.contentMd5 ? createHash('md5') : undefined;
  const counted = byteCounter(read.body, { hash: md5 });
  try {
    // S3 itself rejects bytes that differ from Content-MD5; not every S3-compatible server does, so check too.
    await sink.put(target.key, counted.stream, objectAttributes(read, blob, ctx.settings.writing), { length: read.length, contentMd5: read.contentMd5 });
  } catch (error) {
    counted.discard();
    throw counted.sourceError() ?? error;
  }
  const problem = bodyProblem(read, md5?.digest('base64'), counted.bytes());
  if (problem) {
    await sink.delete(target.key);
    throw new BlobFailure(`${problem}; the copy was deleted`);
  }
  return read.length;
}

/** Why the bytes that went out are not the blob's, or undefined when they are. */
function bodyProblem(read: BlobRead, md5: string | undefined, bytes: number): string | undefined {
  if (md5 !== read.contentMd5) return `the bytes read have MD5 ${md5}, not the blob's Content-MD5 ${read.contentMd5}`;
  if (bytes !== read.length) return `read ${bytes} bytes but the blob has ${read.length}`;
  return undefined;
}

/**
 * Copy one version to several destinations from one read of the blob: a small one's bytes held once and put
 * to each, a larger one's stream split to every PUT at once. A destination that fails does not stop the
 * others; one that failed for a passing reason is tried again from a fresh read, the others not written twice.
 */
async function copyVersionToEach(ctx: Ctx, targets: Target[], blob: BlobRef): Promise<{ bytes: number; copiedTo: number[]; failed: { d: number; error: unknown }[] }> {
  const copiedTo: number[] = [];
  const failed: { d: number; error: unknown }[] = [];
  let pending = targets;
  let bytes = 0;
  for (let attempt = 1; pending.length > 0; attempt++) {
    const read = await ctx.source.read(blob.name, blob.etag);
    bytes = read.length;
    const attributes = objectAttributes(read, blob, ctx.settings.writing);
    let settled: PromiseSettledResult<unknown>[];
    let problem: string | undefined;
    let sourceError: Error | undefined;
    if (read.length <= UPLOAD_CHUNK_BYTES && read.length === blob.size) {
      const body = await readChecked(read);
      // The PUTs of a body in memory retry themselves: what fails here has failed for good.
      settled = await Promise.allSettled(pending.map((t) => ctx.sinks[t.d].put(t.key, body.buffer, attributes, {
        length: read.length, contentMd5: read.contentMd5, checksumCrc32c: body.crc32c,
      })));
      attempt = ctx.tuning.retry.attempts;
    } else {
      const md5 = read.contentMd5 ? createHash('md5') : undefined;
      const counted = byteCounter(read.body, { hash: md5 });
      settled = await writeEach(counted, pending.length, (body, n) =>
        ctx.sinks[pending[n].d].put(pending[n].key, body, attributes, { length: read.length, contentMd5: read.contentMd5 }));
      sourceError = counted.sourceError();
      // A changed blob is planned again whole, for every destination still to write.
      if (sourceError instanceof SourceChangedError) throw sourceError;
      problem = bodyProblem(read, md5?.digest('base64'), counted.bytes());
    }
    const again: Target[] = [];
    for (const [n, result] of settled.entries()) {
      const target = pending[n];
      if (result.status === 'fulfilled' && problem) {
        await ctx.sinks[target.d].delete(target.key);
        failed.push({ d: target.d, error: new BlobFailure(`${problem}; the copy was deleted`) });
      } else if (result.status === 'fulfilled') {
        copiedTo.push(target.d);
      } else {
        const error = sourceError ?? result.reason;
        if (isTransient(error) && attempt < ctx.tuning.retry.attempts) again.push(target);
        else failed.push({ d: target.d, error });
      }
    }
    if (again.length > 0) {
      ctx.log.warn('retrying blob', { name: blob.name, attempt, destinations: again.map((t) => t.d) });
      await new Promise((resolve) => setTimeout(resolve, Math.min(ctx.tuning.retry.baseDelayMs * 2 ** attempt, ctx.tuning.retry.maxDelayMs)));
    }
    pending = again;
  }
  return { bytes, copiedTo, failed };
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
