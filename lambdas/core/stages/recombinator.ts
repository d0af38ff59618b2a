/**
 * Stage 6: complete a multipart upload once every part is in, and check it. Asked
 * once per upload (by the parter whose part completed the count), it lists the
 * parts, checks their sizes against the plan, completes, and then verifies the
 * object against the blob's Content-MD5 when it has one.
 *
 * Verification reads the whole object, which for a large blob takes longer than
 * one invocation may run: it reads for as long as the invocation has time, saves
 * the MD5's state and the offset in the run state, and continues in the next
 * invocation (a parts-done message with `verify`). One verifier at a time: a claim
 * with a lease, so a duplicate delivery starts no second re-read. Until it ends the
 * manifest stays, marked verifying, so no run takes the object for a finished copy.
 */
import { createMD5 } from 'hash-wasm';
import { isCopyOf } from '../attributes';
import type { ContextOf } from '../context';
import { TransientError } from '../errors';
import type { PartsDoneMessage } from '../messages';
import { partRange } from '../plan';
import type { BlobOutcome } from '../run-ledger';
import type { UploadedPart } from '../stores/types';
import { clearManifest, manifestKey, readManifest } from '../uploads';
import type { STAGE_SPECS } from './specs';

type Ctx = ContextOf<(typeof STAGE_SPECS)['recombinator']>;

/** Time kept back from waiting on a completion, to hand on to the next invocation. */
const COMPLETE_RESERVE_MS = 2_000;
/** A completion not seen to finish within this long is asked for again (it was lost with its invocation). */
export const COMPLETION_TAKEOVER_MS = 5 * 60_000;
const POLL_MS = 1_000;

export async function recombinator(ctx: Ctx, message: PartsDoneMessage): Promise<void> {
  if (message.verify) return verify(ctx, message);
  const { blob, key, uploadId, partCount, partBytes } = message;
  const log = ctx.log.child({ name: blob.name, uploadId });
  if (message.completingSince && Date.now() - Date.parse(message.completingSince) < COMPLETION_TAKEOVER_MS) {
    return awaitCompletion(ctx, message);
  }

  // An older release's message comes after every part: stop reading pages at the first gap ("not yet").
  const gapSeen = (parts: UploadedPart[]) => parts.some((p, i) => p.partNumber !== i + 1);
  const parts = await ctx.sink.listParts(key, uploadId, message.v === 1 ? gapSeen : undefined);
  if (parts === undefined) return settleMissing(ctx, message);
  if (parts.length < partCount || gapSeen(parts)) {
    if (message.v === 1) {
      log.debug('upload not complete yet', { have: parts.length, of: partCount });
      return;
    }
    throw new TransientError(`the upload lists ${parts.length} of ${partCount} parts though every part was counted in; trying again`);
  }

  const problem = checkParts(parts, blob.size, partBytes, partCount);
  if (problem) {
    log.error('parts do not add up to the blob; abandoning the upload', { problem });
    await ctx.sink.abort(key, uploadId);
    await clearManifest(ctx.sink, key, uploadId);
    await ctx.ledger.forgetUpload(ctx.runId, uploadId);
    await settle(ctx, message, { status: 'failed', reason: `multipart upload inconsistent: ${problem}` });
    return;
  }

  // One completion at a time (duplicate deliveries, a parter's part counted again): S3 completing an upload
  // twice at once is wasted work at best; a completion already asked for is waited for instead.
  if (!(await ctx.ledger.claimCompletion(ctx.runId, uploadId, COMPLETION_TAKEOVER_MS))) {
    return awaitCompletion(ctx, { ...message, completingSince: message.completingSince ?? new Date().toISOString() });
  }
  // Marked before the object appears, so that nothing takes it for a finished copy until it is checked.
  if (blob.contentMd5) await markVerifying(ctx, message);
  // Completing a large upload can take S3 longer than the invocation has left (moto: about 15 s a GiB). The
  // answer is waited for only while there is time; then the next invocation looks for the object instead.
  const since = new Date().toISOString();
  const completion = ctx.sink.complete(key, uploadId, parts);
  const outcome = await raceTime(completion, ctx.remainingMs() - COMPLETE_RESERVE_MS);
  if (outcome === 'waiting') {
    completion.catch((error) => log.warn('completion answered after the invocation stopped waiting', { error: String(error) }));
    log.info('completion under way; the next invocation looks for the object', { parts: parts.length });
    await ctx.publish([{ ...message, completingSince: since }]);
    return;
  }
  if (outcome === 'missing') return settleMissing(ctx, message);
  log.info('multipart upload completed', { parts: parts.length, bytes: blob.size });
  await finish(ctx, message);
}

/** Resolves with the promise's value, or 'waiting' once `ms` have passed. */
async function raceTime<T>(promise: Promise<T>, ms: number): Promise<T | 'waiting'> {
  let timer: NodeJS.Timeout | undefined;
  const waited = new Promise<'waiting'>((resolve) => (timer = setTimeout(() => resolve('waiting'), Math.max(0, ms))));
  try {
    return await Promise.race([promise, waited]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A completion was asked for and not seen to end: look for the object (a HEAD a second) while there is time,
 * then hand on again. Until the takeover time passes, nobody asks S3 to complete it a second time.
 */
async function awaitCompletion(ctx: Ctx, message: PartsDoneMessage): Promise<void> {
  const { blob, key } = message;
  for (;;) {
    // A store busy completing may be slow to answer even a HEAD: the invocation hands on rather than wait past its time.
    const head = await raceTime(ctx.sink.head(key), ctx.remainingMs() - COMPLETE_RESERVE_MS);
    if (head === 'waiting') break;
    if (head && isCopyOf(head.metadata, blob)) {
      ctx.log.info('multipart upload completed', { name: blob.name, uploadId: message.uploadId, waitedSince: message.completingSince });
      const manifest = await readManifest(ctx.sink, key);
      if (manifest?.uploadId === message.uploadId) return finish(ctx, message);
      // The manifest no longer names the upload: an earlier delivery has checked and recorded the copy.
      return settle(ctx, message, { status: 'copied', bytes: blob.size, path: 'multipart' });
    }
    if (ctx.remainingMs() < COMPLETE_RESERVE_MS + POLL_MS) break;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  await ctx.publish([{ ...message }]);
}

/** The object is complete: check it against the blob's Content-MD5, then forget the upload and record the copy. */
async function finish(ctx: Ctx, message: PartsDoneMessage): Promise<void> {
  if (message.blob.contentMd5) return verify(ctx, { ...message, verify: true });
  await done(ctx, message, { status: 'copied', bytes: message.blob.size, path: 'multipart' });
}

async function done(ctx: Ctx, message: PartsDoneMessage, outcome: Omit<BlobOutcome, 'name' | 'index'>) {
  await clearManifest(ctx.sink, message.key, message.uploadId);
  await ctx.ledger.forgetUpload(ctx.runId, message.uploadId);
  await settle(ctx, message, outcome);
}

async function settle(ctx: Ctx, message: PartsDoneMessage, outcome: Omit<BlobOutcome, 'name' | 'index'>) {
  if (message.unit) await ctx.ledger.settle(ctx.runId, message.unit, [{ name: message.blob.name, index: message.i, ...outcome }]);
}

async function markVerifying(ctx: Ctx, message: PartsDoneMessage) {
  const manifest = await readManifest(ctx.sink, message.key);
  if (manifest?.uploadId === message.uploadId && manifest.phase !== 'verifying') {
    await ctx.sink.putJson(manifestKey(message.key), { ...manifest, phase: 'verifying' });
  }
}

/** Time kept back from reading, to save the MD5's state and send the next message. */
export function verifyReserveMs(remainingMs: number): number {
  return Math.min(30_000, Math.max(1_000, remainingMs * 0.25));
}

/** Read and hash as much of the copy as this invocation has time for; decide when it is all read. */
async function verify(ctx: Ctx, message: PartsDoneMessage): Promise<void> {
  const { blob, key, uploadId } = message;
  const log = ctx.log.child({ name: blob.name, uploadId });
  const reserve = verifyReserveMs(ctx.remainingMs());
  const claim = await ctx.ledger.claimVerification(ctx.runId, uploadId, ctx.remainingMs() + 30_000);
  if (!claim) {
    log.info('another invocation is verifying this copy; nothing to do');
    return;
  }
  const md5 = await createMD5();
  md5.init();
  if (claim.state) md5.load(Buffer.from(claim.state, 'base64'));
  let offset = claim.offset;
  if (offset < blob.size) {
    const body = await ctx.sink.read(key, { start: offset, end: blob.size - 1 });
    for await (const chunk of body as AsyncIterable<Buffer>) {
      md5.update(chunk);
      offset += chunk.length;
      if (offset < blob.size && ctx.remainingMs() < reserve) break;
    }
  }
  if (offset < blob.size) {
    await ctx.ledger.saveVerification(ctx.runId, uploadId, claim.version, { offset, state: Buffer.from(md5.save()).toString('base64') });
    log.info('verification continues in the next invocation', { offset, of: blob.size });
    await ctx.publish([{ ...message, verify: true }]);
    return;
  }
  const digest = Buffer.from(md5.digest('binary')).toString('base64');
  if (digest !== blob.contentMd5 || offset !== blob.size) {
    // Better no object than a wrong one.
    await ctx.sink.delete(key);
    const reason = `the copy's MD5 ${digest} differs from the blob's Content-MD5 ${blob.contentMd5}; the copy was deleted`;
    log.error('blob failed', { reason });
    await done(ctx, message, { status: 'failed', reason });
    return;
  }
  log.info('copy verified against the blob\'s Content-MD5', { bytes: blob.size });
  await done(ctx, message, { status: 'copied', bytes: blob.size, path: 'multipart' });
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
async function settleMissing(ctx: Ctx, message: PartsDoneMessage) {
  const { blob, key, uploadId } = message;
  const head = await ctx.sink.head(key);
  if (head && isCopyOf(head.metadata, blob)) {
    // While the manifest still names the upload, whoever completed it has not checked and recorded it yet.
    const manifest = await readManifest(ctx.sink, key);
    if (manifest?.uploadId === uploadId) return finish(ctx, message);
    await settle(ctx, message, { status: 'copied', bytes: blob.size, path: 'multipart' });
    return;
  }
  // No copy, no upload: a manifest still naming the upload names nothing.
  await clearManifest(ctx.sink, key, uploadId);
  ctx.log.info('upload no longer exists and no copy of this version is there; it was abandoned', { name: blob.name });
}
