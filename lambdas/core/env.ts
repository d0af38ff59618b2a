/**
 * The environment variables a deployed function reads, named in one place that
 * both the handlers and the CDK constructs import, so wiring cannot drift.
 */
import type { TopicStage } from './stages/specs';

export const ENV = {
  secretArn: 'AZS3COPY_SECRET_ARN',
  bucket: 'AZS3COPY_BUCKET',
  prefix: 'AZS3COPY_PREFIX',
  largeBlobBytes: 'AZS3COPY_LARGE_BLOB_BYTES',
  partBytes: 'AZS3COPY_PART_BYTES',
  downloadConcurrency: 'AZS3COPY_DOWNLOAD_CONCURRENCY',
  /** The deployment's prefix code, the value of the metrics' Pipeline dimension, and the run lock's name. */
  pipeline: 'AZS3COPY_PIPELINE',
  /** The DynamoDB table that holds the runs' state. */
  runTable: 'AZS3COPY_RUN_TABLE',
  /** The topic that hears one line when a run ends. */
  operatorTopic: 'AZS3COPY_OPERATOR_TOPIC',
  /** JSON {queue name: queue URL} of the stages' dead-letter queues, searched for a stalled run's blobs. */
  deadLetterQueues: 'AZS3COPY_DEAD_LETTER_QUEUES',
  /** The parter's timeout in seconds: parts are planned to fit in it. */
  partTimeoutSeconds: 'AZS3COPY_PART_TIMEOUT_SECONDS',
  /** Seconds without progress before a run with blobs outstanding is stalled. */
  stallAfterSeconds: 'AZS3COPY_STALL_AFTER_SECONDS',
  /** JSON [{bucket, prefix, region}] of the deployment's further destinations (the secret's "destinations" wins). */
  also: 'AZS3COPY_ALSO',
} as const;

/** The variable holding the ARN of the topic that feeds a stage. */
export function topicEnv(stage: TopicStage): string {
  return `AZS3COPY_TOPIC_${stage.toUpperCase().replace(/-/g, '_')}`;
}

/** Read a required variable, failing at module load with the variable's name. */
export function required(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const value = env[name];
  if (!value) throw new Error(`environment variable ${name} is not set; the stack sets it, so redeploy`);
  return value;
}

export function numberFrom(name: string, fallback: number, env: NodeJS.ProcessEnv = process.env): number {
  const value = env[name];
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`environment variable ${name} is "${value}", not a positive number`);
  return n;
}
