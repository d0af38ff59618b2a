/**
 * Whether the destination already holds a blob's current version, decided from a
 * listing of the destination (one request per 1,000 keys) rather than a request
 * per blob.
 *
 * A listing gives size and last-modified but no metadata. An object written after
 * the blob last changed, with the same size, is the blob's copy, provided the
 * write began after the change: a copy takes at most COPY_WINDOW_MS (the Lambda
 * limit), so an object written more than that after the blob's last change is
 * certainly of its current version. Closer than that, the answer is 'verify': one
 * HEAD compares the source ETag stored on the object. When both sides carry an
 * MD5 (S3's ETag of a single-part unencrypted or SSE-S3 object, and the blob's
 * Content-MD5), that settles it without the window.
 */
import type { ListedObject } from './stores/types';
import type { BlobRef } from './messages';

export const COPY_WINDOW_MS = 15 * 60 * 1000;

export type Freshness = 'unchanged' | 'changed' | 'verify';

export function freshness(blob: BlobRef, dest: (ListedObject & { etag?: string }) | undefined): Freshness {
  if (!dest || dest.size !== blob.size) return 'changed';
  if (blob.contentMd5 && dest.etag) {
    const md5Hex = Buffer.from(blob.contentMd5, 'base64').toString('hex');
    if (dest.etag.replaceAll('"', '').toLowerCase() === md5Hex) return 'unchanged';
  }
  const written = Date.parse(dest.lastModified);
  const changed = Date.parse(blob.lastModified);
  if (written < changed) return 'changed';
  if (written - changed > COPY_WINDOW_MS) return 'unchanged';
  return 'verify';
}
