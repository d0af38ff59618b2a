/** What a resource handler gets and gives back. */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { IAMClient } from '@aws-sdk/client-iam';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SNSClient } from '@aws-sdk/client-sns';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { StackAssembly } from '../assembly';
import type { AwsConfig, RoleUser } from '../iam';

/** Clients signed with the admin's key. */
export interface AdminClients {
  config: AwsConfig;
  s3: S3Client;
  sqs: SQSClient;
  sns: SNSClient;
  secrets: SecretsManagerClient;
  dynamodb: DynamoDBClient;
  iam: IAMClient;
  /** A KMS call (no SDK client in the project): `kms('CreateKey', {...})`. */
  kms<T = any>(operation: string, input: unknown): Promise<T>;
}

/** The parts of the template the box runs itself rather than creating in moto. */
export interface LambdaPlan {
  functions: { logicalId: string; name: string; arn: string; props: Record<string, any>; codeDir: string }[];
  /** Layer version ARN -> its content directory. */
  layers: Map<string, string>;
  invokeConfigs: { logicalId: string; props: Record<string, any> }[];
  mappings: { logicalId: string; uuid: string; props: Record<string, any> }[];
  snsLambda: { logicalId: string; topicArn: string; functionArn: string; subscriptionArn: string; tapQueueUrl: string }[];
  /** Each execution role's stand-in user, by role ARN and by role name. */
  roleUsers: Map<string, RoleUser>;
}

export interface BoxResourceOptions {
  /** Replace every queue's VisibilityTimeout (seconds), so a failed batch comes back quickly in a test. */
  visibilityTimeoutSeconds?: number;
}

export interface ResourceContext {
  logicalId: string;
  type: string;
  /** The resource's Properties, every intrinsic resolved. */
  props: Record<string, any>;
  stackName: string;
  region: string;
  account: string;
  admin: AdminClients;
  plan: LambdaPlan;
  assembly: StackAssembly;
  options: BoxResourceOptions;
  /** A name as CloudFormation generates one: `<stack>-<logicalId>-<random>`, cut to `maxLength`. */
  generatedName(maxLength: number, options?: { lowercase?: boolean; suffix?: string }): string;
}

export interface Provisioned {
  /** created: exists in moto; emulated: run by the box itself. */
  status: 'created' | 'emulated';
  ref: string;
  attrs?: Record<string, string>;
  /** The physical name, when the resource has one. */
  name?: string;
  /** What the box left out of this resource, or did differently. */
  note?: string;
}

export type ResourceHandler = (ctx: ResourceContext) => Promise<Provisioned>;

/** Properties a handler does not apply, for its note. */
export function unapplied(props: Record<string, unknown>, applied: readonly string[]): string | undefined {
  const left = Object.keys(props).filter((k) => !applied.includes(k) && k !== 'Tags');
  return left.length ? `not applied: ${left.join(', ')}` : undefined;
}

export function tagList(props: Record<string, any>): { Key: string; Value: string }[] | undefined {
  const tags = props.Tags as { Key: string; Value: string }[] | undefined;
  return tags?.length ? tags : undefined;
}

/** Thrown by a handler for a resource (or a form of it) the box cannot emulate: the resource is listed as skipped. */
export class Unsupported extends Error {
  override name = 'Unsupported';
}
