/**
 * Several destinations for one copy. A run names its first destination in `bucket` and `prefix` (that bucket
 * also keeps the run's state) and any further ones in `also`. Each blob is read from Azure once and its bytes
 * written to every destination that needs them: Azure's egress is the largest cost of a copy, so a blob going
 * to three buckets must not be paid for three times.
 *
 * Each destination keeps its own copies, uploads and upload manifests, and is compared on its own (a blob
 * can be unchanged in one and missing from another); a blob's outcome is one, counted once, made of its
 * destinations' outcomes (run-ledger.ts).
 */
import { ConfigError } from './errors';
import { destinationKey } from './keys';
import type { BlobRef, RunSettings } from './messages';
import type { BlobOutcome } from './run-ledger';

export interface Destination {
  bucket: string;
  prefix: string;
  /** Its region, where it differs from the functions'. */
  region?: string;
}

/** The run's destinations, the first first. */
export function destinationsOf(settings: Pick<RunSettings, 'bucket' | 'prefix' | 'also'>): Destination[] {
  return [{ bucket: settings.bucket, prefix: settings.prefix }, ...(settings.also ?? [])];
}

/** How a destination is named in reports and logs: `s3://bucket/prefix`. */
export function destinationName(destination: Destination): string {
  return `s3://${destination.bucket}/${destination.prefix}`;
}

/** The destinations (by place) a blob version goes to: those the listing found it missing from, or all. */
export function targetsOf(settings: Pick<RunSettings, 'also'>, blob: Pick<BlobRef, 'to'>): number[] {
  const count = 1 + (settings.also?.length ?? 0);
  return blob.to?.filter((d) => d < count) ?? [...Array(count).keys()];
}

/** The blob's key in destination `d`. */
export function keyIn(settings: Pick<RunSettings, 'bucket' | 'prefix' | 'also'>, d: number, name: string): string {
  return destinationKey(destinationsOf(settings)[d].prefix, name);
}

/** The run's settings as seen from destination `d` alone (its bucket and prefix), for deciding against it. */
export function settingsFor(settings: RunSettings, d: number): RunSettings {
  if (d === 0) return settings;
  const { bucket, prefix } = destinationsOf(settings)[d];
  return { ...settings, bucket, prefix };
}

/** The same key after the first destination's prefix, under destination `d`'s (where a listing resumes). */
export function afterKeyIn(settings: RunSettings, d: number, afterKey: string | undefined): string | undefined {
  if (afterKey === undefined || d === 0) return afterKey;
  if (!afterKey.startsWith(settings.prefix)) return undefined;
  return destinationKey(destinationsOf(settings)[d].prefix, afterKey.slice(settings.prefix.length));
}

/** A run's settings for one of its containers: with several, each container lands under its own name in every destination. */
export function forContainer(settings: RunSettings, container: string, byContainer: boolean): RunSettings {
  if (!byContainer) return { ...settings, container };
  return {
    ...settings,
    container,
    prefix: `${settings.prefix}${container}/`,
    also: settings.also?.map((d) => ({ ...d, prefix: `${d.prefix}${container}/` })),
  };
}

/** Destinations that cannot work together, refused with one line before a run starts. */
export function checkDestinations(settings: RunSettings): void {
  const all = destinationsOf(settings);
  if (all.length === 1) return;
  const seen = new Set<string>();
  for (const destination of all) {
    const id = `${destination.bucket}/${destination.prefix}`;
    if (seen.has(id)) throw new ConfigError(`the destination ${destinationName(destination)} is named twice: name each destination once`);
    seen.add(id);
  }
  // Two destinations in one bucket keep their upload manifests under one state prefix: their keys must differ.
  for (const a of all) {
    for (const b of all) {
      if (a !== b && a.bucket === b.bucket && a.prefix !== b.prefix && b.prefix.startsWith(a.prefix)) {
        throw new ConfigError(`the destinations ${destinationName(a)} and ${destinationName(b)} overlap (one prefix holds the other): give them prefixes apart, or use another bucket`);
      }
    }
  }
  if (settings.mirror) {
    throw new ConfigError('mirror deletes copies in one destination only, and this copy has several: turn "mirror" off, or copy to one destination');
  }
}

const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d$/;

/**
 * Further destinations as people write them: `bucket`, `bucket/prefix` or `s3://bucket/prefix`, each a string
 * (several in one, separated by commas) or `{ "bucket": ..., "prefix": ..., "region": ... }`, or a list of these.
 */
export function parseDestinations(value: unknown, subject: string): Destination[] {
  const fix = 'give a list such as ["backup-bucket/azure/", {"bucket": "dr-bucket", "region": "eu-west-1"}]';
  const items = Array.isArray(value) ? value : typeof value === 'string' ? value.split(',').map((t) => t.trim()).filter(Boolean) : [value];
  return items.map((item) => {
    let destination: Destination;
    if (typeof item === 'string') {
      const text = item.trim().replace(/^s3:\/\//i, '');
      const at = text.indexOf('/');
      destination = at < 0 ? { bucket: text, prefix: '' } : { bucket: text.slice(0, at), prefix: text.slice(at + 1) };
    } else if (item && typeof item === 'object' && !Array.isArray(item)) {
      const { bucket, prefix, region, ...rest } = item as Record<string, unknown>;
      const extra = Object.keys(rest)[0];
      if (extra !== undefined) throw new ConfigError(`${subject} has a destination with "${extra}", which is not known: use "bucket", "prefix" and "region"`);
      if (typeof bucket !== 'string' || (prefix !== undefined && typeof prefix !== 'string') || (region !== undefined && typeof region !== 'string')) {
        throw new ConfigError(`${subject} has a destination whose "bucket", "prefix" or "region" is not a string: ${fix}`);
      }
      destination = { bucket: bucket.trim(), prefix: prefix ?? '', ...(region ? { region: region.trim() } : {}) };
    } else {
      throw new ConfigError(`${subject} is ${JSON.stringify(value)}: ${fix}`);
    }
    if (!BUCKET_NAME.test(destination.bucket) || destination.bucket.includes('..')) {
      throw new ConfigError(`${subject} names "${destination.bucket}", not a valid S3 bucket name: use 3-63 lowercase letters, digits, dots and hyphens`);
    }
    if (destination.prefix.startsWith('/')) {
      throw new ConfigError(`${subject} gives the prefix "${destination.prefix}", which starts with "/" (S3 keeps it as part of the key): drop the leading slash`);
    }
    if (destination.region !== undefined && !REGION.test(destination.region)) {
      throw new ConfigError(`${subject} gives the region "${destination.region}", which is not an AWS region such as eu-west-1`);
    }
    return destination;
  });
}

/**
 * A blob's outcome in destination `d`, as the run's ledger takes it: with one destination, the blob's own;
 * with several, tagged with the destination and the blob's targets (run-ledger.ts makes the blob's outcome of
 * theirs), a reason naming the destination.
 */
export function inDestination<O extends Omit<BlobOutcome, 'name' | 'index'>>(
  settings: Pick<RunSettings, 'bucket' | 'prefix' | 'also'>, blob: Pick<BlobRef, 'to'>, d: number, outcome: O,
): O & { destination?: number; targets?: number[] } {
  if (!settings.also?.length) return outcome;
  const reason = outcome.reason === undefined ? {} : { reason: `${destinationName(destinationsOf(settings)[d])}: ${outcome.reason}` };
  return { ...outcome, ...reason, destination: d, targets: targetsOf(settings, blob) };
}

/** A message about a blob, narrowed to destination `d` (to plan it again there alone) when the run has several. */
export function onlyIn<M extends { blob: BlobRef }>(settings: Pick<RunSettings, 'also'>, message: M, d: number): M {
  return settings.also?.length ? { ...message, blob: { ...message.blob, to: [d] } } : message;
}
