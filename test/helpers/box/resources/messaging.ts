/**
 * KMS keys, SNS topics and subscriptions, SQS queues and the policies on them,
 * created in moto from their template properties. A `lambda` subscription is
 * delivered by the box: moto feeds the topic into a tap queue of the box's own,
 * and the box invokes the function asynchronously from it (sources.ts).
 */
import { CreateQueueCommand, GetQueueAttributesCommand, SetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { CreateTopicCommand, SetTopicAttributesCommand, SubscribeCommand } from '@aws-sdk/client-sns';
import { Unsupported, unapplied, tagList, type ResourceContext, type ResourceHandler } from './types';

const json = (value: unknown) => (typeof value === 'string' ? value : JSON.stringify(value));
const text = (value: unknown) => (value === undefined ? undefined : String(value));

const kmsKey: ResourceHandler = async ({ props, admin }) => {
  const { KeyMetadata } = await admin.kms('CreateKey', {
    Description: props.Description,
    KeyUsage: props.KeyUsage,
    KeySpec: props.KeySpec,
    Policy: props.KeyPolicy ? json(props.KeyPolicy) : undefined,
    MultiRegion: props.MultiRegion,
    Tags: tagList(props)?.map((t) => ({ TagKey: t.Key, TagValue: t.Value })),
  });
  if (props.EnableKeyRotation === true || props.EnableKeyRotation === 'true') await admin.kms('EnableKeyRotation', { KeyId: KeyMetadata.KeyId });
  return {
    status: 'created',
    ref: KeyMetadata.KeyId,
    attrs: { Arn: KeyMetadata.Arn, KeyId: KeyMetadata.KeyId },
    note: 'moto keeps the key; nothing is encrypted with it',
  };
};

const kmsAlias: ResourceHandler = async ({ props, admin }) => {
  await admin.kms('CreateAlias', { AliasName: props.AliasName, TargetKeyId: props.TargetKeyId });
  return { status: 'created', ref: props.AliasName, name: props.AliasName };
};

const topic: ResourceHandler = async (ctx) => {
  const { props, admin } = ctx;
  const fifo = props.FifoTopic === true || props.FifoTopic === 'true';
  const name = props.TopicName ?? ctx.generatedName(256, { suffix: fifo ? '.fifo' : '' });
  const attributes = Object.fromEntries(
    Object.entries({
      DisplayName: text(props.DisplayName),
      KmsMasterKeyId: text(props.KmsMasterKeyId),
      FifoTopic: fifo ? 'true' : undefined,
      ContentBasedDeduplication: text(props.ContentBasedDeduplication),
      SignatureVersion: text(props.SignatureVersion),
      TracingConfig: text(props.TracingConfig),
    }).filter(([, v]) => v !== undefined),
  ) as Record<string, string>;
  const { TopicArn } = await admin.sns.send(new CreateTopicCommand({ Name: name, Attributes: attributes, Tags: tagList(props) }));
  const note = unapplied(props, ['TopicName', 'DisplayName', 'KmsMasterKeyId', 'FifoTopic', 'ContentBasedDeduplication', 'SignatureVersion', 'TracingConfig']);
  return { status: 'created', ref: TopicArn!, attrs: { TopicArn: TopicArn!, TopicName: name }, name, note };
};

const topicPolicy: ResourceHandler = async ({ props, admin, logicalId }) => {
  for (const arn of props.Topics as string[]) {
    await admin.sns.send(new SetTopicAttributesCommand({ TopicArn: arn, AttributeName: 'Policy', AttributeValue: json(props.PolicyDocument) }));
  }
  return { status: 'created', ref: logicalId, note: 'moto stores topic policies but does not evaluate them' };
};

const QUEUE_ATTRIBUTES = [
  'VisibilityTimeout', 'MessageRetentionPeriod', 'DelaySeconds', 'MaximumMessageSize', 'ReceiveMessageWaitTimeSeconds',
  'RedrivePolicy', 'RedriveAllowPolicy', 'FifoQueue', 'ContentBasedDeduplication', 'DeduplicationScope', 'FifoThroughputLimit',
  'KmsMasterKeyId', 'KmsDataKeyReusePeriodSeconds', 'SqsManagedSseEnabled',
] as const;

const queue: ResourceHandler = async (ctx) => {
  const { props, admin, options } = ctx;
  const fifo = props.FifoQueue === true || props.FifoQueue === 'true';
  const name = props.QueueName ?? ctx.generatedName(80, { suffix: fifo ? '.fifo' : '' });
  const attributes: Record<string, string> = {};
  for (const key of QUEUE_ATTRIBUTES) if (props[key] !== undefined) attributes[key] = typeof props[key] === 'object' ? json(props[key]) : String(props[key]);
  let note: string | undefined;
  if (options.visibilityTimeoutSeconds !== undefined) {
    note = `VisibilityTimeout ${attributes.VisibilityTimeout ?? 30} s replaced by the box's ${options.visibilityTimeoutSeconds} s`;
    attributes.VisibilityTimeout = String(options.visibilityTimeoutSeconds);
  }
  const tags = tagList(props);
  const { QueueUrl } = await admin.sqs.send(
    new CreateQueueCommand({ QueueName: name, Attributes: attributes, tags: tags && Object.fromEntries(tags.map((t) => [t.Key, t.Value])) }),
  );
  const { Attributes } = await admin.sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }));
  return {
    status: 'created',
    ref: QueueUrl!,
    attrs: { Arn: Attributes!.QueueArn!, QueueName: name, QueueUrl: QueueUrl! },
    name,
    note: [note, unapplied(props, ['QueueName', ...QUEUE_ATTRIBUTES])].filter(Boolean).join('; ') || undefined,
  };
};

const queuePolicy: ResourceHandler = async ({ props, admin, logicalId }) => {
  for (const url of props.Queues as string[]) {
    await admin.sqs.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: { Policy: json(props.PolicyDocument) } }));
  }
  return { status: 'created', ref: logicalId, note: 'moto stores queue policies but does not evaluate them (SNS delivers to SQS without them)' };
};

function subscriptionAttributes(props: Record<string, any>, raw: boolean | undefined): Record<string, string> {
  const attributes: Record<string, string> = {};
  if (raw !== undefined) attributes.RawMessageDelivery = String(raw);
  if (props.FilterPolicy !== undefined) attributes.FilterPolicy = json(props.FilterPolicy);
  if (props.FilterPolicyScope !== undefined) attributes.FilterPolicyScope = String(props.FilterPolicyScope);
  return attributes;
}

async function tapQueue(ctx: ResourceContext): Promise<{ url: string; arn: string }> {
  const name = `box-tap-${ctx.logicalId}`.slice(0, 80);
  const { QueueUrl } = await ctx.admin.sqs.send(new CreateQueueCommand({ QueueName: name }));
  const { Attributes } = await ctx.admin.sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }));
  return { url: QueueUrl!, arn: Attributes!.QueueArn! };
}

const subscription: ResourceHandler = async (ctx) => {
  const { props, admin } = ctx;
  const protocol = String(props.Protocol);
  if (protocol === 'sqs') {
    const raw = props.RawMessageDelivery === undefined ? undefined : props.RawMessageDelivery === true || props.RawMessageDelivery === 'true';
    const attributes = subscriptionAttributes(props, raw);
    if (props.RedrivePolicy !== undefined) attributes.RedrivePolicy = json(props.RedrivePolicy);
    const { SubscriptionArn } = await admin.sns.send(
      new SubscribeCommand({ TopicArn: props.TopicArn, Protocol: 'sqs', Endpoint: props.Endpoint, Attributes: attributes, ReturnSubscriptionArn: true }),
    );
    return { status: 'created', ref: SubscriptionArn!, note: unapplied(props, ['TopicArn', 'Protocol', 'Endpoint', 'RawMessageDelivery', 'FilterPolicy', 'FilterPolicyScope', 'RedrivePolicy']) };
  }
  if (protocol === 'lambda') {
    const tap = await tapQueue(ctx);
    const { SubscriptionArn } = await admin.sns.send(
      new SubscribeCommand({
        TopicArn: props.TopicArn,
        Protocol: 'sqs',
        Endpoint: tap.arn,
        Attributes: subscriptionAttributes(props, false),
        ReturnSubscriptionArn: true,
      }),
    );
    ctx.plan.snsLambda.push({ logicalId: ctx.logicalId, topicArn: props.TopicArn, functionArn: props.Endpoint, subscriptionArn: SubscriptionArn!, tapQueueUrl: tap.url });
    const redrive = props.RedrivePolicy ? '; its RedrivePolicy (SNS -> Lambda delivery failures) never fires in the box' : '';
    return { status: 'emulated', ref: SubscriptionArn!, note: `delivered by the box as asynchronous invocations, through its queue ${tap.url}${redrive}` };
  }
  throw new Unsupported(`protocol ${protocol}: nothing in the box receives it`);
};

export const MESSAGING_HANDLERS: Record<string, ResourceHandler> = {
  'AWS::KMS::Key': kmsKey,
  'AWS::KMS::Alias': kmsAlias,
  'AWS::SNS::Topic': topic,
  'AWS::SNS::TopicPolicy': topicPolicy,
  'AWS::SNS::Subscription': subscription,
  'AWS::SQS::Queue': queue,
  'AWS::SQS::QueuePolicy': queuePolicy,
};
