/**
 * The SNS topic that feeds one stage, with the dead-letter queue of its one
 * subscription (the stage's function): a message SNS cannot deliver waits there.
 */
import { Aws } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import type { TopicStage } from '../../lambdas/core/stages';
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

export class StageTopic extends Construct {
  readonly stage: TopicStage;
  readonly topic: sns.Topic;
  readonly undelivered: DeadLetterQueue;
  private readonly key: kms.IKey;

  constructor(scope: Construct, id: string, props: StageTopicProps) {
    super(scope, id);
    this.stage = props.stage;
    this.key = props.key;
    this.topic = new sns.Topic(this, 'Topic', {
      topicName: props.naming.topicName(props.stage),
      displayName: `azs3copy messages to ${props.stage}`,
      masterKey: props.key,
      enforceSSL: true,
    });
    this.undelivered = new DeadLetterQueue(this, 'Undelivered', {
      queueName: props.naming.undeliveredQueueName(props.stage),
      holds: `messages SNS could not deliver to ${props.naming.functionName(props.stage)}`,
    });
  }

  /** Deliver this topic's messages to the stage's function. */
  subscribe(fn: PipelineFunction): void {
    if (fn.stage !== this.stage) throw new Error(`the topic to ${this.stage} cannot feed ${fn.stage}`);
    this.topic.addSubscription(new subscriptions.LambdaSubscription(fn.function, { deadLetterQueue: this.undelivered.queue }));
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
