/**
 * What a run takes and how it writes, as users give it in the secret or on the
 * command line: which containers, which blobs (filters), whether the destination
 * follows deletions (mirror), which S3 storage class, and what becomes of archived
 * blobs. One parser for both, so `--include` and `"include"` mean the same, and
 * each refusal is one line naming the key or flag and the fix.
 */
import * as z from 'zod';
import { ConfigError } from './errors';
import { parseSize, type Filters } from './filters';

/** Storage classes S3 takes on PutObject and CreateMultipartUpload for a general-purpose bucket. */
export const STORAGE_CLASSES = [
  'STANDARD', 'REDUCED_REDUNDANCY', 'STANDARD_IA', 'ONEZONE_IA', 'INTELLIGENT_TIERING', 'GLACIER', 'DEEP_ARCHIVE', 'GLACIER_IR',
] as const;
export type StorageClass = (typeof STORAGE_CLASSES)[number];

/** Azure's access tiers, as the listing names them. */
export const ACCESS_TIERS = ['Hot', 'Cool', 'Cold', 'Archive'] as const;

export const WritingSchema = z.object({
  /** Every object's class, unless the tier map names the blob's tier. */
  storageClass: z.enum(STORAGE_CLASSES).optional(),
  /** Class by the blob's access tier. */
  tierMap: z.record(z.string(), z.enum(STORAGE_CLASSES)).optional(),
});
export type Writing = z.infer<typeof WritingSchema>;

export type ArchivePolicy = 'skip' | 'rehydrate';

export interface Selection {
  /** Containers to copy; 'all' for every container of the account but the system ones (`$logs`, ...). */
  containers: string[] | 'all';
  filters?: Filters;
  mirror: boolean;
  /** A run that would delete more than this deletes nothing and fails. @default max(1000, 1% of the destination) */
  maxDeletes?: number;
  writing: Writing;
  archive: ArchivePolicy;
}

/** Names from a value that may be a list, a comma-separated string, or one name. */
export function namesFrom(value: unknown, subject: string): string[] {
  const items = Array.isArray(value) ? value : typeof value === 'string' ? value.split(',') : undefined;
  if (!items || items.some((v) => typeof v !== 'string')) {
    throw new ConfigError(`${subject} is ${JSON.stringify(value)}: give a name, a list of names, or names separated by commas`);
  }
  return (items as string[]).map((v) => v.trim()).filter(Boolean);
}

export function storageClassFrom(value: string, subject: string): StorageClass {
  const upper = value.trim().toUpperCase().replace(/-/g, '_');
  if (!(STORAGE_CLASSES as readonly string[]).includes(upper)) {
    throw new ConfigError(`${subject} is "${value}", a class S3 does not know: use one of ${STORAGE_CLASSES.join(', ')}`);
  }
  return upper as StorageClass;
}

/** `Hot=STANDARD,Cool=STANDARD_IA`, or an object of the same. */
export function tierMapFrom(value: unknown, subject: string): Record<string, StorageClass> {
  const pairs: [string, unknown][] =
    typeof value === 'string'
      ? value.split(',').filter((p) => p.trim()).map((p) => {
          const at = p.indexOf('=');
          if (at < 0) throw new ConfigError(`${subject} has "${p.trim()}": write TIER=CLASS pairs, like Hot=STANDARD,Cool=STANDARD_IA`);
          return [p.slice(0, at).trim(), p.slice(at + 1).trim()];
        })
      : value && typeof value === 'object' && !Array.isArray(value)
        ? Object.entries(value)
        : (() => {
            throw new ConfigError(`${subject} is ${JSON.stringify(value)}: write TIER=CLASS pairs, like Hot=STANDARD,Cool=STANDARD_IA`);
          })();
  const map: Record<string, StorageClass> = {};
  for (const [tier, cls] of pairs) {
    const known = ACCESS_TIERS.find((t) => t.toLowerCase() === tier.toLowerCase());
    if (!known) throw new ConfigError(`${subject} names the tier "${tier}": Azure's tiers are ${ACCESS_TIERS.join(', ')}`);
    if (typeof cls !== 'string') throw new ConfigError(`${subject} gives ${known} the class ${JSON.stringify(cls)}: use one of ${STORAGE_CLASSES.join(', ')}`);
    map[known] = storageClassFrom(cls, `${subject} class of ${known}`);
  }
  return map;
}

export function sizeFrom(value: unknown, subject: string): number {
  const bytes = typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : typeof value === 'string' ? parseSize(value) : undefined;
  if (bytes === undefined) throw new ConfigError(`${subject} is ${JSON.stringify(value)}: give bytes, or a size with K, M, G or T (1024-based), like 10M`);
  return bytes;
}

export function archiveFrom(value: unknown, subject: string): ArchivePolicy {
  const word = typeof value === 'string' ? value.trim().toLowerCase() : undefined;
  if (word === 'skip' || word === 'rehydrate') return word;
  throw new ConfigError(`${subject} is ${JSON.stringify(value)}: use "skip" (report archived blobs) or "rehydrate" (start their rehydration, copy them on a later run)`);
}

/** The class an object is written in: the tier map's for the blob's tier, else the one class, else the bucket's default. */
export function storageClassOf(writing: Writing | undefined, accessTier: string | undefined): StorageClass | undefined {
  if (!writing) return undefined;
  const byTier = accessTier ? Object.entries(writing.tierMap ?? {}).find(([t]) => t.toLowerCase() === accessTier.toLowerCase())?.[1] : undefined;
  return byTier ?? writing.storageClass;
}

/**
 * Classes whose objects S3 will not give back until they are restored (GetObject fails with
 * InvalidObjectState): a copy written in one is checked from the source instead of read back.
 * GLACIER_IR and the rest are read at once.
 */
export const UNREADABLE_CLASSES: readonly StorageClass[] = ['GLACIER', 'DEEP_ARCHIVE'];

export function isReadableClass(storageClass: string | undefined): boolean {
  return !(UNREADABLE_CLASSES as readonly (string | undefined)[]).includes(storageClass);
}

/** The deletion guard: at most this many deletes in one run. */
export function deleteLimit(maxDeletes: number | undefined, destinationObjects: number): number {
  return maxDeletes ?? Math.max(1000, Math.floor(destinationObjects / 100));
}
