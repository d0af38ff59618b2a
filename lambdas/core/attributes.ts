/**
 * What an S3 object carries besides its bytes: the blob's five content headers,
 * its metadata, its tags, and the source's identity (ETag, last-modified, size),
 * so a later run can tell an unchanged copy without reading it.
 */
import { BlobFailure } from './errors';
import type { BlobRef } from './messages';
import { storageClassOf, type Writing } from './selection';
import type { BlobProperties, ObjectAttributes } from './stores/types';

export const SOURCE_META = {
  etag: 'azs3copy-source-etag',
  lastModified: 'azs3copy-source-last-modified',
  size: 'azs3copy-source-size',
} as const;

/** S3 allows 2 KB of user metadata, keys and values together, counted in UTF-8. */
export const MAX_METADATA_BYTES = 2048;
export const MAX_TAGS = 10;

export function objectAttributes(props: BlobProperties, blob: BlobRef, writing?: Writing): ObjectAttributes {
  const metadata: Record<string, string> = {};
  for (const [key, value] of Object.entries(props.metadata)) {
    if (key.toLowerCase() === 'hdi_isfolder') continue;
    metadata[key.toLowerCase()] = value;
  }
  metadata[SOURCE_META.etag] = props.etag;
  metadata[SOURCE_META.lastModified] = props.lastModified;
  metadata[SOURCE_META.size] = String(props.size);
  const bytes = Object.entries(metadata).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
  if (bytes > MAX_METADATA_BYTES) {
    throw new BlobFailure(
      `the blob's metadata takes ${bytes} bytes with azs3copy's source fields; S3 allows ${MAX_METADATA_BYTES}: shorten the blob's metadata`,
    );
  }
  if (blob.tags && Object.keys(blob.tags).length > MAX_TAGS) {
    throw new BlobFailure(`the blob has ${Object.keys(blob.tags).length} index tags; S3 allows ${MAX_TAGS}`);
  }
  return {
    contentType: props.contentType,
    contentEncoding: props.contentEncoding,
    contentLanguage: props.contentLanguage,
    contentDisposition: props.contentDisposition,
    cacheControl: props.cacheControl,
    metadata,
    tags: blob.tags,
    storageClass: storageClassOf(writing, blob.tier),
  };
}

/** A copy at `key` is of exactly this blob version. */
export function isCopyOf(metadata: Record<string, string>, blob: Pick<BlobRef, 'etag' | 'size'>): boolean {
  return metadata[SOURCE_META.etag] === blob.etag && metadata[SOURCE_META.size] === String(blob.size);
}
