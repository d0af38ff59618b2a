/**
 * The chain under fire: both stores answer 503s and 500s, cut connections in the
 * middle of request and response bodies, and answer slowly, while the bus delivers
 * some messages twice. Everything still arrives byte for byte, exactly once, with
 * no multipart upload or manifest left behind and a report that says so.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerClient } from '@azure/storage-blob';
import type { LocalRunResult } from '../../lambdas/local/runner';
import { uploadBlob, type BlobSpec } from '../../lambdas/local/seed';
import { proxiedConnectionString, startFaultProxy, type FaultProxy } from '../helpers/fault-proxy';
import { copyLocally, emulators, expectExactCopies, expectNothingLeftOver, listCopies, newBucket, newContainer, s3, sourceOf } from '../helpers/stores';

const MiB = 1024 * 1024;
const LARGE = 6 * MiB;
const PART = 5 * MiB;

const CORPUS: BlobSpec[] = [
  ...Array.from({ length: 40 }, (_, i): BlobSpec => ({ name: `small/${String(i).padStart(2, '0')}.bin`, size: i === 0 ? 0 : i * 7_919 })),
  { name: 'boundary/below', size: LARGE - 1 },
  { name: 'boundary/at', size: LARGE, singleShot: false },
  { name: 'boundary/above', size: LARGE + 1, singleShot: false },
  { name: 'boundary/two-parts', size: 2 * PART, singleShot: false },
  { name: 'boundary/two-parts-and-a-byte', size: 2 * PART + 1, singleShot: false },
  // A Content-MD5 makes the recombinator read the finished object back through the faults.
  { name: 'boundary/with-md5', size: LARGE + 4_321, singleShot: true },
  { name: 'large/five-parts.bin', size: 4 * PART + 123_457, singleShot: false },
  { name: 'large/page.vhd', size: 3 * PART + 512 * 7, kind: 'page' },
];

describe('copying through faults in both stores and duplicate deliveries', () => {
  const client = s3();
  let container: ContainerClient;
  let bucket: string;
  let azure: FaultProxy;
  let s3Proxy: FaultProxy;
  let result: LocalRunResult;
  let seconds: number;

  beforeAll(async () => {
    container = await newContainer();
    bucket = await newBucket(client);
    await Promise.all(CORPUS.map((spec) => uploadBlob(container, spec)));
    const { azurite, s3Endpoint } = emulators();
    azure = await startFaultProxy({
      target: azurite.endpoint, service: 'azure', seed: 7,
      rates: { busy: 0.06, internal: 0.03, resetResponse: 0.05, slow: 0.04 },
    });
    s3Proxy = await startFaultProxy({
      target: s3Endpoint, service: 's3', seed: 11,
      rates: { busy: 0.06, internal: 0.03, resetResponse: 0.04, resetRequest: 0.04, slow: 0.04 },
    });
    const started = Date.now();
    const source = sourceOf(container);
    result = await copyLocally(container, bucket, {
      source: {
        ...source,
        blobEndpoint: azure.endpoint,
        credentials: { kind: 'connection-string', connectionString: proxiedConnectionString(azurite.connectionString, azure.endpoint) },
      },
      s3Endpoint: s3Proxy.endpoint,
      largeBlobBytes: LARGE,
      partBytes: PART,
      bus: { duplicateRate: 0.3, seed: 5, retryDelayMs: () => 20 },
    });
    seconds = (Date.now() - started) / 1000;
  });

  afterAll(async () => {
    console.info(`faults: ${seconds}s; azure ${JSON.stringify(azure.counts)}; s3 ${JSON.stringify(s3Proxy.counts)}; bus ${JSON.stringify(result.bus)}`);
    await Promise.all([azure?.stop(), s3Proxy?.stop()]);
  });

  it('injected every kind of fault in both stores, and duplicates on the bus', () => {
    for (const kind of ['busy', 'internal', 'resetResponse', 'slow'] as const) {
      expect({ kind, azure: azure.counts[kind] > 0, s3: s3Proxy.counts[kind] > 0 }).toEqual({ kind, azure: true, s3: true });
    }
    expect(s3Proxy.counts.resetRequest).toBeGreaterThan(0);
    expect(result.bus.duplicated).toBeGreaterThan(0);
  });

  it('reports every blob copied, once, and nothing failed or dead-lettered', () => {
    expect(result.deadLetters).toEqual([]);
    expect(result.report.failed).toEqual([]);
    expect(result.report.copied).toEqual(CORPUS.map((b) => b.name).sort());
    expect(result.report.bytes).toBe(CORPUS.reduce((n, b) => n + b.size, 0));
  });

  it('wrote the exact bytes of every blob under its name, and nothing else', async () => {
    const keys = await listCopies(client, bucket);
    expect(keys.sort()).toEqual(CORPUS.map((b) => b.name).sort());
    await expectExactCopies(client, bucket, CORPUS);
  });

  it('left no multipart upload open and no manifest behind', async () => {
    await expectNothingLeftOver(client, bucket);
  });
});
