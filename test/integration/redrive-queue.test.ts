/**
 * `azs3copy redrive --queue-url --topic-arn` against moto's SQS and SNS: the two
 * shapes the deployed dead-letter queues hold (Lambda's invocation record of a
 * failed SNS event, and SNS's own notification) go back to the stage's topic
 * unchanged and leave the queue; what holds no stage message, or a message for
 * another stage, stays, with the reason printed.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { CreateTopicCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { MESSAGE_VERSION, type StageMessage } from '../../lambdas/core/messages';
import { runCli, type CliResult } from '../helpers/cli';
import { emulators, uniqueName } from '../helpers/stores';

const run = { account: 'acct', container: 'src', bucket: 'dest', prefix: '', largeBlobBytes: 6 * 1024 * 1024, partBytes: 5 * 1024 * 1024 };
const blob = { name: 'dir/a b+c.txt', etag: '"0x1"', size: 3, lastModified: '2024-01-01T00:00:00.000Z' };
const copyBlobs = (name: string): StageMessage => ({ v: MESSAGE_VERSION, runId: 'r1', run, kind: 'copy-blobs', blobs: [{ ...blob, name }] });
const largeBlob: StageMessage = { v: MESSAGE_VERSION, runId: 'r1', run, kind: 'large-blob', blob, replans: 0 };

/** What Lambda's on-failure destination writes: an invocation record around the SNS event. */
function invocationRecord(topicArn: string, message: string) {
  return JSON.stringify({
    version: '1.0',
    timestamp: '2026-01-01T00:00:00.000Z',
    requestContext: { requestId: 'req-1', functionArn: 'arn:aws:lambda:us-east-1:123456789012:function:etl-lambda03-download:$LATEST', condition: 'RetriesExhausted', approximateInvokeCount: 3 },
    requestPayload: { Records: [{ EventSource: 'aws:sns', EventVersion: '1.0', Sns: { Type: 'Notification', MessageId: 'm-1', TopicArn: topicArn, Message: message, Timestamp: '2026-01-01T00:00:00.000Z' } }] },
    responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
    responsePayload: { errorType: 'Error', errorMessage: '1 of 1 blobs hit transient errors' },
  });
}

/** What an SNS subscription's dead-letter queue holds: the notification. */
function notification(topicArn: string, message: string) {
  return JSON.stringify({ Type: 'Notification', MessageId: 'm-2', TopicArn: topicArn, Message: message, Timestamp: '2026-01-01T00:00:00.000Z', SignatureVersion: '1' });
}

describe('azs3copy redrive from an SQS dead-letter queue', () => {
  const endpoint = () => emulators().s3Endpoint;
  let sqs: SQSClient;
  let queueUrl: string;
  let observerUrl: string;
  let topicArn: string;
  let result: CliResult;
  const first = JSON.stringify(copyBlobs('first.txt'));
  const second = JSON.stringify(copyBlobs('second.txt'));

  beforeAll(async () => {
    const config = { endpoint: endpoint(), region: 'us-east-1', credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } };
    sqs = new SQSClient(config);
    const sns = new SNSClient(config);
    const name = uniqueName('etl');
    topicArn = (await sns.send(new CreateTopicCommand({ Name: `${name}-to-download` }))).TopicArn!;
    queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `${name}-lambda03-download-failed` }))).QueueUrl!;
    // Stands in for the download function: what the topic delivers lands here.
    observerUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `${name}-observer` }))).QueueUrl!;
    const observerArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: observerUrl, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn;
    await sns.send(new SubscribeCommand({ TopicArn: topicArn, Protocol: 'sqs', Endpoint: observerArn, Attributes: { RawMessageDelivery: 'true' } }));

    for (const body of [invocationRecord(topicArn, first), notification(topicArn, second), 'not json at all', JSON.stringify(largeBlob)]) {
      await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }));
    }
    result = await runCli(['redrive', '--queue-url', queueUrl, '--topic-arn', topicArn], { AWS_ENDPOINT_URL: endpoint() });
  });

  it('publishes the stage messages to the topic unchanged', async () => {
    const delivered: string[] = [];
    for (let i = 0; i < 5 && delivered.length < 2; i++) {
      const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: observerUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
      delivered.push(...(out.Messages ?? []).map((m) => m.Body!));
    }
    expect(delivered.sort()).toEqual([first, second].sort());
  });

  it('leaves in the queue only what it could not redrive, and says why', async () => {
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('');
    expect(result.stdout).toContain(`read 4 messages from ${queueUrl}; published 2 to ${topicArn} (2 copy-blobs); 2 left in the queue\n`);
    expect(result.stdout).toMatch(/ {2}kept \S+: the queue message is not JSON\n/);
    expect(result.stdout).toMatch(/ {2}kept \S+: a "large-blob" message is for largefile-initializer, but topic \S+ feeds download: redrive this queue to the largefile-initializer topic\n/);
    const attributes = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }));
    expect(Number(attributes.Attributes!.ApproximateNumberOfMessages) + Number(attributes.Attributes!.ApproximateNumberOfMessagesNotVisible)).toBe(2);
  });

  it('refuses a topic that is not an ARN, in one line', async () => {
    const bad = await runCli(['redrive', '--queue-url', queueUrl, '--topic-arn', 'etl-to-download'], { AWS_ENDPOINT_URL: endpoint() });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe('azs3copy: --topic-arn "etl-to-download" is not an SNS topic ARN: give one like arn:aws:sns:REGION:ACCOUNT:PREFIX-to-download\n');
  });

  it('says so in one line when the queue does not exist', async () => {
    const missing = queueUrl.replace(/[^/]+$/, 'no-such-queue');
    const bad = await runCli(['redrive', '--queue-url', missing, '--topic-arn', topicArn], { AWS_ENDPOINT_URL: endpoint() });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe(`azs3copy: queue ${missing} does not exist: copy the dead-letter queue's URL from the SQS console\n`);
  });
});
