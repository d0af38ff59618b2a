/**
 * How messages reach one stage: an SNS topic (what the other stages publish to),
 * an SQS queue subscribed to it (raw delivery: the queue holds the stage message
 * itself), and the queue feeding the stage's function through an event source
 * mapping. The queue is what makes a deployed pipeline safe at scale: messages
 * wait days rather than Lambda's six hours, the mapping's maximum concurrency
 * bounds the function without reserving account quota, a failed message comes
 * back a few times (each later than the last, see lambdas/core/handler.ts) and
 * then waits in the queue's dead-letter queue, and a batch reports which of its
 * messages failed so only those come back.
 */
import { Aws, Duration } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as eventsources from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { MAX_RECEIVES } from '../../lambdas/core/retry-policy';
import type { TopicStage } from '../../lambdas/core/stages/specs';
import type { Naming } from '../naming';
import { DeadLetterQueue } from './dead-letter-queue';
import type { PipelineFunction } from './pipeline-function';

export interface StageTopicProps {
  readonly naming: Naming;
  /** The stage this topic feeds. */
  readonly stage: TopicStage;
  /** Encrypts the topic's messages at rest. */
  readonly key: kms.IKey;
}

/**
 * AWS's advice for a queue that feeds a function: a visibility timeout of at least six times the function's
 * timeout, so that a batch the mapping could not hand over at once (the function throttled) is not taken
 * for failed while it waits.
 */
export const VISIBILITY_TIMEOUT_FACTOR = 6;

export class StageTopic extends Construct {
  readonly stage: TopicStage;
  readonly topic: sns.Topic;
  /** Messages SNS could not deliver to the queue (rare: the queue's policy changed). */
  readonly undelivered: DeadLetterQueue;
  /** Messages the stage failed on MAX_RECEIVES times. */
  readonly failed: DeadLetterQueue;
  private queue?: sqs.Queue;
  private readonly naming: Naming;
  private readonly key: kms.IKey;

  constructor(scope: Construct, id: string, props: StageTopicProps) {
    super(scope, id);
    this.stage = props.stage;
    this.key = props.key;
    this.naming = props.naming;
    this.topic = new sns.Topic(this, 'Topic', {
      topicName: props.naming.topicName(props.stage),
      displayName: `azs3copy messages to ${props.stage}`,
      masterKey: props.key,
      enforceSSL: true,
    });
    this.undelivered = new DeadLetterQueue(this, 'Undelivered', {
      queueName: props.naming.undeliveredQueueName(props.stage),
      holds: `messages SNS could not deliver to the queue of ${props.naming.functionName(props.stage)}`,
    });
    this.failed = new DeadLetterQueue(this, 'Failed', {
      queueName: props.naming.failedQueueName(props.stage),
      holds: `messages ${props.naming.functionName(props.stage)} failed on ${MAX_RECEIVES} times`,
      redriveTarget: true,
    });
  }

  /** The queue between the topic and the stage's function, and the mapping that feeds the function from it. */
  subscribe(fn: PipelineFunction): void {
    if (fn.stage !== this.stage) throw new Error(`the topic to ${this.stage} cannot feed ${fn.stage}`);
    const timeout = fn.function.timeout ?? Duration.minutes(15);
    this.queue = new sqs.Queue(this, 'Queue', {
      queueName: this.naming.queueName(this.stage),
      visibilityTimeout: Duration.seconds(Math.min(timeout.toSeconds() * VISIBILITY_TIMEOUT_FACTOR, 12 * 3600)),
      // Days, not Lambda's six hours: a big migration's parts may wait long for a parter.
      retentionPeriod: Duration.days(4),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      deadLetterQueue: { queue: this.failed.queue, maxReceiveCount: MAX_RECEIVES },
    });
    this.topic.addSubscription(new subscriptions.SqsSubscription(this.queue, { rawMessageDelivery: true, deadLetterQueue: this.undelivered.queue }));
    fn.function.addEventSource(
      new eventsources.SqsEventSource(this.queue, {
        batchSize: 1,
        reportBatchItemFailures: true,
        maxConcurrency: fn.sizing.maxConcurrency,
      }),
    );
    // What the handler does besides consuming: put off a failed message's next try (ChangeMessageVisibility,
    // with the queue's URL looked up by name), which the event source's own grant covers.
  }

  /** What a publisher needs: Publish (PublishBatch too) on this topic, a data key from the topic's key. */
  publishStatements(): iam.PolicyStatement[] {
    return [
      new iam.PolicyStatement({ actions: ['sns:Publish'], resources: [this.topic.topicArn] }),
      new iam.PolicyStatement({
        actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
        resources: [this.key.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `sns.${Aws.REGION}.amazonaws.com` } },
      }),
    ];
  }
}
