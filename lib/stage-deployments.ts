/**
 * What each stage is given when deployed: its size, its concurrency, the topics
 * it publishes to and what it may do in the bucket. One table, read by the
 * pipeline construct (which wires and grants from it) and by the tests (which
 * check the template against it), so the two cannot drift.
 */
import type { StageName, TopicStage } from '../lambdas/core/stages';

/** A function's size; each field can be overridden through the `functions` context. */
export interface FunctionSizing {
  /** Memory in MiB (128-10240); CPU and network bandwidth grow with it. */
  readonly memoryMiB: number;
  /** Timeout in minutes (at most 15). */
  readonly timeoutMinutes: number;
  /** Concurrent executions reserved for the function, which also cap it. */
  readonly reservedConcurrency: number;
}

/**
 * What a stage may do in the destination bucket. Object actions are split by
 * where they apply: `objects` on any key (a copy lands wherever the run's prefix
 * says), `state` only under the pipeline's state prefix (`.azs3copy-state/`).
 */
export interface BucketAccess {
  /** Actions on the bucket itself. */
  readonly bucket?: readonly string[];
  /** Object actions on every key in the bucket. */
  readonly objects?: readonly string[];
  /** Object actions only on the pipeline's own state objects. */
  readonly state?: readonly string[];
}

export interface StageDeployment {
  /** One line for the function's description. */
  readonly description: string;
  readonly sizing: FunctionSizing;
  /** The topics (named by the stage they feed) this stage publishes to. */
  readonly publishesTo: readonly TopicStage[];
  readonly bucketAccess: BucketAccess;
}

/**
 * s3:ListBucket is what lets S3 answer "404 Not Found" rather than "403 Access
 * Denied" for a key that does not exist. Every stage that HEADs or GETs a key
 * that may be absent (a copy not made yet, a state manifest already cleared)
 * needs it to tell "missing" from "forbidden".
 */
const LIST = 's3:ListBucket';

export const STAGE_DEPLOYMENTS: Record<StageName, StageDeployment> = {
  qualify: {
    description: 'Starts a run: reads the secret, checks source and bucket, publishes the first listing message',
    sizing: { memoryMiB: 256, timeoutMinutes: 1, reservedConcurrency: 1 },
    publishesTo: ['find-blobs'],
    // HeadBucket is authorised by s3:ListBucket.
    bucketAccess: { bucket: [LIST] },
  },
  'find-blobs': {
    description: 'Lists the container a page at a time, continuing itself through its own topic',
    sizing: { memoryMiB: 1024, timeoutMinutes: 15, reservedConcurrency: 1 },
    publishesTo: ['find-blobs', 'download', 'largefile-initializer'],
    bucketAccess: { bucket: [LIST], objects: ['s3:GetObject'] },
  },
  download: {
    description: 'Copies small blobs, each streamed into one PUT',
    sizing: { memoryMiB: 1024, timeoutMinutes: 15, reservedConcurrency: 50 },
    publishesTo: [],
    // DeleteObject: a streamed copy whose bytes turn out not to match the blob's Content-MD5 is deleted.
    bucketAccess: { objects: ['s3:PutObject', 's3:PutObjectTagging', 's3:DeleteObject'] },
  },
  'largefile-initializer': {
    description: 'Starts or resumes the multipart upload of a large blob and plans its parts',
    sizing: { memoryMiB: 512, timeoutMinutes: 5, reservedConcurrency: 5 },
    // download and itself: a blob that changed since it was listed is re-planned (replan).
    publishesTo: ['parter', 'recombinator', 'download', 'largefile-initializer'],
    bucketAccess: {
      bucket: [LIST, 's3:ListBucketMultipartUploads'],
      objects: ['s3:GetObject', 's3:PutObject', 's3:PutObjectTagging', 's3:ListMultipartUploadParts', 's3:AbortMultipartUpload'],
      state: ['s3:DeleteObject'],
    },
  },
  parter: {
    description: 'Copies one byte range of a large blob into one part of its upload',
    sizing: { memoryMiB: 1024, timeoutMinutes: 15, reservedConcurrency: 200 },
    publishesTo: ['recombinator', 'largefile-initializer', 'download'],
    bucketAccess: {
      bucket: [LIST],
      objects: ['s3:PutObject', 's3:AbortMultipartUpload'],
      state: ['s3:GetObject', 's3:DeleteObject'],
    },
  },
  recombinator: {
    description: 'Completes a multipart upload once every part is in, and verifies it',
    sizing: { memoryMiB: 512, timeoutMinutes: 15, reservedConcurrency: 5 },
    publishesTo: [],
    bucketAccess: {
      bucket: [LIST],
      objects: ['s3:ListMultipartUploadParts', 's3:PutObject', 's3:GetObject', 's3:DeleteObject', 's3:AbortMultipartUpload'],
    },
  },
};

/** Object actions that write (and so need a data key from the bucket's KMS key). */
export const WRITE_ACTIONS: readonly string[] = ['s3:PutObject'];
