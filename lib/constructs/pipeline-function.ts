/**
 * One stage's Lambda function: the shared function defaults (CopyFunction), the
 * Azure SDK from the layers, and a dead-letter destination for failed
 * asynchronous invocations. Access is added only through the bind methods, each
 * of which grants and sets the matching environment variable together.
 */
import { Duration } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import { acknowledgeWildcardResources } from '../nag';
import type { Construct } from 'constructs';
import { ENV } from '../../lambdas/core/env';
import type { StageName } from '../../lambdas/core/stages';
import type { Naming } from '../naming';
import type { BucketAccess, FunctionSizing } from '../stage-deployments';
import type { CopyBucket } from './copy-bucket';
import { CopyFunction } from './copy-function';
import type { CopySecret } from './copy-secret';
import { DeadLetterQueue } from './dead-letter-queue';

export interface PipelineFunctionProps {
  readonly naming: Naming;
  readonly stage: StageName;
  readonly sizing: FunctionSizing;
  /** @default - none */
  readonly description?: string;
  /** Layers providing the modules the bundle leaves out. */
  readonly layers: lambda.ILayerVersion[];
  /** Days the function's logs are kept. @default 30 */
  readonly logRetentionDays?: number;
}

export class PipelineFunction extends CopyFunction {
  readonly stage: StageName;
  /** Invocations that failed after Lambda's two retries, or that waited too long. */
  readonly failed: DeadLetterQueue;

  constructor(scope: Construct, id: string, props: PipelineFunctionProps) {
    const functionName = props.naming.functionName(props.stage);
    super(scope, id, {
      naming: props.naming,
      functionName,
      entry: props.stage,
      sizing: props.sizing,
      grantsFor: `the ${props.stage} stage`,
      description: props.description,
      layers: props.layers,
      logRetentionDays: props.logRetentionDays,
    });
    this.stage = props.stage;
    this.failed = new DeadLetterQueue(this, 'Failed', {
      queueName: props.naming.failedQueueName(props.stage),
      holds: `events ${functionName} failed on after Lambda's retries`,
    });
    // Asynchronous invocations (SNS, the schedule): two retries, then the failed-events queue.
    this.function.configureAsyncInvoke({
      retryAttempts: 2,
      maxEventAge: Duration.hours(6),
      onFailure: new destinations.SqsDestination(this.failed.queue),
    });
  }

  /** Read the configuration secret: GetSecretValue and its key, and the variable that names it. */
  bindSecret(secret: CopySecret): void {
    for (const statement of secret.readStatements()) this.role.addToPolicy(statement);
    this.function.addEnvironment(ENV.secretArn, secret.secret.secretArn);
  }

  /** Do exactly `access` in the destination bucket, and the variable that names it. */
  bindBucket(bucket: CopyBucket, access: BucketAccess): void {
    for (const statement of bucket.accessStatements(access)) this.role.addToPolicy(statement);
    acknowledgeWildcardResources(
      this.role,
      bucket.wildcardResources(access),
      'Copies land under any key a run names (destination prefix + blob name), so object actions apply to the bucket\'s objects; ' +
        'actions on the pipeline\'s own state are limited to the ".azs3copy-state/" prefix.',
    );
    this.function.addEnvironment(ENV.bucket, bucket.bucket.bucketName);
  }
}
