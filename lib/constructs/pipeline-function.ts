/**
 * One stage's Lambda function: the shared function defaults (CopyFunction), the
 * Azure SDK from the layers, and a dead-letter destination for failed
 * asynchronous invocations (the schedule's, for qualify; an event still in flight
 * from an older release's SNS subscription, for the queue-fed stages), unless it
 * is only ever invoked synchronously (events, at its function URL). Access is
 * added only through the bind methods, each of which grants and sets the matching
 * environment variable together.
 */
import { Duration } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { ENV } from '../../lambdas/core/env';
import type { StageName } from '../../lambdas/core/stages/specs';
import { AZURE_SIGN_IN_GRANT, RUN_STATE_ACTIONS, type BucketAccess } from '../grants';
import { acknowledge, acknowledgeWildcardResources } from '../nag';
import type { Naming } from '../naming';
import type { FunctionSizing } from '../stage-sizing';
import type { CopyBucket } from './copy-bucket';
import { CopyFunction } from './copy-function';
import type { CopySecret } from './copy-secret';
import { DeadLetterQueue } from './dead-letter-queue';
import type { RunTable } from './run-table';

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
  /** Where failed asynchronous invocations go. @default - a queue of its own (qualify's) */
  readonly failed?: DeadLetterQueue;
  /**
   * False for a function only ever invoked synchronously (events: Lambda answers its URL's requests with the
   * handler's response): no asynchronous settings, no failed-events queue, so no dead-letter queue that nothing
   * could fill. @default true
   */
  readonly invokedAsynchronously?: boolean;
}

export class PipelineFunction extends CopyFunction {
  readonly stage: StageName;
  readonly sizing: FunctionSizing;
  /** Asynchronous invocations that failed after Lambda's two retries, or that waited too long (none: never invoked so). */
  readonly failed?: DeadLetterQueue;
  /** True when the function has a failed-events queue of its own (not its stage queue's). */
  readonly ownsFailedQueue: boolean;

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
    this.sizing = props.sizing;
    this.ownsFailedQueue = props.failed === undefined && props.invokedAsynchronously !== false;
    if (props.invokedAsynchronously === false) return;
    const failed = props.failed ?? new DeadLetterQueue(this, 'Failed', {
      queueName: props.naming.failedQueueName(props.stage),
      holds: `events ${functionName} failed on after Lambda's retries`,
    });
    this.failed = failed;
    this.function.configureAsyncInvoke({
      retryAttempts: 2,
      maxEventAge: Duration.hours(6),
      onFailure: new destinations.SqsDestination(failed.queue),
    });
  }

  /**
   * A public HTTPS endpoint (a function URL with no AWS auth) for a caller that cannot sign AWS requests: Azure
   * Event Grid delivers to a plain webhook URL. The handler is the gate: it refuses (401, nothing done) every
   * request without the shared key from the secret, compared in constant time (lambdas/core/events/webhook.ts).
   */
  addWebhookUrl(): lambda.FunctionUrl {
    return this.function.addFunctionUrl({ authType: lambda.FunctionUrlAuthType.NONE });
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

  /** Do exactly `access` in a further destination's bucket too (destinations.ts): the same grants, that bucket's ARNs. */
  bindMoreBucket(bucket: CopyBucket, access: BucketAccess): void {
    for (const statement of bucket.accessStatements(access)) this.role.addToPolicy(statement);
    acknowledgeWildcardResources(
      this.role,
      bucket.wildcardResources(access),
      'A further destination: copies land under any key a run names there as in the bucket, and its upload manifests under its ".azs3copy-state/" prefix.',
    );
  }

  /**
   * Sign in to Azure as this function's role, with no secret (a secret with "auth": "federated"): ask STS for
   * web identity tokens for Entra ID. Entra ID must trust the role too (`azs3copy federation` says how).
   */
  bindAzureSignIn(): void {
    this.role.addToPolicy(new iam.PolicyStatement({
      actions: [...AZURE_SIGN_IN_GRANT.actions],
      resources: ['*'],
      conditions: AZURE_SIGN_IN_GRANT.conditions,
    }));
    acknowledge(
      this.role,
      'AwsSolutions-IAM5[Resource::*]',
      'sts:GetWebIdentityToken acts on no resource; its conditions allow only tokens for Entra ID\'s audience, RS256-signed, 5 minutes at most.',
    );
  }

  /** Keep the runs' state in the table, and the variable that names it. */
  bindRunTable(table: RunTable): void {
    this.role.addToPolicy(new iam.PolicyStatement({ actions: [...RUN_STATE_ACTIONS], resources: [table.table.tableArn] }));
    this.function.addEnvironment(ENV.runTable, table.table.tableName);
  }

  /** Tell the operator when a run ends (the topic's key lets CloudWatch and the functions use it). */
  bindOperatorTopic(topic: sns.ITopic, statements: iam.PolicyStatement[]): void {
    for (const statement of statements) this.role.addToPolicy(statement);
    this.function.addEnvironment(ENV.operatorTopic, topic.topicArn);
  }

  /** Look into the dead-letter queues (receive, and make visible again at once) for a stalled run's blobs. */
  bindDeadLetterSearch(queues: readonly DeadLetterQueue[]): void {
    this.role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['sqs:ReceiveMessage', 'sqs:ChangeMessageVisibility'],
        resources: queues.map((q) => q.queue.queueArn),
      }),
    );
    const urls: Record<string, string> = {};
    for (const q of queues) urls[q.queueName] = q.queue.queueUrl;
    this.function.addEnvironment(ENV.deadLetterQueues, this.function.stack.toJsonString(urls));
  }
}
