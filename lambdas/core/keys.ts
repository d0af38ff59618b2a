/**
 * How a blob name becomes an S3 key, and which names S3 cannot take. A name is
 * kept exactly (no trimming, no re-encoding); one that cannot be kept is failed
 * with the reason, never truncated or renamed.
 */

/** Where the pipeline keeps its own state in the bucket. Copied keys never start with it. */
export const STATE_PREFIX = '.azs3copy-state/';

export const MAX_KEY_BYTES = 1024;

export function destinationKey(prefix: string, name: string): string {
  return prefix + name;
}

/** Why this blob cannot be stored under its name in S3, or undefined when it can. */
export function keyProblem(prefix: string, name: string): string | undefined {
  const key = destinationKey(prefix, name);
  if (!key.isWellFormed()) return 'the name holds an unpaired UTF-16 surrogate, which has no UTF-8 form for an S3 key';
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes > MAX_KEY_BYTES) {
    return `the S3 key would be ${bytes} bytes of UTF-8; S3 allows at most ${MAX_KEY_BYTES}`;
  }
  if (key.startsWith(STATE_PREFIX)) {
    return `the S3 key would fall under "${STATE_PREFIX}", which azs3copy reserves for its own state: copy with a --prefix`;
  }
  return undefined;
}

/** S3 orders keys by their UTF-8 bytes; JavaScript's < compares UTF-16 units, which differs above U+FFFF. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
