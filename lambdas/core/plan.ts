/**
 * How a large blob is cut into S3 parts: every part but the last the same size,
 * at least 5 MiB, at most 5 GiB, and never more than 10,000 of them, so the part
 * size grows with the blob.
 */
import type { PartRange } from './messages';

export const MIN_PART_BYTES = 5 * 1024 * 1024;
export const MAX_PART_BYTES = 5 * 1024 * 1024 * 1024;
export const MAX_PARTS = 10_000;
const MiB = 1024 * 1024;

export function partSizeFor(size: number, requested: number): number {
  const floor = Math.ceil(size / MAX_PARTS / MiB) * MiB;
  return Math.max(requested, floor, MIN_PART_BYTES);
}

/** Why S3 cannot hold a blob this large as one object, or undefined. */
export function sizeProblem(size: number): string | undefined {
  if (Math.ceil(size / MAX_PARTS / MiB) * MiB > MAX_PART_BYTES) {
    return `the blob is ${size} bytes; an S3 multipart upload holds at most ${MAX_PARTS} parts of 5 GiB`;
  }
  return undefined;
}

export function partCount(size: number, partBytes: number): number {
  return Math.max(1, Math.ceil(size / partBytes));
}

export function partRange(size: number, partBytes: number, partNumber: number): PartRange {
  const start = (partNumber - 1) * partBytes;
  return { partNumber, start, end: Math.min(size, start + partBytes) - 1 };
}

export function planParts(size: number, partBytes: number): PartRange[] {
  return Array.from({ length: partCount(size, partBytes) }, (_, i) => partRange(size, partBytes, i + 1));
}
