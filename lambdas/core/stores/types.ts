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
  /** A rehydration under way (`rehydrate-pending-to-cool`...), as Azure lists it. */
  archiveStatus?: string;
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
  /** One blob as the listing shows it (tier, archive state, tags), or undefined when there is none (a blob event's). */
  blob(name: string): Promise<ListedBlob | undefined>;
  /** Read the whole blob or a range, pinned to its ETag; throws SourceChangedError if it changed. */
  read(name: string, etag: string, range?: ByteRange): Promise<BlobRead>;
  /** Start rehydrating an archived blob to the Cool tier at standard priority (takes write permission on the blob). */
  rehydrate(name: string): Promise<void>;
}

export interface ObjectAttributes extends ContentHeaders {
  metadata: Record<string, string>;
  tags?: Record<string, string>;
  /** The S3 storage class to write in (the bucket's default when absent). */
  storageClass?: string;
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
  /**
   * The object's CRC32C as the store keeps it, when it has one: of the whole object, or for one uploaded in
   * parts the composite "<base64>-<parts>" (composite-checksum.ts).
   */
  checksumCrc32c?: string;
  /** Its storage class (absent for the bucket's default, STANDARD). */
  storageClass?: string;
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

/*
 * What a stage may do in the bucket, as small capabilities (as rclone's backends have optional
 * interfaces): each stage declares the ones it uses (lambdas/core/stages/specs.ts), is handed only
 * those, and its function's IAM role is derived from the same declaration (lib/grants.ts).
 */

/** Is the bucket there and reachable. */
export interface BucketCheck {
  /** Fail with a ConfigError if the bucket cannot be reached or written. */
  check(): Promise<void>;
}

/** Read copies: what a run compares against and verifies. */
export interface ObjectReader {
  head(key: string): Promise<StoredObject | undefined>;
  /** Keys after `startAfter` in S3 order, beginning with `prefix`. */
  list(prefix: string, startAfter: string | undefined, maxKeys: number): Promise<{ objects: ListedObject[]; truncated: boolean }>;
  /** The object's bytes from `start` (default 0) to `end` inclusive (default the last). */
  read(key: string, range?: ByteRange): Promise<Readable>;
}

/** Write whole copies. */
export interface ObjectWriter {
  /** Write one object atomically; returns its CRC32C as the store computed it. */
  put(key: string, body: Readable | Buffer, attributes: ObjectAttributes, options: PutOptions): Promise<{ checksumCrc32c?: string }>;
}

/** Remove copies: one found wrong, or (mirror) one whose blob is gone. */
export interface ObjectDeleter {
  delete(key: string): Promise<void>;
  /** Delete up to 1,000 keys in one request; the keys that could not be deleted, with why. */
  deleteMany(keys: string[]): Promise<{ key: string; reason: string }[]>;
}

/** Start, feed and abandon multipart uploads. */
export interface MultipartWriter {
  createUpload(key: string, attributes: ObjectAttributes): Promise<string>;
  /** `checksumCrc32c` as in PutOptions: the part's CRC32C when the caller already has it. */
  uploadPart(key: string, uploadId: string, partNumber: number, body: Readable | Buffer, length: number, checksumCrc32c?: string): Promise<UploadedPart>;
  /** Uploads in progress for exactly this key. */
  listUploads(key: string): Promise<{ uploadId: string; initiated?: string }[]>;
  abort(key: string, uploadId: string): Promise<void>;
}

/** Finish multipart uploads. */
export interface Completer {
  /**
   * Every part of the upload, across as many pages as it takes (or fewer, once `stopEarly` says the answer
   * is known); undefined when the upload no longer exists.
   */
  listParts(key: string, uploadId: string, stopEarly?: (partsSoFar: UploadedPart[]) => boolean): Promise<UploadedPart[] | undefined>;
  /** 'completed', or 'missing' when the upload is gone (completed before, or aborted). */
  complete(key: string, uploadId: string, parts: UploadedPart[]): Promise<'completed' | 'missing'>;
}

/** The pipeline's own objects under the state prefix (manifests, reports, dead letters). */
export interface StateObjects {
  getJson<T>(key: string): Promise<T | undefined>;
  putJson(key: string, value: unknown, options?: { ifAbsent?: boolean }): Promise<boolean>;
  /** A state object that is not JSON (a report page). */
  putText(key: string, text: string, contentType: string): Promise<void>;
  deleteState(key: string): Promise<void>;
}

export interface SinkCapabilities {
  check: BucketCheck;
  reader: ObjectReader;
  writer: ObjectWriter;
  deleter: ObjectDeleter;
  multipart: MultipartWriter;
  completer: Completer;
  state: StateObjects;
}
export type SinkCapability = keyof SinkCapabilities;

/** Every capability: what a store implements in full. */
export type ObjectSink = BucketCheck & ObjectReader & ObjectWriter & ObjectDeleter & MultipartWriter & Completer & StateObjects;

/** The methods of each capability, so a stage can be handed exactly its own at run time too. */
export const CAPABILITY_METHODS = {
  check: ['check'],
  reader: ['head', 'list', 'read'],
  writer: ['put'],
  deleter: ['delete', 'deleteMany'],
  multipart: ['createUpload', 'uploadPart', 'listUploads', 'abort'],
  completer: ['listParts', 'complete'],
  state: ['getJson', 'putJson', 'putText', 'deleteState'],
} as const satisfies { [C in SinkCapability]: readonly (keyof SinkCapabilities[C])[] };

/** Every method of each capability is listed above (a compile error names the capability otherwise). */
type Unlisted<C extends SinkCapability> = Exclude<keyof SinkCapabilities[C], (typeof CAPABILITY_METHODS)[C][number]>;
export const EVERY_METHOD_LISTED: { [C in SinkCapability]: [Unlisted<C>] extends [never] ? true : Unlisted<C> } = {
  check: true, reader: true, writer: true, deleter: true, multipart: true, completer: true, state: true,
};

type UnionToIntersection<U> = (U extends unknown ? (k: U) => void : never) extends (k: infer I) => void ? I : never;

/** A sink holding exactly these capabilities. */
export type SinkWith<C extends SinkCapability> = UnionToIntersection<SinkCapabilities[C]>;

/** The view of `sink` that holds only `needs`: a method of another capability is not there at all. */
export function sinkWith<C extends SinkCapability>(sink: ObjectSink, needs: readonly C[]): SinkWith<C> {
  const view: Record<string, unknown> = {};
  for (const capability of needs) {
    for (const method of CAPABILITY_METHODS[capability]) {
      const fn = (sink as unknown as Record<string, (...args: unknown[]) => unknown>)[method];
      view[method] = fn.bind(sink);
    }
  }
  return view as SinkWith<C>;
}
