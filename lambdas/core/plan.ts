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

/** The largest object S3 holds: 10,000 parts of 5 GiB (48.8 TiB, "50 TB"). */
export const MAX_OBJECT_BYTES = MAX_PARTS * MAX_PART_BYTES;

/**
 * The rate a part is planned to copy at, one parter reading Azure and writing S3: far below what a parter
 * does (60-80 MiB/s measured here; Lambda's network is faster), so a part planned to fit its timeout at this
 * rate fits it with room to spare.
 */
export const CONSERVATIVE_PART_BYTES_PER_SECOND = 10 * MiB;

/** The largest part a parter can copy within its timeout at the conservative rate (some time kept back). */
export function maxPartBytesFor(timeoutSeconds: number): number {
  const fits = Math.floor((timeoutSeconds * 0.6 * CONSERVATIVE_PART_BYTES_PER_SECOND) / MiB) * MiB;
  return Math.min(MAX_PART_BYTES, Math.max(MIN_PART_BYTES, fits));
}

/** The fewest bytes a part of this blob can hold: no more than 10,000 parts, whole MiB. */
function leastPartBytes(size: number): number {
  return Math.max(MIN_PART_BYTES, Math.ceil(size / MAX_PARTS / MiB) * MiB);
}

/**
 * The part size for a blob: the one asked for, grown so no blob needs more than 10,000 parts, and held to
 * what a parter copies within its timeout (`maxPartBytes`) when that still allows 10,000 parts.
 */
export function partSizeFor(size: number, requested: number, maxPartBytes = MAX_PART_BYTES): number {
  const least = leastPartBytes(size);
  return Math.max(least, Math.min(Math.max(requested, MIN_PART_BYTES), maxPartBytes));
}

/** Why this blob cannot be copied, decided before a byte moves: too large for S3, or for a parter's timeout. */
export function sizeProblem(size: number, maxPartBytes = MAX_PART_BYTES): string | undefined {
  if (size > MAX_OBJECT_BYTES) {
    return `the blob is ${size} bytes; S3 holds at most ${MAX_OBJECT_BYTES} bytes in one object (${MAX_PARTS} parts of 5 GiB)`;
  }
  const least = leastPartBytes(size);
  if (least > maxPartBytes) {
    return `the blob is ${size} bytes, which needs parts of ${least} bytes; a parter copies at most ${maxPartBytes} within its timeout: give the parter a longer timeout`;
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
