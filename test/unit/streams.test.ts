import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { crc32cBase64 } from '../../lambdas/core/crc32c';
import { collectBody, collectRanges, rangeReadsFor, RANGE_READ_MIN_BYTES, emptyBodyPool, releaseBody } from '../../lambdas/core/streams';

const MiB = 1024 * 1024;
/** Bytes that differ at every offset (a misplaced range shows). */
const source = Buffer.from(Array.from({ length: 5 * MiB + 77 }, (_, i) => (i * 31 + (i >> 8)) & 0xff));

/** A read of source[start..end] in uneven chunks, as HTTP hands them over. */
function rangeOf(start: number, end: number): Readable {
  const bytes = source.subarray(start, end + 1);
  const chunks: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += 5000 + (at % 3) * 1111) chunks.push(bytes.subarray(at, Math.min(bytes.length, at + 5000 + (at % 3) * 1111)));
  return Readable.from(chunks);
}

describe('a part read as several ranges at once', () => {
  it('puts each range at its place and checksums the whole', async () => {
    const asked: [number, number][] = [];
    for (const pieces of [1, 2, 3, 4, 7]) {
      asked.length = 0;
      const body = await collectRanges(source.length, pieces, async (start, end) => (asked.push([start, end]), rangeOf(start, end)));
      expect(body.buffer.equals(source)).toBe(true);
      expect(body.crc32c).toBe(crc32cBase64(source));
      expect(asked).toHaveLength(pieces);
      // The ranges cover the body once, in order, without a gap or an overlap.
      asked.sort((a, b) => a[0] - b[0]);
      expect(asked[0][0]).toBe(0);
      expect(asked.at(-1)![1]).toBe(source.length - 1);
      for (let i = 1; i < asked.length; i++) expect(asked[i][0]).toBe(asked[i - 1][1] + 1);
    }
  });

  it('fails, and stops the other reads, when one range fails or comes back short', async () => {
    const destroyed: number[] = [];
    const failing = (short: boolean) => async (start: number, end: number) => {
      if (start === 0) {
        const r = rangeOf(start, short ? end - 10 : end);
        if (!short) r.destroy(new Error('connection reset'));
        return r;
      }
      // The other ranges never end on their own: only being stopped ends them.
      const r = new Readable({ read() {} });
      r.push(source.subarray(start, start + 1000));
      r.on('close', () => destroyed.push(start));
      return r;
    };
    await expect(collectRanges(source.length, 3, failing(false))).rejects.toThrow('connection reset');
    expect(destroyed).toHaveLength(2);
    destroyed.length = 0;
    await expect(collectRanges(source.length, 3, failing(true))).rejects.toThrow(/ended after/);
    expect(destroyed).toHaveLength(2);
  });

  it('reuses a released part buffer for the next body it holds, a shorter last part included', async () => {
    emptyBodyPool(); // buffers other tests in this process gave back would fit as well
    const first = await collectRanges(source.length, 2, async (start, end) => rangeOf(start, end));
    releaseBody(first);
    const shorter = source.length - 300_000;
    const next = await collectBody(rangeOf(0, shorter - 1), shorter);
    expect(next.buffer.buffer === first.buffer.buffer).toBe(true);
    expect(next.buffer.equals(source.subarray(0, shorter))).toBe(true);
    expect(next.crc32c).toBe(crc32cBase64(source.subarray(0, shorter)));
    // Not given back: the next body gets a buffer of its own.
    const third = await collectBody(rangeOf(0, shorter - 1), shorter);
    expect(third.buffer.buffer === first.buffer.buffer).toBe(false);
    releaseBody(next);
    releaseBody(third);
  });

  it('splits only what is worth splitting', () => {
    expect(rangeReadsFor(64 * MiB, 4)).toBe(4);
    expect(rangeReadsFor(RANGE_READ_MIN_BYTES * 2 - 1, 4)).toBe(1);
    expect(rangeReadsFor(5 * MiB, 4)).toBe(1);
    expect(rangeReadsFor(128 * MiB, 1)).toBe(1);
  });
});
