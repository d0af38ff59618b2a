/**
 * Plan before copying, on the emulators: `azs3copy plan` over a mixed corpus
 * (small, large with and without a Content-MD5, unchanged, archived, a Cool blob,
 * a directory marker, a name too long for S3) names exactly the sets the copy
 * that follows produces, writes nothing to the bucket, and predicts the requests
 * that copy sends to Azure and to S3, as counted by proxies in front of Azurite
 * and moto, within 10% for every operation that matters.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PlanReport } from '../../lambdas/core/cost/plan-report';
import { countsFromAttributes, type RequestCounts } from '../../lambdas/core/cost/requests';
import type { LocalRunResult } from '../../lambdas/local/runner';
import { uploadBlob, uploadDirectoryMarker, type BlobSpec } from '../../lambdas/local/seed';
import { runCli } from '../helpers/cli';
import { proxiedConnectionString, startFaultProxy, type FaultProxy } from '../helpers/fault-proxy';
import { census } from '../helpers/request-census';
import { copyLocally, emulators, listKeys, newBucket, newContainer, s3, sourceOf } from '../helpers/stores';

const MiB = 1024 * 1024;
const LARGE = 8 * MiB;
const PART = 5 * MiB;
const TOO_LONG = `fail/${'n'.repeat(1030)}.txt`;

const SMALL: BlobSpec[] = Array.from({ length: 30 }, (_, i) => ({ name: `small/${String(i).padStart(2, '0')} file.txt`, size: 1000 + i * 1500 }));
const SAME: BlobSpec[] = [1, 2, 3].map((i) => ({ name: `same/${i}.txt`, size: 2000 * i }));
const CORPUS: BlobSpec[] = [
  ...SMALL,
  ...SAME,
  // Staged: no Content-MD5 (3 parts); single-shot: a Content-MD5, so its copy is read back and checked (2 parts).
  { name: 'large/staged.bin', size: 12 * MiB, singleShot: false },
  { name: 'large/checked.bin', size: 9 * MiB, singleShot: true },
  { name: 'cool/report.pdf', size: 40_000, tier: 'Cool' },
  { name: 'old/archived.zip', size: 5000, tier: 'Archive' },
  { name: TOO_LONG, size: 10 },
];

/** Operations whose counts the plan must predict within 10%. */
const CHECKED: Record<string, string[]> = {
  s3: ['PutObject', 'CreateMultipartUpload', 'UploadPart', 'CompleteMultipartUpload', 'ListObjectsV2', 'HeadObject', 'GetObject'],
  azure: ['ListBlobs', 'GetBlob', 'GetBlobProperties'],
  state: ['GetObject', 'PutObject', 'ListObjectsV2', 'DeleteObject'],
};

function within(predicted: number, counted: number): boolean {
  return Math.abs(predicted - counted) <= 0.1 * counted;
}

function table(predicted: RequestCounts, counted: RequestCounts, meter: RequestCounts): string {
  const lines = ['service  operation                  predicted  counted  metered'];
  for (const [service, ops] of Object.entries(CHECKED)) {
    for (const op of ops) {
      const p = predicted[service]?.[op] ?? 0;
      const c = counted[service]?.[op] ?? 0;
      lines.push(`${service.padEnd(8)} ${op.padEnd(26)} ${String(p).padStart(9)} ${String(c).padStart(8)} ${String(meter[service]?.[op] ?? 0).padStart(8)}${within(p, c) ? '' : '  <-- off'}`);
    }
  }
  return lines.join('\n');
}

describe('a plan before a copy', () => {
  const client = s3();
  let container: ContainerClient;
  let bucket: string;
  let plan: PlanReport;
  let planOutput: string;
  let keysBefore: string[];
  let keysAfter: string[];
  let copy: LocalRunResult;
  let azure: FaultProxy;
  let s3Proxy: FaultProxy;
  const azureCensus = census('azure');
  const s3Census = census('s3');

  beforeAll(async () => {
    container = await newContainer();
    bucket = await newBucket(client);
    await Promise.all(CORPUS.map((spec) => uploadBlob(container, spec)));
    await uploadDirectoryMarker(container, 'dirs/marker');
    // An earlier copy of three blobs: unchanged for the plan and the copy that follows.
    const first = await copyLocally(container, bucket, { selection: { filters: { include: ['same/**'] } }, largeBlobBytes: LARGE, partBytes: PART });
    expect(first.report.copied).toHaveLength(3);

    const { azurite, s3Endpoint } = emulators();
    keysBefore = await listKeys(client, bucket);
    const dir = mkdtempSync(join(tmpdir(), 'azs3copy-plan-'));
    const planFile = join(dir, 'plan.json');
    const out = await runCli([
      'plan', '--azure-connection-string', azurite.connectionString, '--container', container.containerName, '--bucket', bucket,
      '--s3-endpoint', s3Endpoint, '--large-blob-mib', String(LARGE / MiB), '--part-mib', String(PART / MiB), '--report', planFile,
    ]);
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    planOutput = out.stdout;
    plan = JSON.parse(readFileSync(planFile, 'utf8')) as PlanReport;
    keysAfter = await listKeys(client, bucket);

    azure = await startFaultProxy({ target: azurite.endpoint, service: 'azure', onRequest: azureCensus.onRequest });
    s3Proxy = await startFaultProxy({ target: s3Endpoint, service: 's3', onRequest: s3Census.onRequest });
    copy = await copyLocally(container, bucket, {
      source: {
        ...sourceOf(container),
        blobEndpoint: azure.endpoint,
        credentials: { kind: 'connection-string', connectionString: proxiedConnectionString(azurite.connectionString, azure.endpoint) },
      },
      s3Endpoint: s3Proxy.endpoint,
      largeBlobBytes: LARGE,
      partBytes: PART,
      plan: { from: planFile, plan },
    });
  });

  afterAll(async () => {
    await Promise.all([azure?.stop(), s3Proxy?.stop()]);
  });

  it('prints the totals, the cost and the time', () => {
    expect(planOutput).toMatch(/to copy\s+33 objects/);
    expect(planOutput).toMatch(/unchanged\s+3 objects/);
    expect(planOutput).toMatch(/will fail\s+1\n.*S3 allows at most 1024/);
    expect(planOutput).toMatch(/total\s+\$/);
    expect(planOutput).toMatch(/egress 0\.02\d GiB/);
    expect(planOutput).toMatch(/estimated time: deployed \d+ s; local CLI \d+ s/);
  });

  it('names the same sets the copy produces', () => {
    expect(copy.report.failed).toEqual(plan.fail);
    expect(copy.report.skipped).toEqual(plan.skip);
    expect(copy.report.copied).toEqual(plan.copy);
    expect(copy.report.unchanged).toBe(plan.unchanged);
    expect(plan.unchanged).toBe(3);
    expect(plan.copy).toHaveLength(33);
    expect(plan.skip.map((s) => s.name)).toEqual(['dirs/marker', 'old/archived.zip']);
    expect(plan.fail.map((f) => f.name)).toEqual([TOO_LONG]);
    expect(plan.objects).toEqual({ copy: 33, single: 31, multipart: 2, parts: 5 });
    expect(copy.report.bytes).toBe(plan.bytes.copy);
  });

  it('leaves the bucket untouched', () => {
    expect(keysAfter).toEqual(keysBefore);
  });

  it('predicts the requests the copy makes within 10%, and the copy counts them itself', () => {
    const counted = { ...azureCensus.counts, ...s3Census.counts };
    const predicted = plan.local.requests;
    // The copier's own count at the end of the process (its report, written last, counts all but its own two PUTs).
    const meter = copy.requests!;
    console.info(`predicted vs counted (proxies) vs metered (the copier's own count):\n${table(predicted, counted, meter)}`);
    for (const [service, ops] of Object.entries(CHECKED)) {
      for (const op of ops) {
        const p = predicted[service]?.[op] ?? 0;
        const c = counted[service]?.[op] ?? 0;
        expect({ service, op, p, c, within: within(p, c) }).toEqual({ service, op, p, c: expect.any(Number), within: true });
        expect({ service, op, metered: meter[service]?.[op] ?? 0 }).toEqual({ service, op, metered: c });
      }
    }
  });

  it('reports what the copy did beside what the plan predicted, priced alike', () => {
    const costs = copy.report.costs!;
    expect(costs.predicted?.from).toMatch(/plan\.json$/);
    expect(costs.predicted?.requests).toEqual(plan.local.requests);
    expect(costs.actual.cost.totalUsd).toBeGreaterThan(0);
    // Same arithmetic, near-same counts: the totals agree within 10%.
    expect(Math.abs(costs.actual.cost.totalUsd - plan.local.cost.totalUsd)).toBeLessThanOrEqual(0.1 * costs.actual.cost.totalUsd);
    expect(countsFromAttributes({})).toEqual({});
  });
});
