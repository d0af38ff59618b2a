/**
 * Every message that travels between stages: one zod schema each, the TypeScript
 * type inferred from it, and a version field so a replay from a dead-letter queue
 * written by an older release is recognised rather than misread.
 *
 * Messages carry identifiers and non-secret run settings only. Credentials are
 * re-read from the secret by each stage that needs them.
 */
import * as z from 'zod';

export const MESSAGE_VERSION = 1 as const;

/** Non-secret settings fixed when a run starts, so every stage of one run agrees. */
export const RunSettingsSchema = z.object({
  account: z.string().min(1),
  container: z.string().min(1),
  /** Blob service endpoint when it is not the public cloud's (Azurite, sovereign clouds). */
  blobEndpoint: z.string().url().optional(),
  bucket: z.string().min(1),
  prefix: z.string(),
  /** Only blobs last modified strictly after this instant are copied. */
  beginDate: z.string().datetime({ offset: true }).optional(),
  /** Blobs of this size or larger take the multipart path. */
  largeBlobBytes: z.number().int().positive(),
  /** Requested part size; grown per blob so that no upload needs more than 10,000 parts. */
  partBytes: z.number().int().min(5 * 1024 * 1024),
});
export type RunSettings = z.infer<typeof RunSettingsSchema>;

/** The identity of one blob version as listed; enough to pin every read to it. */
export const BlobRefSchema = z.object({
  name: z.string().min(1).max(1024),
  etag: z.string().min(1),
  size: z.number().int().nonnegative(),
  lastModified: z.string().datetime({ offset: true }),
  /** Base64 Content-MD5 stored on the blob, when Azure has one. */
  contentMd5: z.string().optional(),
  /** Blob index tags from the listing (at most 10). */
  tags: z.record(z.string(), z.string()).optional(),
});
export type BlobRef = z.infer<typeof BlobRefSchema>;

const base = {
  v: z.literal(MESSAGE_VERSION),
  runId: z.string().min(1),
  run: RunSettingsSchema,
};

/** qualify -> find-blobs, and find-blobs -> itself to continue a listing. */
export const ListPageMessageSchema = z.object({
  ...base,
  kind: z.literal('list-page'),
  /** Azure continuation token; absent on the first page. */
  continuation: z.string().optional(),
  /** The destination key of the last blob already routed, where the destination listing resumes. */
  afterKey: z.string().optional(),
  /** How many listing invocations came before this one (for progress and loop guards). */
  invocation: z.number().int().nonnegative(),
});
export type ListPageMessage = z.infer<typeof ListPageMessageSchema>;

/** find-blobs -> download: a batch of small blobs. */
export const CopyBlobsMessageSchema = z.object({
  ...base,
  kind: z.literal('copy-blobs'),
  blobs: z.array(BlobRefSchema).min(1),
});
export type CopyBlobsMessage = z.infer<typeof CopyBlobsMessageSchema>;

/** find-blobs -> largefile-initializer (and parter -> initializer to re-plan a changed blob). */
export const LargeBlobMessageSchema = z.object({
  ...base,
  kind: z.literal('large-blob'),
  blob: BlobRefSchema,
  /** How many times this blob has been re-planned after changing mid-copy. */
  replans: z.number().int().nonnegative(),
});
export type LargeBlobMessage = z.infer<typeof LargeBlobMessageSchema>;

/** The part of a multipart upload that one parter invocation copies. */
export const PartRangeSchema = z.object({
  partNumber: z.number().int().min(1).max(10_000),
  /** First byte, inclusive. */
  start: z.number().int().nonnegative(),
  /** Last byte, inclusive. */
  end: z.number().int().nonnegative(),
});
export type PartRange = z.infer<typeof PartRangeSchema>;

const uploadFields = {
  blob: BlobRefSchema,
  key: z.string().min(1),
  uploadId: z.string().min(1),
  partCount: z.number().int().min(1).max(10_000),
  partBytes: z.number().int().positive(),
  replans: z.number().int().nonnegative(),
};

/** largefile-initializer -> parter: copy one byte range into one part. */
export const CopyPartMessageSchema = z.object({
  ...base,
  kind: z.literal('copy-part'),
  ...uploadFields,
  part: PartRangeSchema,
});
export type CopyPartMessage = z.infer<typeof CopyPartMessageSchema>;

/** parter -> recombinator: a part is in; complete the upload if every part is. */
export const PartsDoneMessageSchema = z.object({
  ...base,
  kind: z.literal('parts-done'),
  ...uploadFields,
});
export type PartsDoneMessage = z.infer<typeof PartsDoneMessageSchema>;

export const StageMessageSchema = z.discriminatedUnion('kind', [
  ListPageMessageSchema,
  CopyBlobsMessageSchema,
  LargeBlobMessageSchema,
  CopyPartMessageSchema,
  PartsDoneMessageSchema,
]);
export type StageMessage = z.infer<typeof StageMessageSchema>;

/** SNS refuses messages over 256 KiB; stay well under it to leave room for the envelope. */
export const MAX_MESSAGE_BYTES = 200 * 1024;

export function messageBytes(message: StageMessage): number {
  return Buffer.byteLength(JSON.stringify(message), 'utf8');
}

/** Parse a message body; the error names the path of the first bad field. */
export function parseStageMessage(body: unknown, where: string): StageMessage {
  let value = body;
  if (typeof body === 'string') {
    try {
      value = JSON.parse(body);
    } catch {
      throw new MessageError(`${where}: message is not JSON`);
    }
  }
  const parsed = StageMessageSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = [where, ...issue.path.map(String)].join('.');
    throw new MessageError(`${path}: ${issue.message}`);
  }
  return parsed.data;
}

export class MessageError extends Error {
  override name = 'MessageError';
}
