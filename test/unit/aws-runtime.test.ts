/**
 * The deployed functions' runtime: secrets read (and parsed) from Secrets Manager,
 * messages published to the right topic in batches SNS accepts.
 */
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DynamoDBClient, PutItemCommand, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { qualify } from '../../lambdas/core/stages/qualify';
import type { BlobSource, ObjectSink } from '../../lambdas/core/stores/types';
import { mockClient } from 'aws-sdk-client-mock';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PublishBatchCommand, SNSClient } from '@aws-sdk/client-sns';
import { awsRuntime } from '../../lambdas/core/aws-runtime';
import { ENV, topicEnv } from '../../lambdas/core/env';
import { MESSAGE_VERSION, type StageMessage } from '../../lambdas/core/messages';
import { runSettings } from '../helpers/context';

const env = {
  [ENV.secretArn]: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:etl-azure-AbCdEf',
  [ENV.runTable]: 'etl-azs3copy-runs',
  [topicEnv('find-blobs')]: 'arn:aws:sns:us-east-1:123456789012:etl-find-blobs',
  [ENV.bucket]: 'dest',
  [topicEnv('download')]: 'arn:aws:sns:us-east-1:123456789012:etl-download',
  [topicEnv('largefile-initializer')]: 'arn:aws:sns:us-east-1:123456789012:etl-largefile-initializer',
  AWS_REGION: 'us-east-1',
};

const secret = {
  tenantid: '11111111-1111-1111-1111-111111111111',
  clientid: '22222222-2222-2222-2222-222222222222',
  clientsecret: 'the-real-client-secret-value',
  storageaccount: 'mystorage',
  container: 'data',
  isactive: 'True',
  begindate: '2024-03-01',
};

describe('the AWS runtime', () => {
  afterEach(() => vi.useRealTimers());

  const secrets = mockClient(SecretsManagerClient);
  const sns = mockClient(SNSClient);
  beforeEach(() => {
    secrets.reset();
    sns.reset();
  });
  // Files may share a worker: the clients' send goes back to the real one.
  afterAll(() => {
    secrets.restore();
    sns.restore();
  });

  it('reads and parses the secret, once a minute at most', async () => {
    secrets.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify(secret) });
    const { runtime } = awsRuntime('qualify', env);
    const config = await runtime.loadConfig();
    await runtime.loadConfig();
    expect(config).toMatchObject({ isActive: true, beginDate: '2024-03-01T00:00:00.000Z', source: { account: 'mystorage', container: 'data' } });
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(1);
  });

  it('turns a secret it cannot read into a one-line configuration error', async () => {
    secrets.on(GetSecretValueCommand).rejects(Object.assign(new Error('User is not authorized'), { name: 'AccessDeniedException' }));
    await expect(awsRuntime('qualify', env).runtime.loadConfig()).rejects.toThrow(/^cannot read the secret arn:aws:secretsmanager:.*: check it exists and this function may read it$/);
  });

  it('publishes each message to its stage topic, at most 10 to a batch and under 256 KiB', async () => {
    sns.on(PublishBatchCommand).resolves({ Successful: [], Failed: [] });
    const { runtime } = awsRuntime('find-blobs', env);
    const base = { v: MESSAGE_VERSION, runId: 'r', run: runSettings() };
    const blob = (i: number) => ({ name: `${'n'.repeat(900)}-${i}`, etag: '"e"', size: 1, lastModified: '2024-01-01T00:00:00.000Z' });
    const messages: StageMessage[] = [
      ...Array.from({ length: 23 }, (_, i): StageMessage => ({ ...base, kind: 'copy-blobs', blobs: Array.from({ length: 30 }, (_, j) => blob(i * 30 + j)) })),
      { ...base, kind: 'large-blob', blob: blob(9999), replans: 0 },
    ];
    await runtime.publish(messages);

    const calls = sns.commandCalls(PublishBatchCommand).map((c) => c.args[0].input);
    const toDownload = calls.filter((c) => c.TopicArn === env[topicEnv('download')]);
    const toInitializer = calls.filter((c) => c.TopicArn === env[topicEnv('largefile-initializer')]);
    expect(toDownload.flatMap((c) => c.PublishBatchRequestEntries!)).toHaveLength(23);
    expect(toInitializer.flatMap((c) => c.PublishBatchRequestEntries!)).toHaveLength(1);
    for (const call of calls) {
      expect(call.PublishBatchRequestEntries!.length).toBeLessThanOrEqual(10);
      const bytes = call.PublishBatchRequestEntries!.reduce((n, e) => n + Buffer.byteLength(e.Message!), 0);
      expect(bytes).toBeLessThanOrEqual(256 * 1024);
    }
  });

  it('fails loudly when SNS refuses part of a batch', async () => {
    sns.on(PublishBatchCommand).resolves({ Failed: [{ Id: '0', Code: 'InternalError', SenderFault: false, Message: 'try again' }] });
    const { runtime } = awsRuntime('find-blobs', env);
    const message: StageMessage = { v: MESSAGE_VERSION, runId: 'r', run: runSettings(), kind: 'large-blob', replans: 0, blob: { name: 'a', etag: '"e"', size: 1, lastModified: '2024-01-01T00:00:00.000Z' } };
    await expect(runtime.publish([message])).rejects.toThrow(/SNS refused 1 messages: InternalError try again/);
  });

  it('starts a run whose messages carry no credential of the secret, only identifiers', async () => {
    secrets.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify(secret) });
    sns.on(PublishBatchCommand).resolves({ Successful: [], Failed: [] });
    const dynamo = mockClient(DynamoDBClient);
    dynamo.on(GetItemCommand).resolves({});
    dynamo.on(PutItemCommand).resolves({});
    const s3 = mockClient(S3Client);
    s3.on(PutObjectCommand).resolves({});
    const { runtime } = awsRuntime('qualify', env);
    // The stores' reachability checks are not what this is about.
    const checked = { check: async () => undefined };
    const started = await qualify({
      ...runtime,
      sourceFor: async () => checked as unknown as BlobSource,
      sinkFor: (settings) => ({ ...runtime.sinkFor(settings), ...checked }) as ObjectSink,
    });
    expect(started.started).toBe(true);
    const published = sns.commandCalls(PublishBatchCommand).flatMap((c) => c.args[0].input.PublishBatchRequestEntries!.map((e) => e.Message!));
    expect(published).toHaveLength(1);
    expect(JSON.parse(published[0])).toMatchObject({ kind: 'list-page', run: { account: 'mystorage', container: 'data', bucket: 'dest' } });
    const written = [...published, ...dynamo.calls().map((c) => JSON.stringify(c.args[0].input)), ...s3.calls().map((c) => JSON.stringify(c.args[0].input))].join('\n');
    for (const credential of [secret.clientsecret, secret.tenantid, secret.clientid]) expect(written).not.toContain(credential);
    dynamo.restore();
    s3.restore();
  });

  it('signs in again with new credentials once the secret is rotated, though the function stays warm', async () => {
    vi.useFakeTimers({ now: Date.parse('2026-01-01T00:00:00Z'), toFake: ['Date'] });
    secrets.on(GetSecretValueCommand).resolvesOnce({ SecretString: JSON.stringify(secret) })
      .resolves({ SecretString: JSON.stringify({ ...secret, clientsecret: 'the-rotated-client-secret' }) });
    const { runtime } = awsRuntime('download', env);
    const settings = runSettings({ account: 'mystorage', container: 'data' });
    const before = await runtime.sourceFor(settings);
    expect(await runtime.sourceFor(settings)).toBe(before);
    vi.setSystemTime(Date.now() + 61_000);
    expect(await runtime.sourceFor(settings)).not.toBe(before);
  });

  it('stops using the client secret once the secret switches to federation, though the function stays warm', async () => {
    vi.useFakeTimers({ now: Date.parse('2026-01-01T00:00:00Z'), toFake: ['Date'] });
    const { clientsecret: _, ...federated } = secret;
    secrets.on(GetSecretValueCommand).resolvesOnce({ SecretString: JSON.stringify(secret) })
      .resolves({ SecretString: JSON.stringify({ ...federated, auth: 'federated' }) });
    const { runtime } = awsRuntime('download', env);
    const settings = runSettings({ account: 'mystorage', container: 'data' });
    const before = await runtime.sourceFor(settings);
    vi.setSystemTime(Date.now() + 61_000);
    expect((await runtime.loadConfig()).source.credentials.kind).toBe('federated');
    expect(await runtime.sourceFor(settings)).not.toBe(before);
  });
});
