/**
 * Stage 6: complete a multipart upload once every part is in, and check it. Asked
 * once per upload (by the parter whose part completed the count), it lists the
 * parts, checks their sizes against the plan, completes, and then verifies the
 * object against the blob's Content-MD5 when it has one.
 *
 * Verification reads the whole object back from S3. A copy in a class S3 will not
 * give back without a restore (GLACIER, DEEP_ARCHIVE) is checked from the source
 * instead: the blob is read again from Azure, pinned to its ETag, for its MD5 (which
 * proves the read was the blob's content) and for S3's composite checksum of the
 * planned parts, compared with the one S3 computed from the bytes it stores (which
 * proves the copy holds exactly those bytes). Either read takes longer than one
 * invocation may run for a large blob: it reads for as long as the invocation has
 * time, saves the hashes' state and the offset in the run state, and continues in
 * the next invocation (a parts-done message with `verify`). One verifier at a time:
 * a claim with a lease, so a duplicate delivery starts no second read. Until it ends
 * the manifest stays, marked verifying, so no run takes the object for a finished copy.
 */
import type { Readable } from 'node:stream';
import { createMD5 } from 'hash-wasm';
import { isCopyOf } from '../attributes';
import { CompositeCrc32c } from '../composite-checksum';
import type { ContextOf } from '../context';
import { SourceChangedError, TransientError } from '../errors';
import type { PartsDoneMessage } from '../messages';
import { partRange } from '../plan';
import type { BlobOutcome, VerificationProgress } from '../run-ledger';
import { isReadableClass, storageClassOf } from '../selection';
import type { UploadedPart } from '../stores/types';
import { clearManifest, manifestKey, readManifest } from '../uploads';
import { inDestination, onlyIn } from '../destinations';
import { replan } from './largefile-initializer';
import type { STAGE_SPECS } from './specs';

type Ctx = ContextOf<(typeof STAGE_SPECS)['recombinator']>;

/** Time kept back from waiting on a completion, to hand on to the next invocation. */
const COMPLETE_RESERVE_MS = 2_000;
/** A completion claim outlives its invocation by this much; then, the object still missing, it is asked for again. */
const COMPLETION_LEASE_MARGIN_MS = 30_000;
/**
 * After asking S3 to complete, this long is given to it before the upload is looked at again: while it completes,
 * the upload may already be gone and the object not there yet (moto), which is not an abandoned upload.
 */
export const COMPLETION_WINDOW_MS = 5 * 60_000;
/** The most of the copy one read-back request asks for. */
const VERIFY_RANGE_BYTES = 128 * 1024 * 1024;
/**
 * A copy found after waiting is checked only with this much time left; otherwise the next invocation checks it
 * (and, finding it at its first look, does so whatever its time: so a short timeout cannot hand it on for ever).
 */
const FINISH_MIN_MS = 2_000;
const POLL_MS = 1_000;

export async function recombinator(ctx: Ctx, message: PartsDoneMessage): Promise<void> {
  if (message.verify) return verify(ctx, message);
  const { blob, key, uploadId, partCount, partBytes } = message;
  const log = ctx.log.child({ name: blob.name, uploadId });
  if (message.completingSince && Date.now() - Date.parse(message.completingSince) < COMPLETION_WINDOW_MS) {
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
  if (!(await ctx.ledger.claimCompletion(ctx.runId, uploadId, ctx.remainingMs() + COMPLETION_LEASE_MARGIN_MS))) {
    return awaitCompletion(ctx, { ...message, completingSince: message.completingSince ?? new Date().toISOString() });
  }
  // Completing a large upload can take S3 longer than the invocation has left (moto: about 15 s a GiB). The
  // answer is waited for only while there is time; then the next invocation looks for the object instead.
  const since = new Date().toISOString();
  let completion: ReturnType<typeof ctx.sink.complete> | undefined;
  let outcome: Awaited<ReturnType<typeof ctx.sink.complete>> | 'waiting';
  try {
    // Marked before the object appears, so that nothing takes it for a finished copy until it is checked.
    if (blob.contentMd5) await markVerifying(ctx, message);
    completion = ctx.sink.complete(key, uploadId, parts);
    outcome = await raceTime(completion, ctx.remainingMs() - COMPLETE_RESERVE_MS);
  } catch (error) {
    // Failed before asking, or S3 answered with an error: nothing is completing, so the retry may ask again at
    // once (a claim kept would have it wait for an object nobody is making, for the claim's whole lease).
    await ctx.ledger.releaseCompletion(ctx.runId, uploadId).catch(() => undefined);
    throw error;
  }
  if (outcome === 'waiting') {
    completion?.catch((error) => log.warn('completion answered after the invocation stopped waiting', { error: String(error) }));
    log.info('completion under way; the next invocation looks for the object', { parts: parts.length });
    await ctx.publish([{ ...message, completingSince: since }]);
    return;
  }
  if (outcome === 'missing') return settleMissing(ctx, message);
  log.info('multipart upload completed', { parts: parts.length, bytes: blob.size });
  if (ctx.remainingMs() < FINISH_MIN_MS) {
    // The object is there: the next invocation finds it at once, with time to check it.
    await ctx.publish([{ ...message, completingSince: since }]);
    return;
  }
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
 * then hand on again. While the asker's claim lasts (its invocation and a margin), nobody asks S3 a second time;
 * after that, with the upload still there and no object, the next invocation claims it and asks again.
 */
async function awaitCompletion(ctx: Ctx, message: PartsDoneMessage): Promise<void> {
  const { blob, key } = message;
  for (let look = 1; ; look++) {
    // A store busy completing may be slow to answer even a HEAD: the invocation hands on rather than wait past its time.
    const head = await raceTime(ctx.sink.head(key), ctx.remainingMs() - COMPLETE_RESERVE_MS);
    if (head === 'waiting') break;
    if (head && isCopyOf(head.metadata, blob)) {
      ctx.log.info('multipart upload completed', { name: blob.name, uploadId: message.uploadId, waitedSince: message.completingSince });
      const manifest = await readManifest(ctx.sink, key);
      if (manifest?.uploadId === message.uploadId) {
        if (look > 1 && ctx.remainingMs() < FINISH_MIN_MS) break; // found late in this invocation: the next checks it
        return finish(ctx, message);
      }
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
  // The outcome first: should it fail, the upload's state (the check's, saved whole) is still there for the retry,
  // which records it without reading the copy again; recorded twice, it counts once.
  await settle(ctx, message, outcome);
  await clearManifest(ctx.sink, message.key, message.uploadId);
  await ctx.ledger.forgetUpload(ctx.runId, message.uploadId);
}

async function settle(ctx: Ctx, message: PartsDoneMessage, outcome: Omit<BlobOutcome, 'name' | 'index'>) {
  if (!message.unit) return;
  // Several destinations: this upload's destination's outcome, of the blob's targets (the blob's when each has one).
  await ctx.ledger.settle(ctx.runId, message.unit, [{ name: message.blob.name, index: message.i, ...inDestination(ctx.settings, message.blob, message.d ?? 0, outcome) }]);
}

async function markVerifying(ctx: Ctx, message: PartsDoneMessage) {
  const manifest = await readManifest(ctx.sink, message.key);
  if (manifest?.uploadId === message.uploadId && manifest.phase !== 'verifying') {
    await ctx.sink.putJson(manifestKey(message.key), { ...manifest, phase: 'verifying' });
  }
}

/**
 * Time kept back from reading, to save the MD5's state and send the next message. At least 2 s: a busy CI machine
 * took over a second for that save and send, and a 5-second local function with a 1-second reserve ran past its end.
 */
export function verifyReserveMs(remainingMs: number): number {
  return Math.min(30_000, Math.max(2_000, remainingMs * 0.25));
}

/** The class the run wrote this blob's copy in cannot be read back: the copy is checked from the source. */
export function checksFromSource(message: Pick<PartsDoneMessage, 'run' | 'blob'>): boolean {
  return !isReadableClass(storageClassOf(message.run.writing, message.blob.tier));
}

/** Read and hash as much of the copy (or of the blob) as this invocation has time for; decide when it is all read. */
async function verify(ctx: Ctx, message: PartsDoneMessage): Promise<void> {
  const { blob, key, uploadId } = message;
  const log = ctx.log.child({ name: blob.name, uploadId });
  const fromSource = checksFromSource(message);
  const reserve = verifyReserveMs(ctx.remainingMs());
  const claim = await ctx.ledger.claimVerification(ctx.runId, uploadId, ctx.remainingMs() + ctx.tuning.verificationLeaseMarginMs);
  if (!claim) {
    log.info('another invocation is verifying this copy; nothing to do');
    return;
  }
  // A check from the source goes on only from a state of its own (one begun by an older release starts again).
  const from: VerificationProgress = fromSource && claim.offset > 0 && claim.crc32c === undefined ? { offset: 0 } : claim;
  const md5 = await createMD5();
  md5.init();
  if (from.state) md5.load(Buffer.from(from.state, 'base64'));
  const composite = fromSource ? new CompositeCrc32c(blob.size, message.partBytes, from.offset, from.crc32c) : undefined;
  let offset = from.offset;
  /** The MD5's state once every byte is read (saved before the digest ends it, for a retry of what follows). */
  let whole: string | undefined;
  const save = () =>
    ctx.ledger.saveVerification(ctx.runId, uploadId, claim.version, { offset, state: whole ?? Buffer.from(md5.save()).toString('base64'), crc32c: composite?.save() });
  try {
    // The copy is read back a bounded range at a time (a request's time bounded too; an emulator that reads the
    // whole object for any range answers a bounded one quickly); the source, for the rest of the blob at once.
    while (offset < blob.size && ctx.remainingMs() >= reserve) {
      const body = fromSource
        ? await readSource(ctx, message, offset)
        : await ctx.sink.read(key, { start: offset, end: Math.min(blob.size, offset + VERIFY_RANGE_BYTES) - 1 });
      for await (const chunk of body as AsyncIterable<Buffer>) {
        composite?.update(chunk);
        md5.update(chunk);
        offset += chunk.length;
        if (offset < blob.size && ctx.remainingMs() < reserve) break;
      }
    }
    if (offset < blob.size) {
      await save();
      log.info('verification continues in the next invocation', { offset, of: blob.size, fromSource });
      await ctx.publish([{ ...message, verify: true }]);
      return;
    }
    whole = Buffer.from(md5.save()).toString('base64');
    const digest = Buffer.from(md5.digest('binary')).toString('base64');
    if (composite) return await judgeFromSource(ctx, message, digest, composite.value());
    if (digest !== blob.contentMd5 || offset !== blob.size) {
      return await reject(ctx, message, `the copy's MD5 ${digest} differs from the blob's Content-MD5 ${blob.contentMd5}; the copy was deleted`);
    }
    log.info('copy verified against the blob\'s Content-MD5', { bytes: blob.size });
    await done(ctx, message, { status: 'copied', bytes: blob.size, path: 'multipart' });
  } catch (error) {
    if (error instanceof SourceChangedError) return changedSinceCopied(ctx, message);
    // Keep what was read and free the claim, so that the retry goes on at once (a claim kept would have the
    // retry take the check for another invocation's, and drop it).
    await save().catch((saveError: unknown) => log.warn('could not save how far verification got', { error: saveError }));
    throw error;
  }
}

/** The rest of the blob from `offset`, read from Azure pinned to the ETag it was copied at. */
async function readSource(ctx: Ctx, message: PartsDoneMessage, offset: number): Promise<Readable> {
  const { blob } = message;
  const read = await ctx.source.read(blob.name, blob.etag, { start: offset, end: blob.size - 1 });
  if (read.length !== blob.size - offset) {
    read.body.on('error', () => undefined).destroy();
    throw new TransientError(`Azure returned ${read.length} bytes for a range of ${blob.size - offset}`);
  }
  return read.body;
}

/**
 * Every byte of the blob was read from Azure: its MD5 must be the blob's Content-MD5 (the read was the blob's
 * content), and the composite checksum of those bytes the one S3 keeps for the copy (the copy holds them).
 */
async function judgeFromSource(ctx: Ctx, message: PartsDoneMessage, md5: string, composite: string): Promise<void> {
  const { blob, key } = message;
  if (md5 !== blob.contentMd5) {
    return reject(ctx, message, `the blob's MD5 ${md5}, read from Azure to check its copy, differs from its Content-MD5 ${blob.contentMd5}; the copy was deleted`);
  }
  const copy = await ctx.sink.head(key);
  if (!copy || !isCopyOf(copy.metadata, blob)) {
    const reason = 'the copy was removed or replaced before its checksum could be checked';
    ctx.log.error('blob failed', { name: blob.name, reason });
    return done(ctx, message, { status: 'failed', reason });
  }
  const cls = copy.storageClass ?? storageClassOf(message.run.writing, blob.tier);
  if (!copy.checksumCrc32c) {
    return reject(ctx, message, `S3 reports no CRC32C checksum for the copy, and a copy in ${cls} cannot be read back, so its bytes could not be checked; the copy was deleted`);
  }
  if (copy.checksumCrc32c !== composite) {
    return reject(ctx, message, `the copy's composite CRC32C in S3 ${copy.checksumCrc32c} differs from ${composite}, computed from the blob read from Azure; the copy was deleted`);
  }
  ctx.log.info('copy verified from the source (its class cannot be read back): the blob\'s Content-MD5 and S3\'s composite checksum', { name: blob.name, bytes: blob.size, storageClass: cls });
  await done(ctx, message, { status: 'copied', bytes: blob.size, path: 'multipart', fromSource: true });
}

/** The copy is wrong, or cannot be shown right: better no object than a wrong one. */
async function reject(ctx: Ctx, message: PartsDoneMessage, reason: string): Promise<void> {
  await ctx.sink.delete(message.key);
  ctx.log.error('blob failed', { name: message.blob.name, uploadId: message.uploadId, reason });
  await done(ctx, message, { status: 'failed', reason });
}

/**
 * The blob changed (or went) after it was copied, before its copy could be checked from it: the copy cannot be
 * checked now. It goes, as an unchecked copy would, and the blob's current version is planned afresh, as when
 * it changes during the copy.
 */
async function changedSinceCopied(ctx: Ctx, message: PartsDoneMessage): Promise<void> {
  const { blob, key, uploadId } = message;
  ctx.log.info('blob changed before its copy could be checked from it; deleting the copy and re-planning', { name: blob.name, uploadId });
  const copy = await ctx.sink.head(key);
  if (copy && isCopyOf(copy.metadata, blob)) await ctx.sink.delete(key);
  await clearManifest(ctx.sink, key, uploadId);
  await ctx.ledger.forgetUpload(ctx.runId, uploadId);
  // With several destinations, only this one's copy went: planned again for it alone.
  await replan(ctx, onlyIn(ctx.settings, message, message.d ?? 0));
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
