/**
 * Lambda entry that redrives one dead-letter queue: invoke it by hand (console
 * "Test", or `aws lambda invoke`) with `{"queueUrl": "https://sqs..."}` once the
 * cause is fixed. Each message goes back to the topic of the stage that consumes
 * it, read from the same variables the stages publish with.
 */
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import * as z from 'zod';
import { required, topicEnv } from '../core/env';
import { createLogger } from '../core/log';
import { MessageError } from '../core/messages';
import { redriveQueue, type QueueRedriveResult } from '../core/redrive';
import { stageOf } from '../core/stages';

const sqs = new SQSClient({});
const sns = new SNSClient({});
const log = createLogger({ stage: 'redrive' });

const RedriveEventSchema = z.object({
  queueUrl: z.string().url(),
  maxMessages: z.number().int().positive().optional(),
});

export async function handler(event: unknown): Promise<QueueRedriveResult> {
  const parsed = RedriveEventSchema.safeParse(event);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new MessageError(`event.${issue.path.map(String).join('.')}: ${issue.message}; invoke with {"queueUrl": "https://sqs.<region>.amazonaws.com/<account>/<queue>"}`);
  }
  const result = await redriveQueue({
    sqs, sns, queueUrl: parsed.data.queueUrl, maxMessages: parsed.data.maxMessages,
    topicFor: (message) => required(topicEnv(stageOf(message.kind))),
  });
  log.info('redrive finished', { queueUrl: parsed.data.queueUrl, ...result });
  return result;
}
