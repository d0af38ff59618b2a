/**
 * Where the operator hears about trouble: an SNS topic (with an email
 * subscription when context gives an address) that every dead-letter alarm
 * notifies. The topic is encrypted with the pipeline's topic key, which
 * therefore lets CloudWatch alarms use it.
 */
import { Aws } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import type { Naming } from '../naming';

export interface OperatorAlertsProps {
  readonly naming: Naming;
  /** Encrypts the topic; CloudWatch is allowed to use it. */
  readonly key: kms.Key;
  /** Alarms that notify the topic. */
  readonly alarms: cloudwatch.Alarm[];
  /** Subscribe this address to the topic. @default - no subscription */
  readonly email?: string;
}

export class OperatorAlerts extends Construct {
  readonly topic: sns.Topic;
  private readonly key: kms.Key;

  /** What a function needs to tell the operator: Publish on the topic and a data key from its key (through SNS). */
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

  constructor(scope: Construct, id: string, props: OperatorAlertsProps) {
    super(scope, id);
    this.topic = new sns.Topic(this, 'Topic', {
      topicName: props.naming.name('operator'),
      displayName: `azs3copy ${props.naming.prefix} alerts`,
      masterKey: props.key,
      enforceSSL: true,
    });
    props.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchAlarmsPublishToTheOperatorTopic',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: ['*'],
      }),
    );
    this.key = props.key;
    if (props.email) this.topic.addSubscription(new subscriptions.EmailSubscription(props.email));
    const notify = new actions.SnsAction(this.topic);
    for (const alarm of props.alarms) alarm.addAlarmAction(notify);
  }
}
