/**
 * What a dead-letter queue message holds, in each shape AWS writes one, and which
 * topic its stage messages may go back to.
 */
import { describe, expect, it } from 'vitest';
import { MESSAGE_VERSION, type StageMessage } from '../../lambdas/core/messages';
import { singleTopic, stageMessagesIn, stageOfTopic } from '../../lambdas/core/redrive';

const run = { account: 'acct', container: 'src', bucket: 'dest', prefix: '', largeBlobBytes: 6_291_456, partBytes: 5_242_880 };
const blob = { name: 'a.txt', etag: '"0x1"', size: 3, lastModified: '2024-01-01T00:00:00.000Z' };
const copyBlobs: StageMessage = { v: MESSAGE_VERSION, runId: 'r1', run, kind: 'copy-blobs', blobs: [blob] };
const largeBlob: StageMessage = { v: MESSAGE_VERSION, runId: 'r1', run, kind: 'large-blob', blob, replans: 0 };
const text = JSON.stringify(copyBlobs);
const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:etl-to-download';

describe('stageMessagesIn', () => {
  it('unwraps a Lambda invocation record around an SNS event, every record of it', () => {
    const record = { requestContext: { condition: 'RetriesExhausted' }, requestPayload: { Records: [{ Sns: { Message: text } }, { Sns: { Message: text } }] } };
    expect(stageMessagesIn(JSON.stringify(record))).toEqual([text, text]);
  });

  it('unwraps an SNS notification and an SNS event, and takes a bare stage message', () => {
    expect(stageMessagesIn(JSON.stringify({ Type: 'Notification', TopicArn: TOPIC, Message: text }))).toEqual([text]);
    expect(stageMessagesIn(JSON.stringify({ Records: [{ Sns: { Message: text } }] }))).toEqual([text]);
    expect(stageMessagesIn(text)).toEqual([text]);
  });

  it('says what it could not find', () => {
    expect(() => stageMessagesIn('{')).toThrow('the queue message is not JSON');
    expect(() => stageMessagesIn('{"hello": 1}')).toThrow(
      'the queue message holds no azs3copy message (not a Lambda invocation record, an SNS event or an SNS notification)',
    );
    expect(() => stageMessagesIn('{"Records": [{"Sns": {}}]}')).toThrow('Records[0].Sns.Message is missing');
  });
});

describe('the topic a message goes back to', () => {
  it('reads the stage from a topic named as deployed, and nothing from any other name', () => {
    expect(stageOfTopic(TOPIC)).toBe('download');
    expect(stageOfTopic('arn:aws:sns:eu-west-1:123456789012:etl-to-largefile-initializer')).toBe('largefile-initializer');
    expect(stageOfTopic('arn:aws:sns:eu-west-1:123456789012:my-own-topic')).toBeUndefined();
  });

  it('refuses a message of another stage than the topic feeds', () => {
    const topicFor = singleTopic(TOPIC);
    expect(topicFor(copyBlobs)).toBe(TOPIC);
    expect(() => topicFor(largeBlob)).toThrow(
      `a "large-blob" message is for largefile-initializer, but topic ${TOPIC} feeds download: redrive this queue to the largefile-initializer topic`,
    );
    expect(singleTopic('arn:aws:sns:eu-west-1:123456789012:my-own-topic')(largeBlob)).toBe('arn:aws:sns:eu-west-1:123456789012:my-own-topic');
  });
});
