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
import { MESSAGE_VERSION, type PartsDoneMessage } from '../../lambdas/core/messages';
import { recombinator, verifyReserveMs } from '../../lambdas/core/stages/recombinator';
import type { ObjectSink } from '../../lambdas/core/stores/types';
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

  it('starts no second read for a duplicate delivery while a verification is under way', async () => {
    const h = harness(md5);
    await runWithUnit(h.ledger, 'u', [{ name: 'big.bin', size: SIZE }]);
    // Two deliveries of the same message at once: one reads, the other finds the claim held.
    await Promise.all([recombinator(h.ctx, h.message), recombinator(h.ctx, h.message)]);
    expect(h.reads).toHaveLength(1);
  });
});
