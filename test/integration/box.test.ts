/**
 * The pipeline in a box: the stack as synthesized, deployed into a moto that
 * enforces IAM, each function run from its bundle and layers with its own role's
 * policies, fed by SNS -> SQS -> event source mappings as AWS feeds it. A container
 * goes end to end through the deployed functions, with its run accounted for in
 * the run table and its report in the bucket; a second start meanwhile is refused;
 * a run whose parter is killed part way resumes and ends complete; a run whose
 * messages die in a dead-letter queue is marked stalled, naming the blob and the
 * queue; then the roles are held to what they do not grant.
 */
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { AbortMultipartUploadCommand, GetObjectCommand, GetObjectTaggingCommand, ListBucketsCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { GetUserPolicyCommand, ListUserPoliciesCommand, PutUserPolicyCommand } from '@aws-sdk/client-iam';
import { CreateQueueCommand, GetQueueAttributesCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import type { ContainerClient } from '@azure/storage-blob';
import { SOURCE_META } from '../../lambdas/core/attributes';
import { STATE_PREFIX } from '../../lambdas/core/keys';
import type { PlanReport } from '../../lambdas/core/cost/plan-report';
import { countsFromAttributes, type RequestCounts } from '../../lambdas/core/cost/requests';
import { reportKeys, type RunReport } from '../../lambdas/core/report';
import { runLedger } from '../../lambdas/core/run-ledger';
import { STAGE_NAMES } from '../../lambdas/core/stages/specs';
import { Naming } from '../../lib/naming';
import { dynamoTable } from '../../lambdas/core/state/dynamo-table';
import { uploadBlob, uploadDirectoryMarker, type BlobSpec } from '../../lambdas/local/seed';
import { startBox, type Box, type InvokeResult } from '../helpers/box/index';
import { runCli } from '../helpers/cli';
import { expectExactCopies, expectNothingLeftOver, head, listKeys, newContainer } from '../helpers/stores';

const MiB = 1024 * 1024;
const LARGE = 8 * MiB; // blobs this size or larger take the multipart path
const PART = 5 * MiB;
const PREFIX = 'bx';

// The signature check moto_iam.py puts in front of moto accepts these (moto's own rejects +, % and non-ASCII keys).
const NAMES = ['plain.txt', 'with space.txt', 'plus+sign.txt', 'percent%25literal%zz.txt', 'hash#and?question.txt', "quote'single.txt", 'ünïcödé/日本語/😀.txt', 'a/b/c/d/deep.txt'];

const COPIED: BlobSpec[] = [
  ...NAMES.map((name, i) => ({ name: `names/${name}`, size: 10 + i })),
  { name: 'size/zero', size: 0 },
  { name: 'size/one', size: 1 },
  { name: 'size/below-threshold', size: LARGE - 1 },
  { name: 'size/at-threshold', size: LARGE, singleShot: false },
  { name: 'size/three-parts-less-a-byte', size: 3 * PART - 1, singleShot: false },
  // Single-shot: Azure keeps a Content-MD5, which the large path checks the finished object against.
  { name: 'size/large-with-md5', size: LARGE + 12_345, singleShot: true },
  { name: 'kind/page.vhd', size: 512 * 40, kind: 'page' },
  { name: 'kind/append.log', size: 70_001, kind: 'append' },
  { name: 'kind/page-large.vhd', size: 2 * PART + 512, kind: 'page' },
  {
    name: 'headers/large.html', size: LARGE + 7, singleShot: false,
    headers: { blobContentType: 'text/html; charset=utf-8', blobCacheControl: 'public, max-age=600' },
    metadata: { owner: 'finance' }, tags: { project: 'migration' },
  },
];
const ARCHIVED: BlobSpec = { name: 'tier/archived.bin', size: 100, tier: 'Archive' };
const TOO_LONG: BlobSpec = { name: `long/${'x'.repeat(1020)}`, size: 5 }; // 1025 bytes: S3 cannot hold it

/** A run's report, as the deployed functions wrote it to the bucket. */
async function reportOf(box: Box, runId: string): Promise<RunReport> {
  const out = await box.s3().send(new GetObjectCommand({ Bucket: box.outputs.BucketName, Key: reportKeys(runId).json }));
  return JSON.parse(await out.Body!.transformToString()) as RunReport;
}

/** The run state the deployed functions keep, read through the same code, with the box's admin. */
function ledgerOf(box: Box) {
  return runLedger(dynamoTable(box.outputs.RunTable, box.dynamodb()));
}

/** Seed a fresh container, point the secret at it, and start a run. */
async function startRun(box: Box, blobs: BlobSpec[]) {
  const container = await newContainer();
  await Promise.all(blobs.map((spec) => uploadBlob(container, spec)));
  const { azurite } = inject('emulators');
  await box.putSecret({ connectionstring: azurite.connectionString, container: container.containerName, isactive: 'True', begindate: '' });
  const started = await box.invoke(`${PREFIX}-lambda01-qualify`, {});
  return { container, started, runId: (started.Payload as { runId: string }).runId };
}

describe('the pipeline in a box: the deployed functions copy a container under their own IAM policies', () => {
  let box: Box;
  let container: ContainerClient;
  let started: InvokeResult;
  let client: S3Client;
  let bucket: string;
  let deniedDuringRun: number;
  let second: InvokeResult;

  beforeAll(async () => {
    const seeded = (async () => {
      const c = await newContainer();
      await Promise.all([...COPIED, ARCHIVED, TOO_LONG].map((spec) => uploadBlob(c, spec)));
      await uploadDirectoryMarker(c, 'names');
      return c;
    })();
    [box, container] = await Promise.all([
      startBox({
        context: { prefix: PREFIX, largeBlobBytes: LARGE, partBytes: PART, schedule: 'off' },
        // Short timeouts and visibility, so a killed invocation's message is back in seconds, not 90 minutes. qualify
        // is fed by no queue: it keeps a minute, for a stalled run's report on a busy machine.
        functionTimeoutSeconds: Object.fromEntries([...STAGE_NAMES.map((s) => new Naming(PREFIX).functionName(s)), `${PREFIX}-redrive`]
          .map((name) => [name, name.endsWith('-qualify') ? 60 : 10])),
        visibilityTimeoutSeconds: 10,
        asyncRetryDelaysMs: [300, 600],
        // A failed message's next tries within seconds; a run stalls after 3 s without progress; the secret is read
        // afresh by each invocation (a test points it at another container between runs).
        environment: { AZS3COPY_RETRY_DELAYS_SECONDS: '1,1,1,1,1', AZS3COPY_STALL_AFTER_SECONDS: '3', AZS3COPY_CONFIG_TTL_SECONDS: '0' },
      }),
      seeded,
    ]);
    const { azurite } = inject('emulators');
    await box.putSecret({ connectionstring: azurite.connectionString, container: container.containerName, isactive: 'True', begindate: '' });
    client = box.s3();
    bucket = box.outputs.BucketName;
    started = await box.invoke(`${PREFIX}-lambda01-qualify`, {});
    // A second start while the first run goes: one run at a time.
    second = await box.invoke(`${PREFIX}-lambda01-qualify`, {});
    await box.idle({ timeoutMs: 120_000 });
    deniedDuringRun = box.denials.length;
  }, 240_000);

  afterAll(async () => {
    await box?.stop();
  });

  it('starts a run when qualify is invoked with {}, and refuses a second start while it goes', () => {
    expect(started.FunctionError, JSON.stringify(started.Payload)).toBeUndefined();
    expect(started.Payload).toMatchObject({ started: true, settings: { bucket, largeBlobBytes: LARGE, partBytes: PART } });
    const runId = (started.Payload as { runId: string }).runId;
    expect(second.Payload).toEqual({
      started: false, runId, reason: expect.stringMatching(new RegExp(`^run ${runId} of this pipeline is still in progress \\(started .*\\): not starting another$`)),
    });
  });

  it('writes the exact bytes of every blob under its exact name', async () => {
    const keys = (await listKeys(client, bucket)).filter((k) => !k.startsWith(STATE_PREFIX));
    expect(keys.sort(), box.report()).toEqual(COPIED.map((b) => b.name).sort());
    await expectExactCopies(client, bucket, COPIED);
  });

  it('ends the run on its own, counted exactly in the run table, with its report in the bucket naming every blob not copied', async () => {
    const runId = (started.Payload as { runId: string }).runId;
    const run = await ledgerOf(box).getRun(runId);
    expect(run).toMatchObject({
      state: 'complete', listingDone: true, copied: COPIED.length, skipped: 2, failed: 1, unchanged: 0,
      routed: COPIED.length + 3, settled: COPIED.length + 3, bytesCopied: COPIED.reduce((n, b) => n + b.size, 0),
    });
    const report = await reportOf(box, runId);
    expect(report.copied).toEqual(COPIED.map((b) => b.name).sort());
    expect(report.skipped).toEqual([
      { name: 'names', reason: expect.stringMatching(/directory marker/) },
      { name: ARCHIVED.name, reason: expect.stringMatching(/^archived/) },
    ]);
    expect(report.failed).toEqual([{ name: TOO_LONG.name, reason: expect.stringMatching(/1025 bytes.*1024/) }]);
    const html = await box.s3().send(new GetObjectCommand({ Bucket: bucket, Key: reportKeys(runId).html }));
    expect(await html.Body!.transformToString()).toContain('<td class="name">long/xxxx');
    // azs3copy status finds the deployed run from the bucket, through the pointer beside its report.
    const status = await runCli(['status', '--bucket', bucket, '--json'], {
      AWS_ENDPOINT_URL: box.endpoint, AWS_REGION: box.region,
      AWS_ACCESS_KEY_ID: box.admin.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: box.admin.credentials.secretAccessKey,
    });
    expect(JSON.parse(status.stdout), status.stderr).toMatchObject({ runId, state: 'complete', copied: COPIED.length, failed: 1, skipped: 2, etaSeconds: 0 });
  });

  it('carries the headers, metadata, tags and source identity of a multipart copy', async () => {
    const spec = COPIED.find((b) => b.name === 'headers/large.html')!;
    const object = await head(client, bucket, spec.name);
    const props = await container.getBlobClient(spec.name).getProperties();
    expect(object).toMatchObject({ ContentType: 'text/html; charset=utf-8', CacheControl: 'public, max-age=600' });
    expect(object.Metadata).toEqual({
      owner: 'finance',
      [SOURCE_META.etag]: props.etag,
      [SOURCE_META.lastModified]: props.lastModified!.toISOString(),
      [SOURCE_META.size]: String(spec.size),
    });
    const tags = await client.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: spec.name }));
    expect(tags.TagSet).toEqual([{ Key: 'project', Value: 'migration' }]);
  });

  it('leaves no upload open, no state, no message in any queue; no invocation failed and nothing was denied', async () => {
    await expectNothingLeftOver(client, bucket);
    const queues = box.resources.filter((r) => r.type === 'AWS::SQS::Queue');
    expect(queues.length).toBeGreaterThan(0);
    for (const queue of queues) {
      const { Attributes } = await box.sqs().send(new GetQueueAttributesCommand({ QueueUrl: queue.ref, AttributeNames: ['ApproximateNumberOfMessages'] }));
      expect(Attributes?.ApproximateNumberOfMessages, queue.name).toBe('0');
    }
    const stats = box.stats();
    for (const [name, s] of Object.entries(stats)) expect({ name, failures: s.failures, timeouts: s.timeouts }, box.logText(name, 60)).toEqual({ name, failures: 0, timeouts: 0 });
    const parts = COPIED.filter((b) => b.size >= LARGE).reduce((n, b) => n + Math.ceil(b.size / PART), 0);
    expect(stats[`${PREFIX}-lambda05-parter`].invocations).toBeGreaterThanOrEqual(parts);
    expect(box.problems).toEqual([]);
    expect(box.denials.slice(0, deniedDuringRun)).toEqual([]);
  });

  describe('a late duplicate delivery (SNS and Lambda deliver at least once)', () => {
    const parter = `${PREFIX}-lambda05-parter`;
    let denied: { user: string; action: string; resource: string }[];
    let failures: number;
    let lastError: string | undefined;

    beforeAll(async () => {
      // Deliver one of the run's part messages again, after its upload completed, as SNS may.
      const first = box.invocations(parter).find((i) => i.ok)!;
      const before = { denials: box.denials.length, invocations: box.invocations(parter).length };
      box.invokeAsync(parter, first.event);
      await box.idle({ timeoutMs: 30_000 });
      denied = box.denials.slice(before.denials).map(({ user, action, resource }) => ({ user, action, resource }));
      const after = box.invocations(parter).slice(before.invocations);
      failures = after.filter((i) => !i.ok).length;
      lastError = after.at(-1)?.error?.errorMessage;
      deniedDuringRun = box.denials.length;
    }, 60_000);

    // A part that meets a 5xx makes uploadPart ask ListParts whether the upload still exists (moto answers a
    // part of a completed upload with a 500; S3 with NoSuchUpload; any 503 SlowDown would do the same). Before the
    // grants followed the code, the parter's role lacked s3:ListMultipartUploadParts and this was AccessDenied.
    it('is dropped quietly by the parter: the multipart capability grants the ListParts it takes', () => {
      expect({ denied, failures, lastError }).toEqual({ denied: [], failures: 0, lastError: undefined });
    });
  });

  describe('the roles grant what the template says and nothing more', () => {
    it('gives each function a user that may do only what its role allows', async () => {
      const bucket = box.outputs.BucketName;
      const downloadTopic = box.resource(`${PREFIX}-to-download`).ref!;
      const asDownload = new S3Client({ ...box.configOf(`${PREFIX}-lambda03-download`), forcePathStyle: true });
      const asQualify = new SNSClient(box.configOf(`${PREFIX}-lambda01-qualify`));
      try {
        await asDownload.send(new PutObjectCommand({ Bucket: bucket, Key: 'allowed.txt', Body: 'x' }));
        // download writes whole objects; multipart uploads are not its to touch.
        await expect(asDownload.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: 'allowed.txt', UploadId: 'x' }))).rejects.toMatchObject({ name: 'AccessDenied' });
        await expect(asDownload.send(new ListBucketsCommand({}))).rejects.toMatchObject({ name: 'AccessDenied' });
        await expect(asQualify.send(new PublishCommand({ TopicArn: downloadTopic, Message: '{}' }))).rejects.toMatchObject({
          name: 'AuthorizationErrorException',
          message: expect.stringContaining(`sns:Publish on resource: ${downloadTopic}`),
        });
      } finally {
        asDownload.destroy();
        asQualify.destroy();
      }
      // moto reports each denial on its output: the last may arrive after the request's answer.
      const deniedHere = () => box.denials.slice(deniedDuringRun).map((d) => [d.user, d.action, d.resource]);
      await vi.waitFor(() => expect(deniedHere().length).toBeGreaterThanOrEqual(3), { timeout: 15_000, interval: 100 });
      expect(deniedHere()).toEqual([
        [box.userArnOf(`${PREFIX}-lambda03-download`), 's3:AbortMultipartUpload', `arn:aws:s3:::${bucket}/allowed.txt`],
        [box.userArnOf(`${PREFIX}-lambda03-download`), 's3:ListAllMyBuckets', 'arn:aws:s3:::*'],
        [box.userArnOf(`${PREFIX}-lambda01-qualify`), 'sns:Publish', downloadTopic],
      ]);
    });

    it('fails a function with AccessDenied when its role lacks the grant: redrive on a queue it was not given', async () => {
      const { QueueUrl } = await box.sqs().send(new CreateQueueCommand({ QueueName: 'not-a-dead-letter-queue' }));
      await box.sqs().send(new SendMessageCommand({ QueueUrl, MessageBody: '{}' }));
      const answer = await box.invoke(`${PREFIX}-redrive`, { queueUrl: QueueUrl });
      expect(answer.FunctionError).toBe('Unhandled');
      expect(answer.Payload).toMatchObject({ errorType: 'AccessDenied', errorMessage: expect.stringMatching(/not authorized to perform: sqs:ReceiveMessage on resource: arn:aws:sqs:.*:not-a-dead-letter-queue/) });
    });

    it('refuses a request signed with a wrong secret key', async () => {
      const config = box.configOf(`${PREFIX}-lambda01-qualify`);
      const forged = new SQSClient({ ...config, credentials: { ...config.credentials, secretAccessKey: 'wrong' }, maxAttempts: 1 });
      try {
        const queue = box.resources.find((r) => r.type === 'AWS::SQS::Queue')!;
        await expect(forged.send(new GetQueueAttributesCommand({ QueueUrl: queue.ref, AttributeNames: ['All'] })))
          .rejects.toMatchObject({ name: 'SignatureDoesNotMatch' });
      } finally {
        forged.destroy();
      }
    });
  });

  describe('a run whose parter is killed part way', () => {
    const parter = `${PREFIX}-lambda05-parter`;
    const blobs: BlobSpec[] = [1, 2, 3].map((i) => ({ name: `crash/${i}.bin`, size: 3 * PART + i, singleShot: false }));
    let runId: string;
    let killed = 0;

    beforeAll(async () => {
      ({ runId } = await startRun(box, blobs));
      // As soon as a parter is at work, kill it, as a crash or Lambda's timeout would; its message comes back.
      const deadline = Date.now() + 60_000;
      while (killed === 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
        killed = box.crash(parter);
      }
      await box.idle({ timeoutMs: 150_000 });
    }, 240_000);

    it('resumes and ends complete, once, with every blob copied and counted once', async () => {
      expect(killed).toBeGreaterThan(0);
      expect(box.invocations(parter).some((i) => !i.ok && i.error?.errorType === 'Runtime.ExitError')).toBe(true);
      const run = await ledgerOf(box).getRun(runId);
      expect(run).toMatchObject({ state: 'complete', copied: 3, failed: 0, skipped: 0, routed: 3, settled: 3 });
      const report = await reportOf(box, runId);
      expect(report).toMatchObject({ runId, state: 'complete', copied: blobs.map((b) => b.name), failed: [], outstanding: [] });
      await expectExactCopies(client, bucket, blobs);
    });
  });

  describe('a dry run, then the copy it planned', () => {
    const BLOBS: BlobSpec[] = [
      ...[1, 2, 3, 4].map((i) => ({ name: `planned/small-${i}.txt`, size: 1000 * i })),
      { name: 'planned/large.bin', size: 2 * PART + 3, singleShot: false },
    ];
    let plan: PlanReport;
    let planRunId: string;
    let report: RunReport;
    let copiedKeys: string[];
    /** What the run's item holds once every invocation has ended (each adds its counts at its end). */
    let final: RequestCounts;

    beforeAll(async () => {
      const container = await newContainer();
      await Promise.all(BLOBS.map((spec) => uploadBlob(container, spec)));
      const { azurite } = inject('emulators');
      const secret = { connectionstring: azurite.connectionString, container: container.containerName, isactive: 'True', begindate: '' };
      await box.putSecret({ ...secret, dryrun: 'true' });
      planRunId = ((await box.invoke(`${PREFIX}-lambda01-qualify`, {})).Payload as { runId: string }).runId;
      await box.idle({ timeoutMs: 120_000 });
      plan = (await reportOf(box, planRunId)) as unknown as PlanReport;
      copiedKeys = (await listKeys(client, bucket)).filter((k) => k.startsWith('planned/'));
      await box.putSecret(secret);
      const runId = ((await box.invoke(`${PREFIX}-lambda01-qualify`, {})).Payload as { runId: string }).runId;
      await box.idle({ timeoutMs: 120_000 });
      report = await reportOf(box, runId);
      final = countsFromAttributes((await ledgerOf(box).getRun(runId)) as unknown as Record<string, unknown>);
    }, 240_000);

    it('lists and compares, copies nothing, ends complete, and writes its plan to the run\'s report location', async () => {
      expect(plan).toMatchObject({ kind: 'plan', runId: planRunId, copy: BLOBS.map((b) => b.name).sort(), objects: { single: 4, multipart: 1, parts: 3 } });
      expect(plan.prices.region).toBe(box.region);
      expect(copiedKeys).toEqual([]);
      expect((await ledgerOf(box).getRun(planRunId))?.state).toBe('complete');
    });

    it('the copy that follows counts what it did in the run table, and its report puts it beside the plan', () => {
      const costs = report.costs!;
      expect(report.copied).toEqual(plan.copy);
      expect(costs.predicted?.from).toBe(`dry run ${planRunId}`);
      const made = costs.actual.requests;
      console.info(`deployed, predicted vs made: ${JSON.stringify({ predicted: plan.requests, made })}`);
      // The report is built by the invocation that ends the run, which counts itself first; one still finishing
      // then (a parter after its last publish, say) adds its share to the run's item a moment later. So the run's
      // item, read once the pipeline is idle, holds every request exactly; the report, at most as many.
      expect(final.s3).toMatchObject({ UploadPart: 3, CreateMultipartUpload: 1, CompleteMultipartUpload: 1 });
      expect(final.azure).toMatchObject({ GetBlob: 4 + 3 });
      expect(final.s3.PutObject).toBeGreaterThanOrEqual(4);
      for (const [service, ops] of Object.entries(made)) {
        for (const [op, n] of Object.entries(ops)) expect({ service, op, n, atMost: n <= (final[service]?.[op] ?? 0) + 1e-9 }).toMatchObject({ atMost: true });
      }
      expect(made.s3).toMatchObject({ CreateMultipartUpload: 1, CompleteMultipartUpload: 1 });
      expect(made.lambda.Invocations).toBeGreaterThanOrEqual(1);
      expect(final.lambda.Invocations).toBeGreaterThanOrEqual(1 + 1 + 1 + 1 + 3 + 1);
      expect(made.dynamodb.UpdateItem).toBeGreaterThan(0);
      expect(made.sns.PublishBatch).toBeGreaterThan(0);
      expect(costs.actual.cost.totalUsd).toBeGreaterThan(0);
    });
  });

  describe('a run whose messages end in a dead-letter queue', () => {
    const parter = `${PREFIX}-lambda05-parter`;
    const user = () => box.userArnOf(parter).split('/').pop()!;
    const saved: { name: string; document: string }[] = [];
    let runId: string;
    let watched: InvokeResult;

    beforeAll(async () => {
      // The parter loses its write to the bucket (its queue it keeps): every part fails, five times, and waits in
      // its dead-letter queue.
      const { PolicyNames = [] } = await box.iam().send(new ListUserPoliciesCommand({ UserName: user() }));
      for (const name of PolicyNames) {
        const { PolicyDocument } = await box.iam().send(new GetUserPolicyCommand({ UserName: user(), PolicyName: name }));
        const document = decodeURIComponent(PolicyDocument!);
        saved.push({ name, document });
        const parsed = JSON.parse(document) as { Statement: { Action: string | string[] }[] };
        const kept = parsed.Statement.filter((st) => ![st.Action].flat().includes('s3:PutObject'));
        await box.iam().send(new PutUserPolicyCommand({ UserName: user(), PolicyName: name, PolicyDocument: JSON.stringify({ ...parsed, Statement: kept }) }));
      }
      ({ runId } = await startRun(box, [{ name: 'stuck/big.bin', size: 2 * PART, singleShot: false }]));
      await box.idle({ timeoutMs: 120_000 });
      // No progress for its stall time (3 s here): the frequent check marks it stalled.
      await new Promise((r) => setTimeout(r, 3_500));
      watched = await box.invoke(`${PREFIX}-lambda01-qualify`, { watch: true });
    }, 240_000);

    afterAll(async () => {
      for (const { name, document } of saved) await box.iam().send(new PutUserPolicyCommand({ UserName: user(), PolicyName: name, PolicyDocument: document }));
    });

    it('is marked stalled, and its report names the blob and the dead-letter queue its message waits in', async () => {
      expect(watched.Payload).toEqual({ watched: true, runId, state: 'stalled' });
      const report = await reportOf(box, runId);
      expect(report).toMatchObject({ runId, state: 'stalled', copied: [], failed: [], stalledReason: expect.stringMatching(/^no progress for (\d+m )?\d+s \(stall time 3s\) with blobs outstanding$/) });
      expect(report.outstanding).toEqual([{
        name: 'stuck/big.bin',
        where: `its message is in the dead-letter queue ${PREFIX}-lambda05-parter-failed: fix the cause, then redrive that queue`,
      }]);
      expect((await ledgerOf(box).getRun(runId))?.state).toBe('stalled');
    });
  });

});
