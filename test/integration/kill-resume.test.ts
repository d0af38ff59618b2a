/**
 * Stop the command (SIGKILL: no chance to tidy up) in the middle of a copy with
 * large blobs in flight, then run it again. The second run copies only what the
 * first did not finish: unchanged objects are left alone, an upload with a manifest
 * is resumed by sending only its missing parts, and no upload is left open.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetObjectCommand, ListPartsCommand } from '@aws-sdk/client-s3';
import type { ContainerClient } from '@azure/storage-blob';
import { STATE_PREFIX } from '../../lambdas/core/keys';
import { partCount } from '../../lambdas/core/plan';
import { manifestKey, type UploadManifest } from '../../lambdas/core/uploads';
import { uploadBlob, type BlobSpec } from '../../lambdas/local/seed';
import { startCli } from '../helpers/cli';
import { startFaultProxy, type FaultProxy, type ProxiedRequest } from '../helpers/fault-proxy';
import { emulators, expectExactCopies, expectNothingLeftOver, listKeys, newBucket, newContainer, openUploads, s3 } from '../helpers/stores';

const MiB = 1024 * 1024;
const PART = 5 * MiB;
const SMALL: BlobSpec[] = Array.from({ length: 24 }, (_, i) => ({ name: `small/${String(i).padStart(2, '0')}.bin`, size: 20_000 + i * 9_973 }));
const LARGE: BlobSpec[] = [1, 2, 3].map((i) => ({ name: `large/${i}.bin`, size: 5 * PART - 1000 * i, singleShot: false }));
const CORPUS = [...SMALL, ...LARGE];

interface Snapshot {
  objects: Set<string>;
  /** Large blobs with a manifest naming a live upload: the parts that upload holds. */
  resumable: Map<string, number[]>;
  openUploads: number;
  manifests: number;
}

/** Requests per kind and key, as the store sees them. */
function tally(bucket: string) {
  const counts = new Map<string, number>();
  const add = (what: string) => counts.set(what, (counts.get(what) ?? 0) + 1);
  return {
    count: (what: string) => counts.get(what) ?? 0,
    onRequest(request: ProxiedRequest) {
      const key = request.decodedPath.slice(bucket.length + 2);
      if (request.method === 'POST' && request.query.has('uploads')) add(`create ${key}`);
      else if (request.method === 'PUT' && request.query.has('partNumber')) add(`part ${key}`);
      else if (request.method === 'PUT' && !key.startsWith(STATE_PREFIX)) add(`put ${key}`);
    },
  };
}

describe('a copy stopped part way and run again', () => {
  const client = s3();
  let container: ContainerClient;
  let bucket: string;
  let slow: FaultProxy;
  let counting: FaultProxy;
  let afterKill: Snapshot;
  let second: Awaited<ReturnType<typeof startCli>['done']>;
  let report: { copied: string[]; unchanged: number; failed: unknown[] };
  const requests = { count: (_: string) => 0 } as ReturnType<typeof tally>;

  const args = (endpoint: string) => [
    'copy', '--container', container.containerName, '--bucket', bucket, '--s3-endpoint', endpoint,
    '--large-blob-mib', '6', '--part-mib', '5', '--quiet',
  ];

  async function snapshot(): Promise<Snapshot> {
    const keys = await listKeys(client, bucket);
    const uploads = await openUploads(client, bucket);
    const resumable = new Map<string, number[]>();
    for (const spec of LARGE) {
      if (!keys.includes(manifestKey(spec.name))) continue;
      const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: manifestKey(spec.name) }));
      const manifest = JSON.parse(await out.Body!.transformToString()) as UploadManifest;
      if (!uploads.some((u) => u.UploadId === manifest.uploadId)) continue;
      const parts = await client.send(new ListPartsCommand({ Bucket: bucket, Key: spec.name, UploadId: manifest.uploadId }));
      resumable.set(spec.name, (parts.Parts ?? []).map((p) => p.PartNumber!));
    }
    return {
      objects: new Set(keys.filter((k) => !k.startsWith(STATE_PREFIX))),
      resumable,
      openUploads: uploads.length,
      manifests: keys.filter((k) => k.startsWith(`${STATE_PREFIX}uploads/`)).length,
    };
  }

  /** Some small blobs copied and a large one with some but not all of its parts in. */
  async function partWay(): Promise<boolean> {
    const keys = await listKeys(client, bucket);
    if (keys.filter((k) => k.startsWith('small/')).length < 3) return false;
    for (const upload of await openUploads(client, bucket)) {
      const parts = await client.send(new ListPartsCommand({ Bucket: bucket, Key: upload.Key, UploadId: upload.UploadId }));
      const have = parts.Parts?.length ?? 0;
      if (have > 0 && have < 5) return true;
    }
    return false;
  }

  beforeAll(async () => {
    container = await newContainer();
    bucket = await newBucket(client);
    await Promise.all(CORPUS.map((spec) => uploadBlob(container, spec)));
    const { azurite, s3Endpoint } = emulators();
    const env = { AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString };

    // The first run writes through a slow store, so that it can be caught part way.
    slow = await startFaultProxy({
      target: s3Endpoint, service: 's3', slowMs: [100, 2500],
      rule: (r) => (r.method === 'PUT' ? 'slow' : 'pass'),
    });
    const first = startCli(args(slow.endpoint), env);
    const deadline = Date.now() + 60_000;
    while (!(await partWay())) {
      if (Date.now() > deadline) throw new Error('the first run never reached a state worth stopping in');
      await new Promise((r) => setTimeout(r, 50));
    }
    first.child.kill('SIGKILL');
    const killed = await first.done;
    expect(killed.signal).toBe('SIGKILL');
    await slow.stop();
    // Let the store finish any request it had whole before the kill.
    await new Promise((r) => setTimeout(r, 500));
    afterKill = await snapshot();

    const counted = tally(bucket);
    Object.assign(requests, counted);
    counting = await startFaultProxy({ target: s3Endpoint, service: 's3', onRequest: counted.onRequest });
    const reportFile = join(mkdtempSync(join(tmpdir(), 'azs3copy-kill-')), 'report.json');
    second = await startCli([...args(counting.endpoint), '--report', reportFile], env).done;
    report = JSON.parse(readFileSync(reportFile, 'utf8'));
  });

  afterAll(async () => {
    console.info(`kill/resume: after the kill ${afterKill?.objects.size} of ${CORPUS.length} objects, resumable uploads ${JSON.stringify([...(afterKill?.resumable ?? [])])}, ${afterKill?.openUploads} open uploads, ${afterKill?.manifests} manifests; second run exit ${second?.code}, copied ${report?.copied.length}, unchanged ${report?.unchanged}`);
    await Promise.all([slow?.stop(), counting?.stop()]);
  });

  it('was stopped with work done and work left', () => {
    expect(afterKill.objects.size).toBeGreaterThan(0);
    expect(afterKill.objects.size).toBeLessThan(CORPUS.length);
    expect(afterKill.resumable.size).toBeGreaterThan(0);
  });

  it('finishes the rest in the second run, reporting what it found already done as unchanged', () => {
    expect(second.code).toBe(0);
    expect(report.failed).toEqual([]);
    expect(report.copied).toEqual(CORPUS.map((b) => b.name).filter((n) => !afterKill.objects.has(n)).sort());
    expect(report.unchanged).toBe(afterKill.objects.size);
  });

  it('writes no object again that the first run had finished', () => {
    for (const spec of SMALL) {
      expect({ name: spec.name, puts: requests.count(`put ${spec.name}`) }).toEqual({ name: spec.name, puts: afterKill.objects.has(spec.name) ? 0 : 1 });
    }
  });

  it('resumes each upload that has a manifest, sending only its missing parts', () => {
    for (const spec of LARGE) {
      const parts = partCount(spec.size, PART);
      const had = afterKill.resumable.get(spec.name);
      const expected = afterKill.objects.has(spec.name)
        ? { creates: 0, parts: 0 }
        : had ? { creates: 0, parts: parts - had.length } : { creates: 1, parts };
      expect({ name: spec.name, creates: requests.count(`create ${spec.name}`), parts: requests.count(`part ${spec.name}`) })
        .toEqual({ name: spec.name, ...expected });
    }
  });

  it('ends with every blob byte for byte, no upload open and no manifest left', async () => {
    await expectExactCopies(client, bucket, CORPUS);
    await expectNothingLeftOver(client, bucket);
  });
});
