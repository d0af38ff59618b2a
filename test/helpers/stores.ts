/**
 * Per-test access to the emulators started by the global setup: a fresh container
 * and bucket for each test, clients for both, and a local copy run against them.
 */
import { randomBytes } from 'node:crypto';
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { expect, inject } from 'vitest';
import type { SourceConfig } from '../../lambdas/core/config';
import { silentLogger } from '../../lambdas/core/log';
import { s3Client } from '../../lambdas/core/stores/s3-sink';
import { useEmulatorAwsCredentials } from '../../lambdas/local/emulators';
import { runLocalCopy, type LocalCopyOptions } from '../../lambdas/local/runner';
import { STATE_PREFIX } from '../../lambdas/core/keys';
import { mapLimit } from '../../lambdas/core/batching';
import { digestOf, patternStream, type BlobSpec } from '../../lambdas/local/seed';

useEmulatorAwsCredentials();

export function emulators() {
  return inject('emulators');
}

export function uniqueName(stem: string): string {
  return `${stem}-${randomBytes(4).toString('hex')}`;
}

export function s3(): S3Client {
  return s3Client({ endpoint: emulators().s3Endpoint });
}

export async function newBucket(client = s3()): Promise<string> {
  const bucket = uniqueName('dest');
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}

export async function newContainer(): Promise<ContainerClient> {
  const container = BlobServiceClient.fromConnectionString(emulators().azurite.connectionString).getContainerClient(uniqueName('src'));
  await container.create();
  return container;
}

export function sourceOf(container: ContainerClient): SourceConfig {
  const { azurite } = emulators();
  return {
    account: azurite.account,
    container: container.containerName,
    blobEndpoint: azurite.endpoint,
    credentials: { kind: 'connection-string', connectionString: azurite.connectionString },
  };
}

export function copyLocally(container: ContainerClient, bucket: string, options: Partial<LocalCopyOptions> = {}) {
  return runLocalCopy({
    source: sourceOf(container),
    bucket,
    s3Endpoint: emulators().s3Endpoint,
    log: silentLogger,
    bus: { retryDelayMs: () => 10 },
    ...options,
  });
}

export async function objectDigest(client: S3Client, bucket: string, key: string) {
  const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return digestOf(out.Body as NodeJS.ReadableStream);
}

export async function head(client: S3Client, bucket: string, key: string) {
  return client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
}

export async function listKeys(client: S3Client, bucket: string, prefix = ''): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    keys.push(...(out.Contents ?? []).map((o) => o.Key!));
    token = out.NextContinuationToken;
  } while (token);
  return keys;
}

/** The copies in the bucket: every key but the pipeline's own state. */
export async function listCopies(client: S3Client, bucket: string, prefix = ''): Promise<string[]> {
  return (await listKeys(client, bucket, prefix)).filter((k) => !k.startsWith(STATE_PREFIX));
}

export async function openUploads(client: S3Client, bucket: string) {
  const out = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  return out.Uploads ?? [];
}

/**
 * Each blob's object holds exactly the bytes the seed wrote for it, under its name. A few at once: one at a time,
 * a thousand small objects took moto's round trips about 9 s; a wrong one still fails the test with its name.
 */
export async function expectExactCopies(client: S3Client, bucket: string, specs: BlobSpec[]): Promise<void> {
  await mapLimit(specs, 4, async (spec) => {
    const [got, want] = await Promise.all([objectDigest(client, bucket, spec.name), digestOf(patternStream(spec.seed ?? spec.name, spec.size))]);
    expect({ name: spec.name, ...got }).toEqual({ name: spec.name, ...want });
  });
}

/**
 * No multipart upload left open, and nothing of one left in the state: no upload manifest, no write probe.
 * (The runs' own state and reports stay, by design.)
 */
export async function expectNothingLeftOver(client: S3Client, bucket: string): Promise<void> {
  expect(await openUploads(client, bucket)).toEqual([]);
  expect(await listKeys(client, bucket, `${STATE_PREFIX}uploads/`)).toEqual([]);
  expect(await listKeys(client, bucket, `${STATE_PREFIX}probe/`)).toEqual([]);
}
