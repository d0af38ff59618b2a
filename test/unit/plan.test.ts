import { describe, expect, it } from 'vitest';
import { MAX_PARTS, MIN_PART_BYTES, partSizeFor, planParts, sizeProblem } from '../../lambdas/core/plan';

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
    expect(sizeProblem(10_000 * 5 * GiB + 1)).toMatch(/at most 10000 parts of 5 GiB/);
  });
});
