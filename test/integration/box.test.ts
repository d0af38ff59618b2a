/**
 * The pipeline in a box: the stack as synthesized, deployed into a moto that
 * enforces IAM, each function run from its bundle and layers with its own role's
 * policies, fed by SNS as AWS feeds it. A container goes end to end through the
 * deployed functions; then the roles are held to what they do not grant.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { GetObjectTaggingCommand, ListBucketsCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateQueueCommand, GetQueueAttributesCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import type { ContainerClient } from '@azure/storage-blob';
import { SOURCE_META } from '../../lambdas/core/attributes';
import { STATE_PREFIX } from '../../lambdas/core/keys';
import { uploadBlob, uploadDirectoryMarker, type BlobSpec } from '../../lambdas/local/seed';
import { startBox, type Box, type InvokeResult } from '../helpers/box/index';
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

/** The functions' outcome lines (`blob copied` / `skipped` / `failed`), one per blob, the last word winning. */
function outcomes(box: Box): Map<string, { status: string; reason?: string }> {
  const byName = new Map<string, { status: string; reason?: string }>();
  for (const line of box.logs()) {
    if (line.stream !== 'stdout' || !line.text.startsWith('{')) continue;
    const entry = JSON.parse(line.text) as { message?: string; name?: string; outcome?: string; reason?: string };
    if (entry.message?.startsWith('blob ') && entry.name) byName.set(entry.name, { status: entry.outcome!, reason: entry.reason });
  }
  return byName;
}

describe('the pipeline in a box: the deployed functions copy a container under their own IAM policies', () => {
  let box: Box;
  let container: ContainerClient;
  let started: InvokeResult;
  let client: S3Client;
  let bucket: string;
  let deniedDuringRun: number;

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
        functionTimeoutSeconds: 60,
        asyncRetryDelaysMs: [300, 600],
      }),
      seeded,
    ]);
    const { azurite } = inject('emulators');
    await box.putSecret({ connectionstring: azurite.connectionString, container: container.containerName, isactive: 'True', begindate: '' });
    client = box.s3();
    bucket = box.outputs.BucketName;
    started = await box.invoke(`${PREFIX}-lambda01-qualify`, {});
    await box.idle({ timeoutMs: 90_000 });
    deniedDuringRun = box.denials.length;
  }, 180_000);

  afterAll(async () => {
    await box?.stop();
  });

  it('starts a run when qualify is invoked with {}', () => {
    expect(started.FunctionError, JSON.stringify(started.Payload)).toBeUndefined();
    expect(started.Payload).toMatchObject({ started: true, settings: { bucket, largeBlobBytes: LARGE, partBytes: PART } });
  });

  it('writes the exact bytes of every blob under its exact name', async () => {
    const keys = (await listKeys(client, bucket)).filter((k) => !k.startsWith(STATE_PREFIX));
    expect(keys.sort(), box.report()).toEqual(COPIED.map((b) => b.name).sort());
    await expectExactCopies(client, bucket, COPIED);
  });

  it('reports each blob it did not copy, with the reason, in the functions\' logs', () => {
    const seen = outcomes(box);
    for (const spec of COPIED) expect(seen.get(spec.name)?.status, spec.name).toBe('copied');
    expect(seen.get(ARCHIVED.name)).toEqual({ status: 'skipped', reason: expect.stringMatching(/^archived/) });
    expect(seen.get('names')).toEqual({ status: 'skipped', reason: expect.stringMatching(/directory marker/) });
    expect(seen.get(TOO_LONG.name)).toEqual({ status: 'failed', reason: expect.stringMatching(/1025 bytes.*1024/) });
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

    // Product bug (lib/stage-deployments.ts, parter): a part that meets a 5xx makes s3-sink's uploadPart ask
    // ListParts whether the upload still exists, and the parter's role has no s3:ListMultipartUploadParts. The
    // AccessDenied replaces the 5xx: the part is not retried, the invocation fails and, after Lambda's retries,
    // is dead-lettered. moto answers a part of a completed upload with a 500 (S3 with 404 NoSuchUpload), so here
    // a late duplicate shows it; in AWS any 500 InternalError or 503 SlowDown on UploadPart will.
    it.fails('is dropped quietly by the parter (fails until the parter may s3:ListMultipartUploadParts)', () => {
      expect({ denied, failures }).toEqual({ denied: [], failures: 0 });
    });

    it('shows what the parter was denied', () => {
      expect(denied).toContainEqual({
        user: box.userArnOf(parter),
        action: 's3:ListMultipartUploadParts',
        resource: expect.stringMatching(new RegExp(`^arn:aws:s3:::${box.outputs.BucketName}/`)),
      });
      expect(failures).toBeGreaterThan(0);
      expect(lastError).toMatch(/not authorized to perform: s3:ListMultipartUploadParts/);
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
        await expect(asDownload.send(new ListObjectsV2Command({ Bucket: bucket }))).rejects.toMatchObject({ name: 'AccessDenied' });
        await expect(asDownload.send(new ListBucketsCommand({}))).rejects.toMatchObject({ name: 'AccessDenied' });
        await expect(asQualify.send(new PublishCommand({ TopicArn: downloadTopic, Message: '{}' }))).rejects.toMatchObject({
          name: 'AuthorizationErrorException',
          message: expect.stringContaining(`sns:Publish on resource: ${downloadTopic}`),
        });
      } finally {
        asDownload.destroy();
        asQualify.destroy();
      }
      expect(box.denials.slice(deniedDuringRun).map((d) => [d.user, d.action, d.resource])).toEqual([
        [box.userArnOf(`${PREFIX}-lambda03-download`), 's3:ListBucket', `arn:aws:s3:::${bucket}`],
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
});
