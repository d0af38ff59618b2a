/**
 * The destination bucket: created here (private, TLS only, KMS-encrypted with its
 * own key, incomplete multipart uploads aborted after 15 days), or an existing
 * bucket named by context. Either way it answers what a stage needs to do its
 * job there, scoped to the bucket, its objects, or the pipeline's state prefix.
 */
import { Aws, Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { acknowledge } from '../nag';
import { Construct } from 'constructs';
import { STATE_PREFIX } from '../../lambdas/core/keys';
import type { Naming } from '../naming';
import { WRITE_ACTIONS, type BucketAccess } from '../grants';
import { MESSAGE_LIFETIME_DAYS } from './dead-letter-queue';

export interface CopyBucketProps {
  readonly naming: Naming;
  /** Copy into this existing bucket (in the stack's region) instead of creating one. @default - a new bucket */
  readonly existingBucketName?: string;
  /** The KMS key that encrypts the existing bucket, when it has one of its own. @default - none (SSE-S3 or the AWS managed key) */
  readonly existingKeyArn?: string;
  /** The existing bucket's region, when it is not the stack's (its KMS key is used through S3 there). @default - the stack's */
  readonly region?: string;
  /** Keep object versions (created bucket only). @default false */
  readonly versioned?: boolean;
  /**
   * Days after which an unfinished multipart upload is aborted (created bucket only). Longer than a message can
   * live (its dead-letter queue keeps it 14 days from when it was first sent), so an upload is never aborted
   * under a message that may still be redriven to finish it. @default 15
   */
  readonly abortIncompleteUploadsAfterDays?: number;
}

export class CopyBucket extends Construct {
  readonly bucket: s3.IBucket;
  /** The key that encrypts the bucket's objects, when it is a customer-managed key. */
  readonly key?: kms.IKey;
  /** True when the stack created the bucket (and so owns its policy and lifecycle). */
  readonly created: boolean;
  private readonly region?: string;

  constructor(scope: Construct, id: string, props: CopyBucketProps) {
    super(scope, id);
    this.region = props.region;
    if (props.existingBucketName) {
      this.created = false;
      this.bucket = s3.Bucket.fromBucketName(this, 'Bucket', props.existingBucketName);
      this.key = props.existingKeyArn ? kms.Key.fromKeyArn(this, 'Key', props.existingKeyArn) : undefined;
      return;
    }
    this.created = true;
    const key = new kms.Key(this, 'Key', {
      description: `Encrypts the objects azs3copy ${props.naming.prefix} copies`,
      enableKeyRotation: true,
      // The copies outlive the stack; so must the key that decrypts them.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.key = key;
    const bucket = new s3.Bucket(this, 'Bucket', {
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: key,
      bucketKeyEnabled: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      versioned: props.versioned ?? false,
      lifecycleRules: [
        {
          id: 'AbortIncompleteMultipartUploads',
          abortIncompleteMultipartUploadAfter: Duration.days(props.abortIncompleteUploadsAfterDays ?? MESSAGE_LIFETIME_DAYS + 1),
        },
      ],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.bucket = bucket;
    acknowledge(
      bucket,
      'AwsSolutions-S1',
      'Server access logs would need a second bucket per deployment; the functions log every object they write, and CloudTrail data events can be enabled account-wide.',
    );
  }

  /**
   * The statements that give exactly `access`: bucket actions on the bucket,
   * object actions on its objects or only under the state prefix, and the KMS
   * actions that reading and writing encrypted objects takes, through S3 only.
   */
  accessStatements(access: BucketAccess): iam.PolicyStatement[] {
    const statements: iam.PolicyStatement[] = [];
    if (access.bucket?.length) {
      statements.push(new iam.PolicyStatement({ actions: [...access.bucket], resources: [this.bucket.bucketArn] }));
    }
    if (access.objects?.length) {
      statements.push(new iam.PolicyStatement({ actions: [...access.objects], resources: [this.objectsArn()] }));
    }
    if (access.state?.length) {
      statements.push(new iam.PolicyStatement({ actions: [...access.state], resources: [this.stateArn()] }));
    }
    const objectActions = [...(access.objects ?? []), ...(access.state ?? [])];
    if (this.key && objectActions.length > 0) {
      const writes = objectActions.some((a) => WRITE_ACTIONS.includes(a));
      statements.push(
        new iam.PolicyStatement({
          actions: writes ? ['kms:Decrypt', 'kms:GenerateDataKey'] : ['kms:Decrypt'],
          resources: [this.key.keyArn],
          conditions: { StringEquals: { 'kms:ViaService': `s3.${this.region ?? Aws.REGION}.amazonaws.com` } },
        }),
      );
    }
    return statements;
  }

  /** The object ARNs (each ending in `*`) that `access` is granted on. */
  wildcardResources(access: BucketAccess): string[] {
    return [...(access.objects?.length ? [this.objectsArn()] : []), ...(access.state?.length ? [this.stateArn()] : [])];
  }

  /** Every object in the bucket. */
  objectsArn(): string {
    return this.bucket.arnForObjects('*');
  }

  /** The pipeline's state objects only. */
  stateArn(): string {
    return this.bucket.arnForObjects(`${STATE_PREFIX}*`);
  }
}
