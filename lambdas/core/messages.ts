/**
 * Every message that travels between stages: one zod schema each, the TypeScript
 * type inferred from it, and a version field so a replay from a dead-letter queue
 * written by an older release is recognised rather than misread.
 *
 * Messages carry identifiers and non-secret run settings only. Credentials are
 * re-read from the secret by each stage that needs them.
 */
import * as z from 'zod';
import { FiltersSchema } from './filters';
import { WritingSchema } from './selection';

/**
 * 2 added the accounting unit (`unit`, and each small blob's place `i` in it) and `attempt`. A message of
 * version 1, still in flight when a newer release is deployed, is taken as before and simply not counted
 * (its run kept no state).
 */
export const MESSAGE_VERSION = 2 as const;
/**
 * 3 marks a message of a run with several destinations (`also`, a blob's `to`, an upload's `d` and `lanes`).
 * Only those carry it: a release before it would drop those fields and copy to the first destination alone, so
 * it must refuse them (into the dead-letter queue, redriven after the upgrade) rather than misread them.
 */
export const SEVERAL_DESTINATIONS_VERSION = 3 as const;
export const ACCEPTED_VERSIONS = [1, 2, 3] as const;

/** The message with the version its content needs. */
export function stamped<M extends { v: number; run: { also?: unknown[] } }>(message: M): M {
  return message.run.also?.length ? { ...message, v: SEVERAL_DESTINATIONS_VERSION } : message;
}

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
  /** The largest part a parter copies within its timeout (an older release's run has none: S3's 5 GiB). */
  maxPartBytes: z.number().int().min(5 * 1024 * 1024).optional(),
  /** Which blobs the run takes (include and exclude globs, a size range). */
  filters: FiltersSchema.optional(),
  /** The S3 storage class of the copies, by the blob's access tier or for all. */
  writing: WritingSchema.optional(),
  /** What becomes of archived blobs: reported as skipped, or their rehydration started. @default skip */
  archive: z.enum(['skip', 'rehydrate']).optional(),
  /** Delete copies (objects azs3copy wrote) whose blob is gone from the source. */
  mirror: z.boolean().optional(),
  maxDeletes: z.number().int().nonnegative().optional(),
  /** List and compare only: the run's report is the plan. */
  dryRun: z.boolean().optional(),
  /**
   * Further destinations, after the first (`bucket` and `prefix`, which also keeps the run's state): each blob
   * is read from Azure once and written to each of them (lambdas/core/destinations.ts).
   */
  also: z.array(z.object({ bucket: z.string().min(1), prefix: z.string(), region: z.string().min(1).optional() })).max(9).optional(),
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
  /** The blob's access tier as listed (Hot, Cool, Cold), which picks its copy's storage class under a tier map. */
  tier: z.string().optional(),
  /** The destinations (by place: 0 is the first) that need this version; absent, all of them. */
  to: z.array(z.number().int().min(0).max(9)).min(1).optional(),
});
export type BlobRef = z.infer<typeof BlobRefSchema>;

const base = {
  v: z.union([z.literal(1), z.literal(2), z.literal(3)]),
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
  /** Mirror: every container is listed; delete what the listing found, from this step and unit on. */
  deleting: z.object({ step: z.number().int().nonnegative(), after: z.string().optional() }).optional(),
});
export type ListPageMessage = z.infer<typeof ListPageMessageSchema>;

/**
 * The run's unit of accounting a message's blobs belong to (see run-ledger.ts): the blobs of one copy
 * message as the listing routed them, or one large blob.
 */
const unit = z.string().regex(/^[A-Za-z0-9._:+=@-]{1,200}$/).optional();

/** find-blobs -> download: a batch of small blobs. */
export const CopyBlobsMessageSchema = z.object({
  ...base,
  kind: z.literal('copy-blobs'),
  unit,
  /** Each blob, with its place in the unit when the message is a part of it (blobs sent round again). */
  blobs: z.array(BlobRefSchema.extend({ i: z.number().int().nonnegative().optional() })).min(1),
  /** 1 for the listing's message; more for blobs sent round again after a transient failure. */
  attempt: z.number().int().positive().optional(),
});
export type CopyBlobsMessage = z.infer<typeof CopyBlobsMessageSchema>;

/** find-blobs -> largefile-initializer (and parter -> initializer to re-plan a changed blob). */
export const LargeBlobMessageSchema = z.object({
  ...base,
  kind: z.literal('large-blob'),
  unit,
  blob: BlobRefSchema,
  /** The blob's place in its unit (a small blob that grew is in a unit of several). */
  i: z.number().int().nonnegative().optional(),
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
  unit,
  blob: BlobRefSchema,
  i: z.number().int().nonnegative().optional(),
  key: z.string().min(1),
  uploadId: z.string().min(1),
  /** The destination (by place) `key` and `uploadId` are in; absent, the first. */
  d: z.number().int().min(0).max(9).optional(),
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
  /** The same part of the blob's uploads in further destinations: one read of the range, written to each. */
  lanes: z.array(z.object({ d: z.number().int().min(0).max(9), key: z.string().min(1), uploadId: z.string().min(1) })).optional(),
});
export type CopyPartMessage = z.infer<typeof CopyPartMessageSchema>;

/**
 * parter -> recombinator: every part is in (an older release sent it after each part); complete the upload.
 * recombinator -> itself with `verify`: go on checking the completed copy against the blob's Content-MD5.
 */
export const PartsDoneMessageSchema = z.object({
  ...base,
  kind: z.literal('parts-done'),
  ...uploadFields,
  verify: z.boolean().optional(),
  /**
   * CompleteMultipartUpload was sent at this instant and its answer not waited for past the invocation's time
   * (S3 goes on completing); the next invocations look for the object rather than ask again.
   */
  completingSince: z.string().datetime({ offset: true }).optional(),
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
