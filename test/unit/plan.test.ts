import { describe, expect, it } from 'vitest';
import { MAX_OBJECT_BYTES, MAX_PARTS, MAX_PART_BYTES, MIN_PART_BYTES, maxPartBytesFor, partRange, partSizeFor, planParts, sizeProblem } from '../../lambdas/core/plan';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

describe('part planning', () => {
  it('covers every byte exactly once, every part but the last full size', () => {
    for (const size of [1, MIN_PART_BYTES - 1, MIN_PART_BYTES, MIN_PART_BYTES + 1, 3 * MIN_PART_BYTES - 1, 100 * MiB + 7]) {
      const partBytes = partSizeFor(size, 5 * MiB);
      const parts = planParts(size, partBytes);
      let next = 0;
      for (const [i, part] of parts.entries()) {
        expect(part.partNumber).toBe(i + 1);
        expect(part.start).toBe(next);
        if (i < parts.length - 1) expect(part.end - part.start + 1).toBe(partBytes);
        next = part.end + 1;
      }
      expect(next).toBe(size);
    }
  });

  it('grows the part size so that no blob needs more than 10,000 parts', () => {
    expect(partSizeFor(1 * GiB, 64 * MiB)).toBe(64 * MiB);
    const terabyte = 1024 * GiB;
    const partBytes = partSizeFor(terabyte, 64 * MiB);
    expect(partBytes % MiB).toBe(0);
    expect(Math.ceil(terabyte / partBytes)).toBeLessThanOrEqual(MAX_PARTS);
    expect(planParts(terabyte, partBytes).length).toBeLessThanOrEqual(MAX_PARTS);
  });

  it('never plans parts under S3 minimum', () => {
    expect(partSizeFor(10, 1)).toBe(MIN_PART_BYTES);
  });

  it('refuses a blob too large for any multipart upload', () => {
    expect(sizeProblem(5 * 1024 * GiB)).toBeUndefined();
    expect(sizeProblem(10_000 * 5 * GiB + 1)).toMatch(/S3 holds at most 53687091200000 bytes in one object \(10000 parts of 5 GiB\)/);
  });
});

describe('planning for any size S3 holds', () => {
  const TiB = 1024 * GiB;
  const deployedParter = maxPartBytesFor(15 * 60);

  it.each([0, 1, 5 * MiB - 1, 5 * MiB, 100 * MiB, 64 * GiB, 1 * TiB, 10 * TiB, 48 * TiB, MAX_OBJECT_BYTES])(
    'plans %d bytes in at most 10,000 parts of 5 MiB-5 GiB (the last may be less), within the deployed parter\'s timeout',
    (size) => {
      expect(sizeProblem(size, deployedParter)).toBeUndefined();
      const partBytes = partSizeFor(size, 64 * MiB, deployedParter);
      expect(partBytes).toBeGreaterThanOrEqual(MIN_PART_BYTES);
      expect(partBytes).toBeLessThanOrEqual(MAX_PART_BYTES);
      expect(partBytes).toBeLessThanOrEqual(deployedParter);
      const count = Math.max(1, Math.ceil(size / partBytes));
      expect(count).toBeLessThanOrEqual(MAX_PARTS);
      // The last part ends at the last byte; every other is whole.
      const last = partRange(size, partBytes, count);
      expect(last.end).toBe(size - 1);
      expect(last.start).toBe((count - 1) * partBytes);
    },
  );

  it('gives the deployed parter parts up to S3\'s 5 GiB: every size S3 holds fits its timeout', () => {
    expect(deployedParter).toBe(MAX_PART_BYTES);
  });

  it('refuses, before a byte moves, a blob larger than S3 holds, naming the limit', () => {
    expect(MAX_OBJECT_BYTES).toBe(10_000 * 5 * GiB);
    expect(sizeProblem(MAX_OBJECT_BYTES + 1)).toBe(`the blob is ${MAX_OBJECT_BYTES + 1} bytes; S3 holds at most ${MAX_OBJECT_BYTES} bytes in one object (10000 parts of 5 GiB)`);
  });

  it('holds parts to what a parter with a short timeout copies, and refuses a blob that cannot fit it', () => {
    const short = maxPartBytesFor(10);
    expect(short).toBe(60 * MiB);
    expect(partSizeFor(GiB, 64 * MiB, short)).toBe(60 * MiB);
    expect(sizeProblem(10_000 * 60 * MiB, short)).toBeUndefined();
    expect(sizeProblem(10_000 * 60 * MiB + 1, short)).toMatch(/needs parts of 63963136 bytes; a parter copies at most 62914560 within its timeout: give the parter a longer timeout/);
  });
});
