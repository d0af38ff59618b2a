/**
 * Send the messages waiting in a dead-letter queue back to their stage, once the
 * cause is fixed. The pipeline's queues hold two shapes: a function's failed-event
 * queue (Lambda's on-failure destination) holds an invocation record whose
 * `requestPayload` is the SNS event the function failed on; a subscription's
 * undelivered queue holds the SNS notification itself. Either way, the stage
 * messages inside are published again to the stage's topic, unchanged, and only
 * then is the queue message deleted. A queue message that holds no readable stage
 * message stays in the queue, and the result says why.
 *
 * The SQS console's "redrive" moves messages to a source queue; these queues have
 * none (they are fed by SNS and Lambda), hence this.
 */
import { ChangeMessageVisibilityCommand, DeleteMessageCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import { errorMessage } from './errors';
import { MessageError, parseStageMessage, type StageMessage } from './messages';
import { TOPIC_STAGE_NAMES, stageOf, type TopicStage } from './stages/specs';

export interface QueueRedriveOptions {
  sqs: SQSClient;
  sns: SNSClient;
  queueUrl: string;
  /** The topic a message is published to: its stage's. */
  topicFor(message: StageMessage): string;
  /** Stop after this many queue messages. @default all that are visible */
  maxMessages?: number;
  /** How long a message stays hidden while it is handled. @default 60 */
  visibilitySeconds?: number;
}

export interface QueueRedriveResult {
  /** Queue messages read. */
  received: number;
  /** Stage messages published again. */
  published: number;
  /** Stage messages published, by kind. */
  byKind: Partial<Record<StageMessage['kind'], number>>;
  /** Queue messages left in the queue, with the reason. */
  kept: { messageId: string; reason: string }[];
}

export async function redriveQueue(options: QueueRedriveOptions): Promise<QueueRedriveResult> {
  const { sqs, sns, queueUrl } = options;
  const result: QueueRedriveResult = { received: 0, published: 0, byKind: {}, kept: [] };
  const keptHandles: string[] = [];
  const max = options.maxMessages ?? Number.POSITIVE_INFINITY;
  while (result.received < max) {
    const out = await sqs.send(new ReceiveMessageCommand({
      QueueUrl: queueUrl,
      MaxNumberOfMessages: Math.min(10, max - result.received),
      WaitTimeSeconds: 1,
      VisibilityTimeout: options.visibilitySeconds ?? 60,
    }));
    const messages = out.Messages ?? [];
    if (messages.length === 0) break;
    for (const queued of messages) {
      result.received++;
      let stageMessages: { text: string; message: StageMessage }[];
      try {
        stageMessages = stageMessagesIn(queued.Body ?? '').map((text, i) => ({ text, message: parseStageMessage(text, `message[${i}]`) }));
        for (const { message } of stageMessages) options.topicFor(message);
      } catch (error) {
        result.kept.push({ messageId: queued.MessageId ?? '?', reason: errorMessage(error) });
        keptHandles.push(queued.ReceiptHandle!);
        continue;
      }
      // Published first, deleted after: a failure in between sends a message twice, which the stages take.
      for (const { text, message } of stageMessages) {
        await sns.send(new PublishCommand({ TopicArn: options.topicFor(message), Message: text }));
        result.published++;
        result.byKind[message.kind] = (result.byKind[message.kind] ?? 0) + 1;
      }
      await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: queued.ReceiptHandle }));
    }
  }
  // What stays is visible again at once, for whoever looks into the queue next.
  for (const handle of keptHandles) {
    await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: handle, VisibilityTimeout: 0 }));
  }
  return result;
}

/**
 * The stage messages (as JSON text) inside one dead-letter queue message: a Lambda
 * invocation record, an SNS event, an SNS notification, or a bare stage message.
 */
export function stageMessagesIn(body: string): string[] {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    throw new MessageError('the queue message is not JSON');
  }
  return unwrap(value);
}

/** The stage messages in a queue message, or none when it holds no readable one. */
export function safeParseStageMessages(body: string): StageMessage[] {
  try {
    return stageMessagesIn(body).map((text, i) => parseStageMessage(text, `message[${i}]`));
  } catch {
    return [];
  }
}

function unwrap(value: unknown): string[] {
  const v = value as Record<string, unknown> | null;
  if (v && typeof v === 'object') {
    if (v.requestPayload !== undefined) return unwrap(v.requestPayload);
    if (Array.isArray(v.Records)) {
      return v.Records.map((r, i) => {
        const text = (r as { Sns?: { Message?: unknown } })?.Sns?.Message;
        if (typeof text !== 'string') throw new MessageError(`Records[${i}].Sns.Message is missing`);
        return text;
      });
    }
    if (v.Type === 'Notification' && typeof v.Message === 'string') return [v.Message];
    if (typeof v.kind === 'string' && v.v !== undefined) return [JSON.stringify(v)];
  }
  throw new MessageError('the queue message holds no azs3copy message (not a Lambda invocation record, an SNS event or an SNS notification)');
}

/**
 * The stage a topic feeds, read from its name when it follows the deployed naming
 * (`<prefix>-to-<stage>`, lib/naming.ts); undefined for any other name.
 */
export function stageOfTopic(topicArn: string): TopicStage | undefined {
  const name = topicArn.split(':').pop() ?? '';
  return TOPIC_STAGE_NAMES.find((stage) => name.endsWith(`-to-${stage}`));
}

/** One topic for every message, refusing a message whose stage the topic does not feed (by its name). */
export function singleTopic(topicArn: string): (message: StageMessage) => string {
  const feeds = stageOfTopic(topicArn);
  return (message) => {
    const stage = stageOf(message.kind);
    if (feeds && feeds !== stage) {
      throw new MessageError(`a "${message.kind}" message is for ${stage}, but topic ${topicArn} feeds ${feeds}: redrive this queue to the ${stage} topic`);
    }
    return topicArn;
  };
}
