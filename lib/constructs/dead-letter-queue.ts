/**
 * A dead-letter queue and the alarm that fires on its first message. Every
 * message that lands here is a blob (or a batch of blobs) not copied yet: the
 * alarm tells the operator, the message waits up to 14 days for a redrive.
 */
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { acknowledge } from '../nag';
import { Construct } from 'constructs';

/**
 * How long a message lives at most: SQS counts a dead-lettered message's age from when it was first sent,
 * and a dead-letter queue keeps it this long.
 */
export const MESSAGE_LIFETIME_DAYS = 14;

export interface DeadLetterQueueProps {
  /** The queue's name; the alarm is named after it. */
  readonly queueName: string;
  /** What lands in the queue, for the alarm's description. */
  readonly holds: string;
  /** How long messages wait for a redrive. @default 14 days (SQS's maximum) */
  readonly retention?: Duration;
  /** It is a queue's redrive target (cdk-nag sees it as a dead-letter queue then). @default false */
  readonly redriveTarget?: boolean;
}

export class DeadLetterQueue extends Construct {
  readonly queue: sqs.Queue;
  readonly queueName: string;
  /** In alarm while the queue holds any message. */
  readonly alarm: cloudwatch.Alarm;
  /** Messages waiting in the queue. */
  readonly depth: cloudwatch.Metric;

  constructor(scope: Construct, id: string, props: DeadLetterQueueProps) {
    super(scope, id);
    this.queueName = props.queueName;
    this.queue = new sqs.Queue(this, 'Queue', {
      queueName: props.queueName,
      retentionPeriod: props.retention ?? Duration.days(MESSAGE_LIFETIME_DAYS),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    if (!props.redriveTarget) {
      acknowledge(this.queue, 'AwsSolutions-SQS3', 'This queue is itself a dead-letter queue (of an SNS subscription or of a function\'s failed invocations).');
    }
    const depth = this.queue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: 'Maximum' });
    this.depth = depth.with({ label: props.queueName });
    this.alarm = new cloudwatch.Alarm(this, 'NotEmpty', {
      alarmName: `${props.queueName}-not-empty`,
      alarmDescription: `${props.queueName} holds ${props.holds}. Read one message to see why, fix the cause, then redrive the queue.`,
      metric: depth,
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  }

  /**
   * What a redrive needs to empty this queue (lambdas/core/redrive.ts): receive,
   * delete what it sent on, and make what it keeps visible again. The queue is
   * encrypted with an SQS-owned key, so no KMS permission is needed.
   */
  redriveStatements(): iam.PolicyStatement[] {
    return [
      new iam.PolicyStatement({
        actions: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility'],
        resources: [this.queue.queueArn],
      }),
    ];
  }
}
