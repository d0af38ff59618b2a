/**
 * The S3 bucket (and its policy), the Secrets Manager secret and DynamoDB tables,
 * created in moto from their template properties.
 */
import { randomBytes } from 'node:crypto';
import { CreateTableCommand, UpdateTimeToLiveCommand, type CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import {
  CreateBucketCommand,
  PutBucketEncryptionCommand,
  PutBucketLifecycleConfigurationCommand,
  PutBucketOwnershipControlsCommand,
  PutBucketPolicyCommand,
  PutBucketTaggingCommand,
  PutBucketVersioningCommand,
  PutPublicAccessBlockCommand,
  type LifecycleRule,
  type S3Client,
} from '@aws-sdk/client-s3';
import { CreateSecretCommand } from '@aws-sdk/client-secrets-manager';
import { unapplied, tagList, type ResourceHandler } from './types';

function lifecycleRule(rule: Record<string, any>): LifecycleRule {
  const noncurrentDays = rule.NoncurrentVersionExpiration?.NoncurrentDays ?? rule.NoncurrentVersionExpirationInDays;
  return {
    ID: rule.Id,
    Status: rule.Status,
    Filter: { Prefix: rule.Prefix ?? '' },
    AbortIncompleteMultipartUpload: rule.AbortIncompleteMultipartUpload,
    Expiration: rule.ExpirationInDays !== undefined ? { Days: Number(rule.ExpirationInDays) } : undefined,
    NoncurrentVersionExpiration: noncurrentDays !== undefined ? { NoncurrentDays: Number(noncurrentDays) } : undefined,
  };
}

const BUCKET_APPLIED = [
  'BucketName', 'BucketEncryption', 'LifecycleConfiguration', 'VersioningConfiguration', 'PublicAccessBlockConfiguration', 'OwnershipControls',
];

/** Create a bucket in the stack's region. */
export async function createBucket(s3: S3Client, name: string, region: string): Promise<void> {
  await s3.send(new CreateBucketCommand({ Bucket: name, CreateBucketConfiguration: region === 'us-east-1' ? undefined : { LocationConstraint: region as never } }));
}

const bucket: ResourceHandler = async (ctx) => {
  const { props, admin, region } = ctx;
  const name = props.BucketName ?? ctx.generatedName(63, { lowercase: true });
  const s3 = admin.s3;
  await createBucket(s3, name, region);
  if (props.VersioningConfiguration?.Status) {
    await s3.send(new PutBucketVersioningCommand({ Bucket: name, VersioningConfiguration: { Status: props.VersioningConfiguration.Status } }));
  }
  const encryption = props.BucketEncryption?.ServerSideEncryptionConfiguration as Record<string, any>[] | undefined;
  if (encryption?.length) {
    await s3.send(
      new PutBucketEncryptionCommand({
        Bucket: name,
        ServerSideEncryptionConfiguration: {
          Rules: encryption.map((r) => ({ ApplyServerSideEncryptionByDefault: r.ServerSideEncryptionByDefault, BucketKeyEnabled: r.BucketKeyEnabled })),
        },
      }),
    );
  }
  const rules = props.LifecycleConfiguration?.Rules as Record<string, any>[] | undefined;
  if (rules?.length) {
    await s3.send(new PutBucketLifecycleConfigurationCommand({ Bucket: name, LifecycleConfiguration: { Rules: rules.map(lifecycleRule) } }));
  }
  if (props.PublicAccessBlockConfiguration) {
    await s3.send(new PutPublicAccessBlockCommand({ Bucket: name, PublicAccessBlockConfiguration: props.PublicAccessBlockConfiguration }));
  }
  if (props.OwnershipControls) await s3.send(new PutBucketOwnershipControlsCommand({ Bucket: name, OwnershipControls: props.OwnershipControls }));
  const tags = tagList(props);
  if (tags) await s3.send(new PutBucketTaggingCommand({ Bucket: name, Tagging: { TagSet: tags } }));
  return {
    status: 'created',
    ref: name,
    name,
    attrs: {
      Arn: `arn:aws:s3:::${name}`,
      DomainName: `${name}.s3.amazonaws.com`,
      RegionalDomainName: `${name}.s3.${region}.amazonaws.com`,
      DualStackDomainName: `${name}.s3.dualstack.${region}.amazonaws.com`,
      WebsiteURL: `http://${name}.s3-website-${region}.amazonaws.com`,
    },
    note: [unapplied(props, BUCKET_APPLIED), 'moto does not run lifecycle rules'].filter(Boolean).join('; '),
  };
};

const bucketPolicy: ResourceHandler = async ({ props, admin, logicalId }) => {
  await admin.s3.send(new PutBucketPolicyCommand({ Bucket: props.Bucket, Policy: JSON.stringify(props.PolicyDocument) }));
  return { status: 'created', ref: logicalId, note: 'moto stores bucket policies but does not evaluate them (the box talks plain HTTP, which aws:SecureTransport denies would refuse)' };
};

function generatedSecret(spec: Record<string, any>): string {
  const length = Number(spec.PasswordLength ?? 32);
  const exclude = new Set<string>(String(spec.ExcludeCharacters ?? '').split(''));
  const alphabet = [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'].filter((c) => !exclude.has(c));
  const value = [...randomBytes(length)].map((b) => alphabet[b % alphabet.length]).join('');
  if (!spec.SecretStringTemplate) return value;
  return JSON.stringify({ ...JSON.parse(spec.SecretStringTemplate), [spec.GenerateStringKey]: value });
}

const secret: ResourceHandler = async (ctx) => {
  const { props, admin } = ctx;
  const name = props.Name ?? `${ctx.logicalId}-${randomBytes(6).toString('hex')}`;
  const value = props.SecretString ?? (props.GenerateSecretString ? generatedSecret(props.GenerateSecretString) : undefined);
  const { ARN } = await admin.secrets.send(
    new CreateSecretCommand({ Name: name, Description: props.Description, KmsKeyId: props.KmsKeyId, SecretString: value, Tags: tagList(props) }),
  );
  return { status: 'created', ref: ARN!, attrs: { Id: ARN! }, name, note: unapplied(props, ['Name', 'Description', 'KmsKeyId', 'SecretString', 'GenerateSecretString']) };
};

const TABLE_APPLIED = [
  'TableName', 'AttributeDefinitions', 'KeySchema', 'BillingMode', 'ProvisionedThroughput', 'GlobalSecondaryIndexes', 'LocalSecondaryIndexes',
  'StreamSpecification', 'SSESpecification', 'TableClass', 'DeletionProtectionEnabled', 'TimeToLiveSpecification',
];

/** AWS::DynamoDB::Table, and AWS::DynamoDB::GlobalTable (CDK's TableV2) with its replica in the stack's region. */
const table: ResourceHandler = async (ctx) => {
  const { props, admin } = ctx;
  const name = props.TableName ?? ctx.generatedName(255);
  const indexes = (list: Record<string, any>[] | undefined) =>
    list?.map(({ IndexName, KeySchema, Projection, ProvisionedThroughput }) => ({ IndexName, KeySchema, Projection, ProvisionedThroughput }));
  const input: CreateTableCommandInput = {
    TableName: name,
    AttributeDefinitions: props.AttributeDefinitions,
    KeySchema: props.KeySchema,
    BillingMode: props.BillingMode ?? (props.ProvisionedThroughput ? 'PROVISIONED' : 'PAY_PER_REQUEST'),
    ProvisionedThroughput: props.ProvisionedThroughput,
    GlobalSecondaryIndexes: indexes(props.GlobalSecondaryIndexes),
    LocalSecondaryIndexes: indexes(props.LocalSecondaryIndexes),
    StreamSpecification: props.StreamSpecification ? { StreamEnabled: true, StreamViewType: props.StreamSpecification.StreamViewType } : undefined,
    SSESpecification: props.SSESpecification,
    TableClass: props.TableClass,
    DeletionProtectionEnabled: props.DeletionProtectionEnabled,
    Tags: tagList(props) ?? (props.Replicas as Record<string, any>[] | undefined)?.find((r) => r.Region === ctx.region)?.Tags,
  };
  const { TableDescription } = await admin.dynamodb.send(new CreateTableCommand(input));
  const ttl = props.TimeToLiveSpecification;
  if (ttl?.AttributeName && ttl.Enabled !== false) {
    await admin.dynamodb.send(new UpdateTimeToLiveCommand({ TableName: name, TimeToLiveSpecification: { AttributeName: ttl.AttributeName, Enabled: true } }));
  }
  return {
    status: 'created',
    ref: name,
    name,
    attrs: {
      Arn: TableDescription!.TableArn!,
      StreamArn: TableDescription!.LatestStreamArn ?? '',
      TableId: TableDescription!.TableId ?? '',
    },
    note: [unapplied(props, [...TABLE_APPLIED, 'Replicas']), ttl ? 'moto does not expire items by TTL' : undefined].filter(Boolean).join('; ') || undefined,
  };
};

export const STORAGE_HANDLERS: Record<string, ResourceHandler> = {
  'AWS::S3::Bucket': bucket,
  'AWS::S3::BucketPolicy': bucketPolicy,
  'AWS::SecretsManager::Secret': secret,
  'AWS::DynamoDB::Table': table,
  'AWS::DynamoDB::GlobalTable': table,
};
