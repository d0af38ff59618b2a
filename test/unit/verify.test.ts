/**
 * Checking a large copy against the blob's Content-MD5 takes longer than one
 * invocation may run when the blob is big: the recombinator reads while it has
 * time, saves the MD5's state and the offset, and the next invocation goes on from
 * there. One verifier at a time: a duplicate delivery meanwhile reads nothing.
 * The invocation's clock here runs by the bytes read, so the slices are certain.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { SOURCE_META } from '../../lambdas/core/attributes';
import { compositeCrc32c } from '../../lambdas/core/composite-checksum';
import { crc32cBase64 } from '../../lambdas/core/crc32c';
import { SourceChangedError } from '../../lambdas/core/errors';
import { MESSAGE_VERSION, type PartsDoneMessage, type StageMessage } from '../../lambdas/core/messages';
import { planParts } from '../../lambdas/core/plan';
import { checksFromSource, recombinator, verifyReserveMs } from '../../lambdas/core/stages/recombinator';
import type { BlobSource, ObjectSink } from '../../lambdas/core/stores/types';
import { outcomesOf, runSettings, runWithUnit, stageContext } from '../helpers/context';

const MiB = 1024 * 1024;
const SIZE = 48 * MiB + 12_345;
const bytes = randomBytes(SIZE);
const md5 = createHash('md5').update(bytes).digest('base64');

/** Each MiB read takes 400 ms of the invocation's 10 s: about 19 MiB an invocation, with a quarter kept back. */
function harness(contentMd5: string) {
  const reads: { start: number; end: number }[] = [];
  const deleted: string[] = [];
  let used = 0;
  const sink = {
    async read(_key: string, range?: { start: number; end: number }) {
      const start = range?.start ?? 0;
      reads.push({ start, end: range?.end ?? SIZE - 1 });
      const chunks: Buffer[] = [];
      for (let at = start; at < SIZE; at += MiB) chunks.push(bytes.subarray(at, Math.min(SIZE, at + MiB)));
      return Readable.from(chunks).on('data', () => void (used += 400));
    },
    async delete(key: string) {
      deleted.push(key);
    },
    getJson: async () => undefined,
    putJson: async () => true,
    deleteState: async () => undefined,
  } as unknown as ObjectSink;
  const { ctx, published, ledger } = stageContext({ sink, remainingMs: () => 10_000 - used });
  const message: PartsDoneMessage = {
    v: MESSAGE_VERSION, kind: 'parts-done', runId: 'run-test', unit: 'u', run: runSettings(), key: 'big.bin', uploadId: 'up-1',
    blob: { name: 'big.bin', etag: '"e"', size: SIZE, lastModified: '2024-01-01T00:00:00.000Z', contentMd5 },
    partCount: 10, partBytes: 5 * MiB, replans: 0, verify: true,
  };
  /** One invocation: a fresh clock; what it sent on. */
  const invoke = async (m: PartsDoneMessage) => {
    used = 0;
    published.length = 0;
    await recombinator(ctx, m);
    return [...published];
  };
  return { ctx, ledger, reads, deleted, message, invoke, usedMs: () => used };
}

describe('verification of a large copy', () => {
  it('reads the copy across several invocations, none past its time, and records it copied when the MD5 matches', async () => {
    const h = harness(md5);
    await runWithUnit(h.ledger, 'u', [{ name: 'big.bin', size: SIZE }]);
    let next: PartsDoneMessage | undefined = h.message;
    let invocations = 0;
    while (next) {
      const sent = await h.invoke(next);
      invocations++;
      expect(h.usedMs()).toBeLessThanOrEqual(10_000 - verifyReserveMs(10_000) + 400);
      expect(sent.length).toBeLessThanOrEqual(1);
      next = sent[0] as PartsDoneMessage | undefined;
      if (next) expect(next).toMatchObject({ kind: 'parts-done', verify: true, uploadId: 'up-1' });
    }
    expect(invocations).toBeGreaterThanOrEqual(3);
    // Each invocation went on from where the last stopped: the whole object read once, in order.
    expect(h.reads.map((r) => r.start)).toEqual([...h.reads.map((r) => r.start)].sort((a, b) => a - b));
    expect(h.reads[0].start).toBe(0);
    expect(new Set(h.reads.map((r) => r.start)).size).toBe(h.reads.length);
    expect(await outcomesOf(h.ledger)).toEqual({ 'big.bin': 'copied' });
    expect((await h.ledger.unitsPage('run-test')).units[0].fromSource).toBeUndefined();
    expect(h.deleted).toEqual([]);
  });

  it('deletes the copy and fails the blob with the reason when the MD5 differs', async () => {
    const wrong = createHash('md5').update('something else').digest('base64');
    const h = harness(wrong);
    await runWithUnit(h.ledger, 'u', [{ name: 'big.bin', size: SIZE }]);
    let next: PartsDoneMessage | undefined = h.message;
    while (next) next = (await h.invoke(next))[0] as PartsDoneMessage | undefined;
    expect(h.deleted).toEqual(['big.bin']);
    expect((await outcomesOf(h.ledger))['big.bin']).toBe(`failed: the copy's MD5 ${md5} differs from the blob's Content-MD5 ${wrong}; the copy was deleted`);
  });

  it('frees its claim when recording the verified copy fails, so the retry records it without reading it again', async () => {
    const h = harness(md5);
    await runWithUnit(h.ledger, 'u', [{ name: 'big.bin', size: SIZE }]);
    // The run state refuses the first recording of the outcome (S3 or DynamoDB giving up on a request).
    const settle = h.ledger.settle.bind(h.ledger);
    let refusals = 0;
    h.ledger.settle = async (...args) => {
      if (refusals++ === 0) throw new Error('the run state gave up: 503 SlowDown');
      return settle(...args);
    };
    let next: PartsDoneMessage | undefined = h.message;
    let failed: unknown;
    while (next) {
      try {
        next = (await h.invoke(next))[0] as PartsDoneMessage | undefined;
      } catch (error) {
        failed = error;
        break;
      }
    }
    expect(String(failed)).toMatch(/SlowDown/);
    const readBefore = h.reads.length;
    // The queue's retry of the message that failed: the claim is free, every byte counted, nothing read again.
    while (next) next = (await h.invoke(next))[0] as PartsDoneMessage | undefined;
    expect(h.reads).toHaveLength(readBefore);
    expect((await outcomesOf(h.ledger))['big.bin']).toBe('copied');
  });

  it('starts no second read for a duplicate delivery while a verification is under way', async () => {
    const h = harness(md5);
    await runWithUnit(h.ledger, 'u', [{ name: 'big.bin', size: SIZE }]);
    // Two deliveries of the same message at once: one reads, the other finds the claim held.
    await Promise.all([recombinator(h.ctx, h.message), recombinator(h.ctx, h.message)]);
    expect(h.reads).toHaveLength(1);
  });
});

/**
 * A copy in DEEP_ARCHIVE cannot be read back: the blob is read again from the source (pinned to its ETag) and
 * its MD5 and the composite CRC32C of its planned parts are held to the Content-MD5 and to the checksum S3
 * reports for the copy. The same clock: each MiB read takes 400 ms.
 */
function sourceHarness(options: { contentMd5?: string; checksum?: string | null; changedAfterReads?: number; failAfterReads?: number } = {}) {
  const partBytes = 5 * MiB;
  const sourceReads: { start: number; end: number }[] = [];
  const copyReads: unknown[] = [];
  const deleted: string[] = [];
  let used = 0;
  const source = {
    async read(name: string, etag: string, range: { start: number; end: number }) {
      expect({ name, etag }).toEqual({ name: 'big.bin', etag: '"e"' });
      sourceReads.push(range);
      if (options.changedAfterReads !== undefined && sourceReads.length > options.changedAfterReads) throw new SourceChangedError('the blob changed');
      const chunks: Buffer[] = [];
      for (let at = range.start; at <= range.end; at += MiB) chunks.push(bytes.subarray(at, Math.min(range.end + 1, at + MiB)));
      const failing = options.failAfterReads !== undefined && sourceReads.length > options.failAfterReads;
      const body = Readable.from((async function* () {
        for (const [i, chunk] of chunks.entries()) {
          if (failing && i === 3) throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
          yield chunk;
        }
      })()).on('data', () => void (used += 400));
      return { body, length: range.end - range.start + 1 };
    },
    properties: async () => ({ etag: '"e2"', size: SIZE, lastModified: '2024-01-02T00:00:00.000Z', metadata: {} }),
  } as unknown as BlobSource;
  const composite = compositeCrc32c(planParts(SIZE, partBytes).map((p) => crc32cBase64(bytes.subarray(p.start, p.end + 1))));
  const sink = {
    async read(...args: unknown[]) {
      copyReads.push(args);
      throw Object.assign(new Error('The operation is not valid for the object\'s storage class'), { name: 'InvalidObjectState' });
    },
    head: async () => ({
      key: 'big.bin', size: SIZE, lastModified: '2024-01-01T00:00:01.000Z', storageClass: 'DEEP_ARCHIVE',
      metadata: { [SOURCE_META.etag]: '"e"', [SOURCE_META.size]: String(SIZE) },
      checksumCrc32c: options.checksum === null ? undefined : (options.checksum ?? composite),
    }),
    async delete(key: string) {
      deleted.push(key);
    },
    getJson: async () => undefined,
    putJson: async () => true,
    deleteState: async () => undefined,
  } as unknown as ObjectSink;
  const run = runSettings({ largeBlobBytes: 16 * MiB, partBytes, writing: { storageClass: 'DEEP_ARCHIVE' } });
  const { ctx, published, ledger } = stageContext({ source, sink, settings: run, remainingMs: () => 10_000 - used });
  const message: PartsDoneMessage = {
    v: MESSAGE_VERSION, kind: 'parts-done', runId: 'run-test', unit: 'u', run, key: 'big.bin', uploadId: 'up-1',
    blob: { name: 'big.bin', etag: '"e"', size: SIZE, lastModified: '2024-01-01T00:00:00.000Z', contentMd5: options.contentMd5 ?? md5 },
    partCount: 10, partBytes, replans: 0, verify: true,
  };
  /** Invocations until none is sent on (a message failed is taken again, as the queue would); what each sent. */
  const invokeAll = async () => {
    let next: PartsDoneMessage | undefined = message;
    const sent: StageMessage[][] = [];
    while (next) {
      used = 0;
      published.length = 0;
      try {
        await recombinator(ctx, next);
      } catch {
        sent.push(['retried' as unknown as StageMessage]);
        continue;
      }
      sent.push([...published]);
      next = published.find((m): m is PartsDoneMessage => m.kind === 'parts-done');
    }
    return sent;
  };
  return { ledger, sourceReads, copyReads, deleted, composite, invokeAll };
}

describe('which copies are checked from the source', () => {
  const blob = (tier?: string) => ({ name: 'b', etag: '"e"', size: 1, lastModified: '2026-01-01T00:00:00.000Z', tier });
  const checks = (writing: PartsDoneMessage['run']['writing'], tier?: string) => checksFromSource({ run: runSettings({ writing }), blob: blob(tier) });

  it('those the one class puts in GLACIER or DEEP_ARCHIVE; the others are read back', () => {
    expect(checks({ storageClass: 'GLACIER' }, 'Hot')).toBe(true);
    expect(checks({ storageClass: 'DEEP_ARCHIVE' })).toBe(true);
    for (const storageClass of ['STANDARD', 'STANDARD_IA', 'ONEZONE_IA', 'INTELLIGENT_TIERING', 'GLACIER_IR'] as const) {
      expect(checks({ storageClass }, 'Hot'), storageClass).toBe(false);
    }
    expect(checks(undefined, 'Hot')).toBe(false);
  });

  it('by the blob\'s tier under a tier map, as the copy was written; a tier the map does not name takes the one class', () => {
    const writing = { tierMap: { Hot: 'GLACIER_IR', Cool: 'DEEP_ARCHIVE' }, storageClass: 'GLACIER' } as const;
    expect(checks(writing, 'Cool')).toBe(true);
    expect(checks(writing, 'cool')).toBe(true);
    expect(checks(writing, 'Hot')).toBe(false);
    expect(checks(writing, 'Cold')).toBe(true);
    expect(checks(writing, undefined)).toBe(true);
    expect(checks({ tierMap: { Cool: 'GLACIER' } }, 'Cool')).toBe(true);
    expect(checks({ tierMap: { Cool: 'GLACIER' } }, 'Hot')).toBe(false);
  });
});

describe('verification from the source of a copy S3 cannot read back (DEEP_ARCHIVE)', () => {
  it('reads the blob from Azure across several invocations, never the copy, and records it copied when MD5 and composite checksum match', async () => {
    const h = sourceHarness();
    await runWithUnit(h.ledger, 'u', [{ name: 'big.bin', size: SIZE }]);

    const sent = await h.invokeAll();

    expect(sent.length).toBeGreaterThanOrEqual(3);
    expect(h.copyReads).toEqual([]);
    // Each invocation went on from where the last stopped, to the blob's end.
    expect(h.sourceReads[0]).toEqual({ start: 0, end: SIZE - 1 });
    for (const [i, read] of h.sourceReads.entries()) {
      expect(read.end).toBe(SIZE - 1);
      if (i > 0) expect(read.start).toBeGreaterThan(h.sourceReads[i - 1].start);
    }
    expect(await outcomesOf(h.ledger)).toEqual({ 'big.bin': 'copied' });
    // The unit notes how the copy was checked, for the report.
    expect((await h.ledger.unitsPage('run-test')).units[0].fromSource).toEqual([0]);
    expect(h.deleted).toEqual([]);
  });

  it('deletes the copy and fails the blob when the bytes read from Azure do not have the blob\'s Content-MD5', async () => {
    const wrong = createHash('md5').update('something else').digest('base64');
    const h = sourceHarness({ contentMd5: wrong });
    await runWithUnit(h.ledger, 'u', [{ name: 'big.bin', size: SIZE }]);
    await h.invokeAll();
    expect(h.deleted).toEqual(['big.bin']);
    expect((await outcomesOf(h.ledger))['big.bin']).toBe(
      `failed: the blob's MD5 ${md5}, read from Azure to check its copy, differs from its Content-MD5 ${wrong}; the copy was deleted`,
    );
  });

  it('deletes the copy and fails the blob when S3\'s composite checksum is not that of the blob\'s parts', async () => {
    const h = sourceHarness({ checksum: 'AAAAAA==-10' });
    await runWithUnit(h.ledger, 'u', [{ name: 'big.bin', size: SIZE }]);
    await h.invokeAll();
    expect(h.deleted).toEqual(['big.bin']);
    expect((await outcomesOf(h.ledger))['big.bin']).toBe(
      `failed: the copy's composite CRC32C in S3 AAAAAA==-10 differs from ${h.composite}, computed from the blob read from Azure; the copy was deleted`,
    );
  });

  it('does not claim a copy verified when S3 reports no checksum for it', async () => {
    const h = sourceHarness({ checksum: null });
    await runWithUnit(h.ledger, 'u', [{ name: 'big.bin', size: SIZE }]);
    await h.invokeAll();
    expect(h.deleted).toEqual(['big.bin']);
    expect((await outcomesOf(h.ledger))['big.bin']).toMatch(/^failed: S3 reports no CRC32C checksum for the copy, and a copy in DEEP_ARCHIVE cannot be read back, so its bytes could not be checked; the copy was deleted$/);
  });

  it('re-plans a blob that changed after it was copied, deleting the copy that can no longer be checked', async () => {
    const h = sourceHarness({ changedAfterReads: 1 });
    await runWithUnit(h.ledger, 'u', [{ name: 'big.bin', size: SIZE }]);
    const sent = await h.invokeAll();
    expect(h.deleted).toEqual(['big.bin']);
    expect(sent.at(-1)).toEqual([expect.objectContaining({ kind: 'large-blob', blob: expect.objectContaining({ etag: '"e2"' }), replans: 1 })]);
    expect(await outcomesOf(h.ledger)).toEqual({ 'big.bin': 'pending' });
  });

  it('keeps what was read when a read fails part way, so the retry goes on from there', async () => {
    const h = sourceHarness({ failAfterReads: 1 });
    await runWithUnit(h.ledger, 'u', [{ name: 'big.bin', size: SIZE }]);
    const sent = await h.invokeAll();
    expect(sent.some((s) => (s as unknown[])[0] === 'retried')).toBe(true);
    // The failed read got 3 MiB in; the retry started there, not over.
    const failed = h.sourceReads[1];
    expect(h.sourceReads[2].start).toBe(failed.start + 3 * MiB);
    expect(await outcomesOf(h.ledger)).toEqual({ 'big.bin': 'copied' });
  });
});
