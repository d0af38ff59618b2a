/**
 * The Lambda face: envelopes and messages are validated at the boundary, and a
 * bad one is named by its path.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_TUNING, type Runtime } from '../../lambdas/core/context';
import { ConfigError } from '../../lambdas/core/errors';
import { qualifyHandler, topicHandler } from '../../lambdas/core/handler';
import { runLedger } from '../../lambdas/core/run-ledger';
import { memoryTable } from '../../lambdas/core/state/memory-table';
import { createLogger } from '../../lambdas/core/log';
import { MESSAGE_VERSION, SEVERAL_DESTINATIONS_VERSION, parseStageMessage, stamped } from '../../lambdas/core/messages';
import { runSettings } from '../helpers/context';
import envelope from '../fixtures/sns-copy-blobs.json';

function runtime(overrides: Partial<Runtime> = {}, lines: string[] = []): Runtime {
  return {
    loadConfig: async () => { throw new Error('not used'); },
    defaults: { bucket: 'dest', prefix: '', largeBlobBytes: 100, partBytes: 5 * 1024 * 1024, partTimeoutSeconds: 900 },
    sourceFor: async () => { throw new Error('not used'); },
    listContainers: async () => { throw new Error('not used'); },
    sinkFor: () => { throw new Error('not used'); },
    publish: async () => undefined,
    pipeline: 'test',
    owner: 'pipeline',
    stallAfterSeconds: 1800,
    ledger: runLedger(memoryTable()),
    log: createLogger({}, { write: (line) => lines.push(line) }),
    tuning: DEFAULT_TUNING,
    remainingMs: () => 1000,
    ...overrides,
  };
}

describe('stage messages', () => {
  it('accepts a well-formed message', () => {
    const message = parseStageMessage(envelope.Records[0].Sns.Message, 'm');
    expect(message.kind).toBe('copy-blobs');
  });

  it('names the path of the first bad field', () => {
    const bad = JSON.parse(envelope.Records[0].Sns.Message);
    bad.blobs[1].size = -1;
    expect(() => parseStageMessage(JSON.stringify(bad), 'Records[0].Sns.Message')).toThrow(/^Records\[0\]\.Sns\.Message\.blobs\.1\.size: /);
  });

  it('refuses a message of another version', () => {
    const old = { ...JSON.parse(envelope.Records[0].Sns.Message), v: 0 };
    expect(() => parseStageMessage(old, 'm')).toThrow(/^m\.v: /);
  });

  it('gives the messages of a run with several destinations a version of their own (an older release refuses them), and only those', () => {
    const message = { ...JSON.parse(envelope.Records[0].Sns.Message), v: MESSAGE_VERSION };
    expect(stamped(message).v).toBe(MESSAGE_VERSION);
    const several = stamped({ ...message, run: { ...message.run, also: [{ bucket: 'backup', prefix: '' }] } });
    expect(several.v).toBe(SEVERAL_DESTINATIONS_VERSION);
    expect(parseStageMessage(several, 'm')).toMatchObject({ v: 3, run: { also: [{ bucket: 'backup', prefix: '' }] } });
  });

  it('refuses text that is not JSON', () => {
    expect(() => parseStageMessage('{nope', 'm')).toThrow('m: message is not JSON');
  });
});

const sqsEvent = (body: string, receives = 1) => ({
  Records: [{
    eventSource: 'aws:sqs', messageId: 'm-1', receiptHandle: 'rh-1', body,
    attributes: { ApproximateReceiveCount: String(receives) }, eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:etl-lambda06-recombinator-queue',
  }],
});

describe('topic handlers', () => {
  it('rejects an event that is neither an SQS batch nor an SNS envelope, naming the path', async () => {
    const handler = topicHandler('download', () => runtime());
    await expect(handler({ Records: [{ body: 'what?' }] })).rejects.toThrow(/^event\.Records\.0\.Sns: /);
    await expect(handler({ Records: [{ eventSource: 'aws:sqs', body: 'x' }] })).rejects.toThrow(/^event\.Records\.0\.messageId: /);
  });

  it('rejects a message meant for another stage (an SNS event of an older release, in flight)', async () => {
    const handler = topicHandler('parter', () => runtime());
    await expect(handler(envelope)).rejects.toThrow(/parter takes "copy-part", got "copy-blobs"/);
  });

  it('reports a failed SQS message back by id, and puts off its retry longer at each receive', async () => {
    const delays: number[] = [];
    const handler = topicHandler('parter', () => runtime(), { retryLater: async (_record, seconds) => void delays.push(seconds) });
    const body = envelope.Records[0].Sns.Message;
    for (const receives of [1, 2, 3, 4, 5]) {
      expect(await handler(sqsEvent(body, receives))).toEqual({ batchItemFailures: [{ itemIdentifier: 'm-1' }] });
    }
    expect(delays).toEqual([5, 15, 30, 60, 120]);
    // Unreadable bodies fail the same way: they end in the dead-letter queue, to be looked at.
    expect(await handler(sqsEvent('{not json'))).toEqual({ batchItemFailures: [{ itemIdentifier: 'm-1' }] });
  });
});

describe('qualify handler', () => {
  const config = (isActive: boolean) => ({
    source: { account: 'acct', container: 'src', credentials: { kind: 'connection-string' as const, connectionString: 'x' } },
    isActive,
  });

  it('does nothing when the copy is switched off', async () => {
    const published: unknown[] = [];
    const handler = qualifyHandler(() => runtime({ loadConfig: async () => config(false), publish: async (m) => void published.push(...m) }));
    expect(await handler({})).toEqual({ started: false, reason: expect.stringMatching(/switched off/) });
    expect(published).toEqual([]);
  });

  it('starts a run with the first listing message when switched on', async () => {
    const published: { kind: string; invocation?: number; run?: unknown }[] = [];
    const check = async () => undefined;
    const handler = qualifyHandler(() =>
      runtime({
        loadConfig: async () => config(true),
        sourceFor: async () => ({ check }) as never,
        sinkFor: () => ({ check }) as never,
        publish: async (m) => void published.push(...m),
      }),
    );
    const result = await handler({ 'detail-type': 'Scheduled Event' });
    expect(result).toMatchObject({ started: true });
    expect(published).toEqual([
      expect.objectContaining({ v: MESSAGE_VERSION, kind: 'list-page', invocation: 0, run: runSettings({ account: 'acct', container: 'src', largeBlobBytes: 100, partBytes: 5 * 1024 * 1024, maxPartBytes: 5 * 1024 ** 3 }) }),
    ]);
  });

  it('logs a configuration error as one line and does not throw (a retry cannot fix a typo)', async () => {
    const lines: string[] = [];
    const counted: [string, number][] = [];
    const handler = qualifyHandler(() =>
      runtime({ loadConfig: async () => { throw new ConfigError('"isactive" is "maybe": fix it'); }, metric: (name, value) => void counted.push([name, value]) }, lines),
    );
    expect(await handler({})).toEqual({ started: false, error: '"isactive" is "maybe": fix it' });
    expect(counted).toEqual([['ConfigErrors', 1]]);
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0])).toMatchObject({ level: 'error', message: '"isactive" is "maybe": fix it' });
  });
});

describe('a freshly deployed secret', () => {
  it('is a paused copy, not an error: switched off wins over the placeholders', async () => {
    const { parseSecret, SECRET_TEMPLATE } = await import('../../lambdas/core/config');
    const lines: string[] = [];
    const handler = qualifyHandler(() => runtime({ loadConfig: async () => parseSecret(JSON.stringify(SECRET_TEMPLATE)) }, lines));
    expect(await handler({})).toEqual({ started: false, reason: expect.stringMatching(/^the copy is switched off .*not ready yet either: .*placeholder "clientsecret"/) });
    expect(lines.map((l) => JSON.parse(l).level)).toEqual(['info']);
  });
});

describe('a blob failure in the report', () => {
  it('says what to grant when S3 refuses the write', async () => {
    const { failureReason } = await import('../../lambdas/core/stages/download');
    const denied = Object.assign(new Error('Access Denied'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
    expect(failureReason(denied)).toBe('S3 refused the write (403 AccessDenied): allow s3:PutObject, and s3:PutObjectTagging for blobs with index tags, on the bucket');
  });
});
