/**
 * The box itself, on a small hand-written assembly (no synth): what it creates,
 * ignores and skips, and whether its Lambda behaves as Lambda does: the bundle
 * with its layer and only its own environment, warm containers, timeouts that
 * kill, asynchronous retries and the on-failure destination's record, and SQS
 * batches with partial failures, redelivery and the queue's redrive.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DescribeTimeToLiveCommand, DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { PublishBatchCommand, PublishCommand } from '@aws-sdk/client-sns';
import { GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { startBox, type Box } from '../helpers/box/index';
import { FIXTURE, writeFixtureAssembly } from '../helpers/box/fixture';

const TIMEOUT_SECONDS = 1;

describe('the box runs a template as AWS would', () => {
  let box: Box;
  let dir: string;
  const fn = FIXTURE.functionName;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'azs3copy-box-fixture-'));
    process.env.BOX_PARENT_ONLY = 'the parent process has this; a function must not';
    box = await startBox({ assemblyDir: writeFixtureAssembly(dir), functionTimeoutSeconds: TIMEOUT_SECONDS, asyncRetryDelaysMs: [50, 50] });
  }, 60_000);

  afterAll(async () => {
    delete process.env.BOX_PARENT_ONLY;
    await box?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates what the template declares, ignores what has no local meaning, and lists what it skipped', async () => {
    const status = Object.fromEntries(box.resources.map((r) => [r.logicalId, r.status]));
    expect(status).toMatchObject({
      Role: 'created', Work: 'created', Topic: 'created', Table: 'created', Secret: 'created',
      Function: 'emulated', Layer: 'emulated', Subscription: 'emulated', Mapping: 'emulated', InvokeConfig: 'emulated',
      Alarm: 'ignored', Custom: 'skipped', ProdOnly: 'skipped',
    });
    expect(box.resource('Custom').note).toMatch(/no emulation of Custom::Thing/);
    expect(box.resource('ProdOnly').note).toMatch(/condition IsProd is false/);
    expect(box.report()).toMatch(/output Custom not resolved: .*Custom::Thing skipped/);
    expect(box.outputs.Queue).toBe(box.resource('fixture-work').ref);

    const work = await box.sqs().send(new GetQueueAttributesCommand({ QueueUrl: box.outputs.Queue, AttributeNames: ['All'] }));
    expect(work.Attributes).toMatchObject({ VisibilityTimeout: '2' });
    expect(JSON.parse(work.Attributes!.RedrivePolicy!)).toEqual({ deadLetterTargetArn: box.resource('WorkDlq').attrs.Arn, maxReceiveCount: 2 });
    const ttl = await box.dynamodb().send(new DescribeTimeToLiveCommand({ TableName: box.resource('Table').ref }));
    expect(ttl.TimeToLiveDescription).toMatchObject({ AttributeName: 'expires', TimeToLiveStatus: 'ENABLED' });
    const secret = await box.secrets().send(new GetSecretValueCommand({ SecretId: box.outputs.SecretArn }));
    expect(JSON.parse(secret.SecretString!)).toEqual({ user: 'box', password: expect.stringMatching(/^[A-Za-z0-9]{16}$/) });
  });

  it('runs the bundle with its layer, the template\'s environment resolved, what Lambda sets, and nothing of the parent\'s', async () => {
    const answer = await box.invoke(fn, { action: 'hello' });
    const payload = answer.Payload as { greeting: string; env: Record<string, string>; remainingMs: number; requestId: string; functionName: string };
    expect(answer.FunctionError).toBeUndefined();
    expect(payload.greeting).toBe('hello from the layer');
    expect(payload.env).toMatchObject({
      TOPIC: box.resource(FIXTURE.topicName).ref,
      WHERE: 'eu-west-1/123456789012/fixture-work/${Literal}',
      SECOND: 'b',
      TABLE: box.resource('Table').ref,
      MODE: 'not-test',
      AWS_REGION: 'eu-west-1',
      AWS_LAMBDA_FUNCTION_NAME: fn,
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '256',
      AWS_ENDPOINT_URL: box.endpoint,
      AWS_ACCESS_KEY_ID: box.configOf(fn).credentials.accessKeyId,
    });
    expect(payload.env.BOX_PARENT_ONLY).toBeUndefined();
    expect(payload.env.AWS_ACCESS_KEY_ID).not.toBe(box.admin.credentials.accessKeyId);
    expect(payload).toMatchObject({ requestId: answer.requestId, functionName: fn });
    expect(payload.remainingMs).toBeGreaterThan(0);
    expect(payload.remainingMs).toBeLessThanOrEqual(TIMEOUT_SECONDS * 1000);
  });

  it('keeps a container warm, kills one that runs past the timeout, and starts the next one cold', async () => {
    const before = box.stats()[fn];
    const warm = await box.invoke(fn, { action: 'hello' });
    expect((warm.Payload as { invocations: number }).invocations).toBeGreaterThan(1);
    const slow = await box.invoke(fn, { action: 'sleep', ms: 5_000 });
    expect(slow).toMatchObject({ FunctionError: 'Unhandled', timedOut: true, Payload: { errorType: 'Sandbox.Timedout', errorMessage: 'Task timed out after 1.00 seconds' } });
    expect(slow.durationMs).toBeLessThan(2_500);
    const after = await box.invoke(fn, { action: 'hello' });
    expect((after.Payload as { invocations: number }).invocations).toBe(1);
    const stats = box.stats()[fn];
    expect(stats.timeouts - before.timeouts).toBe(1);
    expect(stats.coldStarts - before.coldStarts).toBe(1);
    expect(box.logText(fn)).toMatch(/Task timed out after 1\.00 seconds/);
  });

  it('answers a thrown error as a function error, and ends a container on an uncaught exception', async () => {
    expect(await box.invoke(fn, { action: 'throw' })).toMatchObject({ FunctionError: 'Unhandled', Payload: { errorType: 'TypeError', errorMessage: 'asked to throw' } });
    const crashed = await box.invoke(fn, { action: 'crash' });
    expect(crashed).toMatchObject({ FunctionError: 'Unhandled', Payload: { errorType: 'Runtime.UncaughtException', errorMessage: 'thrown outside the handler' } });
    expect((await box.invoke(fn, { action: 'hello' })).Payload).toMatchObject({ invocations: 1 });
  });

  it('delivers an SNS notification as an asynchronous invocation, retries it twice, then sends Lambda\'s record to the on-failure destination', async () => {
    const before = box.stats()[fn].invocations;
    const topicArn = box.resource(FIXTURE.topicName).ref!;
    await box.sns().send(new PublishCommand({ TopicArn: topicArn, Message: 'fail' }));
    await box.idle({ timeoutMs: 20_000 });
    expect(box.stats()[fn].invocations - before).toBe(3);
    const { Messages = [] } = await box.sqs().send(new ReceiveMessageCommand({ QueueUrl: box.resource('Failed').ref, MaxNumberOfMessages: 10 }));
    expect(Messages).toHaveLength(1);
    expect(JSON.parse(Messages[0].Body!)).toMatchObject({
      version: '1.0',
      requestContext: { condition: 'RetriesExhausted', approximateInvokeCount: 3, functionArn: `${box.resource(fn).attrs.Arn}:$LATEST` },
      requestPayload: { Records: [{ EventSource: 'aws:sns', EventSubscriptionArn: box.resource('Subscription').ref, Sns: { Message: 'fail', TopicArn: topicArn, Type: 'Notification' } }] },
      responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
      responsePayload: { errorType: 'Error', errorMessage: 'the notification says fail' },
    });
  });

  it('feeds SQS batches, at most MaximumConcurrency at once, deletes what succeeded and lets the queue dead-letter what kept failing', async () => {
    const queueUrl = box.outputs.Queue;
    const bodies = ['ok-1', 'ok-2', 'fail-once-and-again', 'ok-3', 'ok-4', 'ok-5', 'ok-6', 'ok-7', 'ok-8', 'ok-9', 'ok-10', 'ok-11'];
    for (let i = 0; i < bodies.length; i += 10) {
      const chunk = bodies.slice(i, i + 10);
      await box.sqs().send(new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: chunk.map((MessageBody, j) => ({ Id: String(j), MessageBody, MessageAttributes: { origin: { DataType: 'String', StringValue: 'test' } } })),
      }));
    }
    await box.idle({ timeoutMs: 30_000 });
    expect(box.stats()[fn].peakConcurrency).toBe(2);
    const seen = box.logs(fn).filter((l) => l.text.startsWith('{"sqsEvent"')).flatMap((l) => (JSON.parse(l.text) as { sqsEvent: { Records: any[] } }).sqsEvent.Records);
    // At least once: on a loaded machine a batch may outlive the visibility timeout and come again; count distinct messages.
    const failing = new Set(seen.filter((r) => r.body === 'fail-once-and-again').map((r) => r.attributes.ApproximateReceiveCount));
    expect([...failing].sort()).toEqual(['1', '2']);
    expect(new Set(seen.filter((r) => r.body.startsWith('ok-')).map((r) => r.messageId)).size).toBe(11);
    expect(seen[0]).toEqual({
      messageId: expect.any(String),
      receiptHandle: expect.any(String),
      body: expect.any(String),
      attributes: expect.objectContaining({ ApproximateReceiveCount: expect.any(String), SentTimestamp: expect.any(String), SenderId: expect.any(String) }),
      messageAttributes: { origin: { stringValue: 'test', stringListValues: [], binaryListValues: [], dataType: 'String' } },
      md5OfBody: expect.stringMatching(/^[0-9a-f]{32}$/),
      md5OfMessageAttributes: expect.stringMatching(/^[0-9a-f]{32}$/),
      eventSource: 'aws:sqs',
      eventSourceARN: box.resource('fixture-work').attrs.Arn,
      awsRegion: 'eu-west-1',
    });
    const dead = await box.sqs().send(new ReceiveMessageCommand({ QueueUrl: box.resource('fixture-work-dlq').ref, MaxNumberOfMessages: 10 }));
    expect(dead.Messages?.map((m) => m.Body)).toEqual(['fail-once-and-again']);
  });

  it('delivers SNS to SQS (raw) through moto, and the mapping gathers what arrives within its batching window into one batch', async () => {
    const before = box.invocations(fn).length;
    await box.sns().send(new PublishBatchCommand({
      TopicArn: box.resource(FIXTURE.stageTopicName).ref,
      PublishBatchRequestEntries: ['one', 'two', 'three'].map((Message) => ({ Id: Message, Message: `ok-${Message}` })),
    }));
    await box.idle({ timeoutMs: 20_000 });
    const batches = box.invocations(fn).slice(before).map((i) => (i.event as { Records: { body: string; eventSourceARN: string }[] }).Records);
    expect(batches).toEqual([[
      expect.objectContaining({ body: 'ok-one', eventSourceARN: box.resource('fixture-stage').attrs.Arn }),
      expect.objectContaining({ body: 'ok-two' }),
      expect.objectContaining({ body: 'ok-three' }),
    ]]);
  });

  it('holds S3 calls to S3\'s own rules: no s3:ListBucket makes a missing key 403, tags on a PUT need s3:PutObjectTagging', async () => {
    const Bucket = box.outputs.BucketName;
    const asFunction = new S3Client({ ...box.configOf(fn), forcePathStyle: true });
    try {
      await asFunction.send(new PutObjectCommand({ Bucket, Key: 'present', Body: 'x' }));
      await expect(asFunction.send(new HeadObjectCommand({ Bucket, Key: 'present' }))).resolves.toMatchObject({ ContentLength: 1 });
      await expect(asFunction.send(new HeadObjectCommand({ Bucket, Key: 'absent' }))).rejects.toMatchObject({ $metadata: { httpStatusCode: 403 } });
      await expect(box.s3().send(new HeadObjectCommand({ Bucket, Key: 'absent' }))).rejects.toMatchObject({ $metadata: { httpStatusCode: 404 } });
      await expect(asFunction.send(new PutObjectCommand({ Bucket, Key: 'tagged', Body: 'x', Tagging: 'a=b' }))).rejects.toMatchObject({
        name: 'AccessDenied',
        message: expect.stringContaining('s3:PutObjectTagging'),
      });
    } finally {
      asFunction.destroy();
    }
    const user = box.userArnOf(fn);
    const deniedHere = () => box.denials.filter((d) => d.user === user && d.resource.includes(Bucket)).map((d) => [d.action, d.resource]);
    // moto reports each denial on its output: the last may arrive after the request's answer (seen on a busy machine).
    await vi.waitFor(() => expect(deniedHere().length).toBeGreaterThanOrEqual(2), { timeout: 15_000, interval: 100 });
    expect(deniedHere()).toEqual([
      ['s3:ListBucket', `arn:aws:s3:::${Bucket}`],
      ['s3:PutObjectTagging', `arn:aws:s3:::${Bucket}/tagged`],
    ]);
  });

  it('scopes a DynamoDB grant to its table and its actions', async () => {
    const TableName = box.resource('Table').ref!;
    const asFunction = new DynamoDBClient(box.configOf(fn));
    try {
      await asFunction.send(new PutItemCommand({ TableName, Item: { pk: { S: 'run-1' } } }));
      await expect(asFunction.send(new GetItemCommand({ TableName, Key: { pk: { S: 'run-1' } } }))).rejects.toMatchObject({
        name: 'AccessDeniedException',
        message: expect.stringContaining(`dynamodb:GetItem on resource: ${box.resource('Table').attrs.Arn}`),
      });
      await expect(asFunction.send(new PutItemCommand({ TableName: 'some-other-table', Item: { pk: { S: 'x' } } }))).rejects.toMatchObject({ name: 'AccessDeniedException' });
    } finally {
      asFunction.destroy();
    }
  });

  it('refuses what the deployment would: a queue hiding a message for less than its function may run, reserved concurrency over the quota', async () => {
    const bad = mkdtempSync(join(tmpdir(), 'azs3copy-box-fixture-'));
    try {
      const assemblyDir = writeFixtureAssembly(bad, (t) => {
        t.Resources.Work.Properties.VisibilityTimeout = 1;
      });
      await expect(startBox({ assemblyDir })).rejects.toThrow(
        /Mapping: the deployment would fail: Queue visibility timeout: 1 seconds is less than Function timeout: 2 seconds/,
      );
      // A new account's quota is far below 1,000: what a function reserves comes out of it, less 100.
      await expect(startBox({ assemblyDir: writeFixtureAssembly(bad), accountConcurrency: 102 })).rejects.toThrow(
        /reserve 3 concurrent executions, and an account with a quota of 102 can reserve at most 2/,
      );
    } finally {
      rmSync(bad, { recursive: true, force: true });
    }
  });

  it('polls with the function\'s own role: a mapping its role may not read is AccessDenied, reported by the box', () => {
    expect(box.problems.filter((p) => p.includes(FIXTURE.ungrantedFunctionName))).toEqual([
      expect.stringMatching(/cannot receive from .*fixture-untouched: AccessDenied: .*not authorized to perform: sqs:ReceiveMessage/),
    ]);
    expect(box.denials.some((d) => d.action === 'sqs:ReceiveMessage' && d.resource.endsWith(':fixture-untouched'))).toBe(true);
  });

  it('stops every process it started', async () => {
    const children = () => {
      try {
        return execFileSync('ps', ['-o', 'args=', '--ppid', String(process.pid)], { encoding: 'utf8' }).split('\n');
      } catch {
        return []; // ps exits 1 when there are none
      }
    };
    expect(children().some((c) => c.includes('moto_iam.py'))).toBe(true);
    await box.stop();
    expect(children().filter((c) => /moto_iam\.py|bootstrap\.mjs/.test(c))).toEqual([]);
  });
});
