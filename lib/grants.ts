/**
 * What each stage may do, derived from what its code is given: the bucket
 * capabilities its spec declares (lambdas/core/stages/specs.ts), each mapped here
 * to the S3 actions its implementation calls (lambdas/core/stores/s3-sink.ts).
 * This is the one table; a stage's role is built from its spec through it, and the
 * pipeline-in-a-box tests run every deployed function under exactly that role
 * with IAM enforced, so a call the table does not cover fails a test as it would
 * fail in AWS.
 */
import { AZURE_TOKEN_EXCHANGE_AUDIENCE, WEB_IDENTITY_SIGNING_ALGORITHM, WEB_IDENTITY_TOKEN_SECONDS } from '../lambdas/core/federation';
import { STAGE_SPECS, type StageName } from '../lambdas/core/stages/specs';
import type { SinkCapability } from '../lambdas/core/stores/types';

/**
 * Where an action applies: the bucket itself, any object (a copy lands wherever the run's prefix says), or
 * only the pipeline's own state objects (`.azs3copy-state/*`).
 */
export interface BucketAccess {
  readonly bucket?: readonly string[];
  readonly objects?: readonly string[];
  readonly state?: readonly string[];
}

/**
 * s3:ListBucket is what lets S3 answer "404 Not Found" rather than "403 Access Denied" for a key that does not
 * exist, so every capability that reads a key that may be absent has it.
 */
const LIST = 's3:ListBucket';

export const CAPABILITY_GRANTS: Record<SinkCapability, BucketAccess> = {
  // HeadBucket is authorised by s3:ListBucket.
  check: { bucket: [LIST] },
  reader: { bucket: [LIST], objects: ['s3:GetObject'] },
  writer: { objects: ['s3:PutObject', 's3:PutObjectTagging'] },
  // DeleteObjects (a batch) is authorized as s3:DeleteObject on each key.
  deleter: { objects: ['s3:DeleteObject'] },
  // ListParts: a part whose UploadPart failed with a 5xx is checked against the upload before it is retried.
  multipart: {
    bucket: ['s3:ListBucketMultipartUploads'],
    objects: ['s3:PutObject', 's3:PutObjectTagging', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'],
  },
  completer: { objects: ['s3:ListMultipartUploadParts', 's3:PutObject'] },
  state: { bucket: [LIST], state: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'] },
};

/** Object actions that write (and so need a data key from the bucket's KMS key). */
export const WRITE_ACTIONS: readonly string[] = ['s3:PutObject'];

/**
 * The run state's table, as the state code uses it (lambdas/core/state/dynamo-table.ts): items read, written,
 * conditionally written and deleted, partitions queried; a transaction needs each of its items' actions
 * (ConditionCheckItem for its conditions).
 */
export const RUN_STATE_ACTIONS: readonly string[] = [
  'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:Query', 'dynamodb:ConditionCheckItem',
];

/** A stage's bucket access: the union of its capabilities' grants, each action once. */
export function bucketAccessOf(stage: StageName): BucketAccess {
  const union = { bucket: new Set<string>(), objects: new Set<string>(), state: new Set<string>() };
  for (const capability of STAGE_SPECS[stage].needs as readonly SinkCapability[]) {
    const grant = CAPABILITY_GRANTS[capability];
    for (const scope of ['bucket', 'objects', 'state'] as const) for (const action of grant[scope] ?? []) union[scope].add(action);
  }
  // An action on every object covers the state objects too.
  for (const action of union.objects) union.state.delete(action);
  const list = (set: Set<string>) => (set.size ? [...set].sort() : undefined);
  return { bucket: list(union.bucket), objects: list(union.objects), state: list(union.state) };
}

/**
 * Signing in to Azure as the function's own role (a stage that reads Azure, with a federated secret): a web
 * identity token for Entra ID's audience only, as short-lived and as signed as the functions ask for
 * (lambdas/core/federation.ts). GetWebIdentityToken acts on no resource: the conditions are what limit it.
 */
export const AZURE_SIGN_IN_GRANT = {
  actions: ['sts:GetWebIdentityToken'],
  conditions: {
    'ForAllValues:StringEquals': { 'sts:IdentityTokenAudience': AZURE_TOKEN_EXCHANGE_AUDIENCE },
    // ForAllValues holds for a request without the key: require it.
    Null: { 'sts:IdentityTokenAudience': 'false' },
    // As a string: IAM takes a string or a number here, moto's policy check only a string.
    NumericLessThanEquals: { 'sts:DurationSeconds': String(WEB_IDENTITY_TOKEN_SECONDS) },
    StringEquals: { 'sts:SigningAlgorithm': WEB_IDENTITY_SIGNING_ALGORITHM },
  },
} as const;
