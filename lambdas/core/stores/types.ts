/**
 * The two small interfaces every store implements: a source of blobs and a sink
 * of objects. Stages talk only to these, so the same stage logic runs against
 * Azure and S3, the emulators, or an in-memory double in a unit test.
 */
import type { Readable } from 'node:stream';
import type { BlobRef } from '../messages';

/** The five content headers both stores know. */
export interface ContentHeaders {
  contentType?: string;
  contentEncoding?: string;
  contentLanguage?: string;
  contentDisposition?: string;
  cacheControl?: string;
}

export type BlobKind = 'BlockBlob' | 'PageBlob' | 'AppendBlob';

/** One entry of a container listing. */
export interface ListedBlob extends BlobRef {
  kind?: BlobKind;
  accessTier?: string;
  /** A hierarchical-namespace directory marker: zero bytes and `hdi_isfolder=true`. */
  isDirectoryMarker: boolean;
  /** Archived blobs cannot be read until rehydrated (rehydration may be pending). */
  isArchived: boolean;
}

export interface ListPage {
  blobs: ListedBlob[];
  continuation?: string;
}

export interface BlobProperties extends ContentHeaders {
  etag: string;
  size: number;
  lastModified: string;
  contentMd5?: string;
  metadata: Record<string, string>;
}

/** An open read of a blob or a range of it, pinned to one ETag. */
export interface BlobRead extends BlobProperties {
  body: Readable;
  /** Bytes this read will deliver. */
  length: number;
}

export interface ByteRange {
  /** First byte, inclusive. */
  start: number;
  /** Last byte, inclusive. */
  end: number;
}

export interface BlobSource {
  /** Fail with a ConfigError if the container cannot be reached or read. */
  check(): Promise<void>;
  listPage(continuation: string | undefined, maxPageSize: number): Promise<ListPage>;
  /** Properties of the blob, pinned to an ETag when given (SourceChangedError if it has changed). */
  properties(name: string, etag?: string): Promise<BlobProperties>;
  /** Read the whole blob or a range, pinned to its ETag; throws SourceChangedError if it changed. */
  read(name: string, etag: string, range?: ByteRange): Promise<BlobRead>;
}

export interface ObjectAttributes extends ContentHeaders {
  metadata: Record<string, string>;
  tags?: Record<string, string>;
}

export interface PutOptions {
  length: number;
  /** Base64 MD5 the bytes must match; the sink has the store reject the write if they do not. */
  contentMd5?: string;
  /**
   * Base64 CRC32C of the bytes, when the caller computed it while reading them (a buffered body):
   * sent in the request's header. Without it the sink has the SDK compute one (as a trailer for a stream).
   */
  checksumCrc32c?: string;
}

export interface StoredObject {
  key: string;
  size: number;
  lastModified: string;
  metadata: Record<string, string>;
}

export interface ListedObject {
  key: string;
  size: number;
  lastModified: string;
  etag?: string;
}

export interface UploadedPart {
  partNumber: number;
  etag: string;
  size: number;
  checksumCrc32c?: string;
}

export interface ObjectSink {
  /** Fail with a ConfigError if the bucket cannot be reached or written. */
  check(): Promise<void>;
  /** Write one object atomically; returns its CRC32C as the store computed it. */
  put(key: string, body: Readable | Buffer, attributes: ObjectAttributes, options: PutOptions): Promise<{ checksumCrc32c?: string }>;
  head(key: string): Promise<StoredObject | undefined>;
  /** Keys after `startAfter` in S3 order, beginning with `prefix`. */
  list(prefix: string, startAfter: string | undefined, maxKeys: number): Promise<{ objects: ListedObject[]; truncated: boolean }>;
  read(key: string): Promise<Readable>;
  delete(key: string): Promise<void>;

  createUpload(key: string, attributes: ObjectAttributes): Promise<string>;
  /** `checksumCrc32c` as in PutOptions: the part's CRC32C when the caller already has it. */
  uploadPart(key: string, uploadId: string, partNumber: number, body: Readable | Buffer, length: number, checksumCrc32c?: string): Promise<UploadedPart>;
  /**
   * Every part of the upload, across as many pages as it takes (or fewer, once `stopEarly` says the answer
   * is known); undefined when the upload no longer exists.
   */
  listParts(key: string, uploadId: string, stopEarly?: (partsSoFar: UploadedPart[]) => boolean): Promise<UploadedPart[] | undefined>;
  /** Uploads in progress for exactly this key. */
  listUploads(key: string): Promise<{ uploadId: string; initiated?: string }[]>;
  /** 'completed', or 'missing' when the upload is gone (completed before, or aborted). */
  complete(key: string, uploadId: string, parts: UploadedPart[]): Promise<'completed' | 'missing'>;
  abort(key: string, uploadId: string): Promise<void>;

  getJson<T>(key: string): Promise<T | undefined>;
  putJson(key: string, value: unknown, options?: { ifAbsent?: boolean }): Promise<boolean>;
}
