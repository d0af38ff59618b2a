/**
 * Multipart uploads nobody knows about, made on purpose: an answer lost on the way
 * back from CreateMultipartUpload (S3 made an upload whose id we never learned),
 * from CompleteMultipartUpload (the retry finds no upload: moto says NoSuchUpload),
 * from the manifest's conditional write (the retry finds the manifest there), and
 * an upload left by a run stopped before it wrote its manifest. Each blob is still
 * copied whole and every upload ends completed or aborted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateMultipartUploadCommand, ListPartsCommand } from '@aws-sdk/client-s3';
import type { ContainerClient } from '@azure/storage-blob';
import { STATE_PREFIX } from '../../lambdas/core/keys';
import type { LocalRunResult } from '../../lambdas/local/runner';
import { manifestKey } from '../../lambdas/core/uploads';
import { uploadBlob, type BlobSpec } from '../../lambdas/local/seed';
import { startFaultProxy, type FaultProxy, type ProxiedRequest } from '../helpers/fault-proxy';
import { copyLocally, emulators, expectExactCopies, expectNothingLeftOver, newBucket, newContainer, openUploads, s3 } from '../helpers/stores';

const MiB = 1024 * 1024;
const options = { largeBlobBytes: 6 * MiB, partBytes: 5 * MiB };

const CREATE_LOST: BlobSpec = { name: 'lost/create.bin', size: 10 * MiB + 1, singleShot: false };
const COMPLETE_LOST: BlobSpec = { name: 'lost/complete.bin', size: 10 * MiB + 2, singleShot: true }; // with a Content-MD5
const CLAIM_LOST: BlobSpec = { name: 'lost/claim.bin', size: 10 * MiB + 3, singleShot: false };
const LEFT_BEHIND: BlobSpec = { name: 'stopped/before-claim.bin', size: 10 * MiB + 4, singleShot: false };
const BLOBS = [CREATE_LOST, COMPLETE_LOST, CLAIM_LOST, LEFT_BEHIND];

type Call = 'create' | 'complete' | 'claim';

/** What an S3 request is, for the blobs above (path-style: /bucket/key). */
function callOf(request: ProxiedRequest, bucket: string): { call: Call; key: string } | undefined {
  const key = request.decodedPath.slice(bucket.length + 2);
  if (request.method === 'POST' && request.query.has('uploads')) return { call: 'create', key };
  if (request.method === 'POST' && request.query.has('uploadId')) return { call: 'complete', key };
  if (request.method === 'PUT' && key.startsWith(`${STATE_PREFIX}uploads/`) && !request.query.has('uploadId')) return { call: 'claim', key };
  return undefined;
}

describe('orphaned and half-answered multipart uploads', () => {
  const client = s3();
  let container: ContainerClient;
  let bucket: string;
  let proxy: FaultProxy;
  let result: LocalRunResult;
  const seen = new Map<string, number>();
  let leftBehind: string;

  beforeAll(async () => {
    container = await newContainer();
    bucket = await newBucket(client);
    await Promise.all(BLOBS.map((spec) => uploadBlob(container, spec)));
    // As a run killed between CreateMultipartUpload and writing its manifest leaves it.
    leftBehind = (await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: LEFT_BEHIND.name }))).UploadId!;

    // The first answer to each chosen call is cut after S3 has acted on it.
    const cut = new Map<string, Call>([
      [CREATE_LOST.name, 'create'], [COMPLETE_LOST.name, 'complete'], [manifestKey(CLAIM_LOST.name), 'claim'],
    ]);
    proxy = await startFaultProxy({
      target: emulators().s3Endpoint,
      service: 's3',
      onRequest: (request) => {
        const call = callOf(request, bucket);
        if (call) seen.set(`${call.call} ${call.key}`, (seen.get(`${call.call} ${call.key}`) ?? 0) + 1);
      },
      rule: (request) => {
        const call = callOf(request, bucket);
        if (!call || cut.get(call.key) !== call.call) return undefined;
        cut.delete(call.key);
        return 'resetResponse';
      },
    });
    result = await copyLocally(container, bucket, { ...options, s3Endpoint: proxy.endpoint });
  });

  afterAll(() => proxy?.stop());

  it('lost the answers it was meant to, and the SDK asked again', () => {
    expect(proxy.counts.resetResponse).toBe(3);
    expect(seen.get(`create ${CREATE_LOST.name}`)).toBe(2);
    expect(seen.get(`complete ${COMPLETE_LOST.name}`)).toBeGreaterThanOrEqual(2);
    expect(seen.get(`claim ${manifestKey(CLAIM_LOST.name)}`)).toBe(2);
  });

  it('copies every blob whole and reports each once', async () => {
    expect(result.report.failed).toEqual([]);
    expect(result.report.copied).toEqual(BLOBS.map((b) => b.name).sort());
    await expectExactCopies(client, bucket, BLOBS);
  });

  it('aborts the upload whose id was never learned and the one left by a stopped run', async () => {
    expect(await openUploads(client, bucket)).toEqual([]);
    // The one left behind is gone in particular: S3 no longer knows its id.
    await expect(client.send(new ListPartsCommand({ Bucket: bucket, Key: LEFT_BEHIND.name, UploadId: leftBehind }))).rejects.toMatchObject({ name: 'NoSuchUpload' });
  });

  it('leaves no manifest behind', async () => {
    await expectNothingLeftOver(client, bucket);
  });
});
