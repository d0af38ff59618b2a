/**
 * The cost arithmetic against figures computed by hand from the price list
 * (us-east-1 and eu-west-1 as of its date), the one-line refusal of a region the
 * list does not hold, and the request model's formulas for a hand-made tally.
 */
import { describe, expect, it } from 'vitest';
import { costOf, egressUsd, s3KmsRequests, type CostEstimate } from '../../lambdas/core/cost/cost';
import { invocationCounts, runIdsOf } from '../../lambdas/core/cost/invocation-meter';
import { LOCAL_CONCURRENCY, bucketStateRequests, dynamoStateRequests, predictDeployed, predictLocal } from '../../lambdas/core/cost/predict';
import { pricesFor } from '../../lambdas/core/cost/prices';
import { countsFromAttributes, countsToAttributes, createMeter, meterClient } from '../../lambdas/core/cost/requests';
import { countBatches, emptyTally } from '../../lambdas/core/cost/tally';
import { ConfigError } from '../../lambdas/core/errors';
import { DEFAULT_LOCAL_CONCURRENCY } from '../../lambdas/local/pipeline';

const usEast = pricesFor('us-east-1');
const GiB = 1024 ** 3;

function lineUsd(cost: CostEstimate, item: string): number | undefined {
  return cost.lines.find((l) => `${l.service}: ${l.item}` === item)?.usd;
}

describe('prices', () => {
  it('holds us-east-1 and eu-west-1, dated, with their sources', () => {
    expect(usEast.date).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(usEast.aws.s3.putCopyPostListPer1000).toBe(0.005);
    expect(pricesFor('eu-west-1').azureRegion).toBe('North Europe');
    expect(Object.keys(usEast.sources)).toEqual(expect.arrayContaining(['s3', 'lambda', 'dynamodb', 'azureEgress', 'azureBlob']));
  });

  it('refuses a region it does not hold in one line naming those it holds', () => {
    expect(() => pricesFor('ap-south-1')).toThrow(ConfigError);
    expect(() => pricesFor('ap-south-1')).toThrow(
      '--region is "ap-south-1", which the price list does not hold: use us-east-1 or eu-west-1 (prices in lambdas/core/cost/prices.json)',
    );
  });
});

describe('cost arithmetic', () => {
  it('tiers Azure egress, with and without the free 100 GB', () => {
    expect(egressUsd(50, usEast.azure.egressTiers)).toBe(0);
    expect(egressUsd(50, usEast.azure.egressTiers, true)).toBeCloseTo(50 * 0.087, 10);
    // 100 free, 10,240 at $0.087 (890.88), 9,660 at $0.083 (801.78).
    expect(egressUsd(20_000, usEast.azure.egressTiers)).toBeCloseTo(890.88 + 801.78, 6);
    // The figure: about $87-89 a TiB once the free allowance is used.
    expect(egressUsd(1024, usEast.azure.egressTiers, true)).toBeCloseTo(89.088, 6);
  });

  it('prices S3 PUTs of 100 KiB blobs at about $54 a TiB', () => {
    const puts = 2 ** 40 / (100 * 1024);
    const cost = costOf({ s3: { PutObject: puts } }, usEast, { mode: 'local' });
    expect(cost.totalUsd).toBeCloseTo(53.687, 3);
  });

  it('adds each line at its published price, deployed', () => {
    const cost = costOf({
      s3: { PutObject: 1000, UploadPart: 1000, GetObject: 10_000, HeadObject: 5000, DeleteObject: 700, AbortMultipartUpload: 3, BytesWritten: 5 },
      dynamodb: { WriteRequestUnits: 1_000_000, ReadRequestUnits: 2_000_000, PutItem: 9 },
      lambda: { Invocations: 1_000_000, GBSeconds: 1000 },
      sns: { PublishBatch: 100_000, BilledRequests: 2_000_000 },
      sqs: { SendMessage: 400_000, ReceiveMessage: 300_000, DeleteMessage: 300_000 },
      secretsmanager: { GetSecretValue: 10_000 },
      azure: { ListBlobs: 20_000, GetBlob: 20_000, GetBlobProperties: 10_000, BytesRead: 200 * GiB },
    }, usEast, { mode: 'deployed', readsByTier: { Cool: 10_000, Hot: 10_000 }, bytesByTier: { Cool: GiB }, writesByClass: { STANDARD_IA: 1000 } });
    const expected = {
      'S3: PutObject': 0.005, 'S3: UploadPart': 0.005, 'S3: GetObject': 0.004, 'S3: HeadObject': 0.002,
      'S3: STANDARD_IA write requests (above STANDARD)': 0.005,
      'run state (DynamoDB): write request units': 0.625, 'run state (DynamoDB): read request units': 0.25,
      'Lambda: requests': 0.2, 'Lambda: duration (arm64)': 0.0133334,
      'SNS: publish requests (64 KB chunks)': 1, 'SQS: requests (delivery from SNS, receive, delete)': 0.4,
      'Secrets Manager: GetSecretValue': 0.05,
      // 1,000,000 invocations x 2 KiB = 1.9073 GiB at $0.50.
      'CloudWatch Logs: ingestion': (1_000_000 * 2048 / GiB) * 0.5,
      // Secrets 10,000 + PublishBatch 100,000 + ceil(1% of S3's 12,000) = 110,120 requests at $0.03 / 10,000.
      'KMS: requests, with S3 bucket keys': 110_120 * 0.000003,
      'KMS: requests, without S3 bucket keys': 122_000 * 0.000003,
      // 200 GiB with the free 100 GB already used.
      'Azure bandwidth: internet egress': 200 * 0.087,
      'Azure Blob: List Blobs': 0.1, 'Azure Blob: Get Blob (Cool)': 0.01, 'Azure Blob: Get Blob': 0.004, 'Azure Blob: Get Blob Properties': 0.004,
      'Azure Blob: data retrieval (Cool)': 0.01,
    };
    for (const [item, usd] of Object.entries(expected)) expect({ item, usd: lineUsd(cost, item) }).toEqual({ item, usd: expect.closeTo(usd, 6) });
    // Free requests and byte counts are not lines.
    expect(cost.lines.map((l) => l.item)).not.toEqual(expect.arrayContaining(['DeleteObject', 'AbortMultipartUpload', 'BytesWritten']));
    const notInTotal = 122_000 * 0.000003;
    const sum = Object.values(expected).reduce((n, v) => n + v, 0) - notInTotal;
    expect(cost.totalUsd).toBeCloseTo(sum, 5);
    expect(cost.azureUsd).toBeCloseTo(17.4 + 0.1 + 0.01 + 0.004 + 0.004 + 0.01, 6);
  });

  it('prices rehydration from Archive: Set Blob Tier per operation, retrieval per GiB', () => {
    // 10,000 operations at $5.50 / 10,000; 10 GiB at $0.022.
    const cost = costOf({ azure: { SetBlobTier: 10_000 } }, usEast, { mode: 'local', rehydrateBytes: 10 * GiB });
    expect(lineUsd(cost, 'Azure Blob: Set Blob Tier (rehydrate from Archive, standard priority)')).toBeCloseTo(5.5, 10);
    expect(lineUsd(cost, 'Azure Blob: data retrieval (Archive, as rehydration completes)')).toBeCloseTo(0.22, 10);
    expect(cost.azureUsd).toBeCloseTo(5.72, 10);
  });

  it('prices a local run\'s state as S3 requests, and DynamoDB in eu-west-1 at its own rate', () => {
    const local = costOf({ state: { GetObject: 10_000, PutObject: 1000, ListObjectsV2: 1000, DeleteObject: 50 } }, usEast, { mode: 'local' });
    expect(local.totalUsd).toBeCloseTo(0.004 + 0.005 + 0.005, 10);
    const eu = costOf({ dynamodb: { WriteRequestUnits: 1_000_000 } }, pricesFor('eu-west-1'), { mode: 'deployed', kms: false });
    expect(lineUsd(eu, 'run state (DynamoDB): write request units')).toBeCloseTo(0.7068, 10);
    expect(s3KmsRequests({ PutObject: 2, HeadObject: 5, GetObject: 1, CompleteMultipartUpload: 1 })).toBe(4);
  });
});

describe('the request model', () => {
  it('names the local runner\'s concurrency as the runner has it', () => {
    expect(LOCAL_CONCURRENCY).toEqual({ download: DEFAULT_LOCAL_CONCURRENCY.download, parter: DEFAULT_LOCAL_CONCURRENCY.parter, recombinator: DEFAULT_LOCAL_CONCURRENCY.recombinator });
  });

  it('predicts the stores\' requests from a tally by the stages\' call pattern', () => {
    const tally = {
      ...emptyTally(), pages: 2, listed: 9000, destLists: 3, heads: 4, manifestReads: 1, small: 100, smallBytes: 100 * 1000,
      large: 2, largeBytes: 300 * 1024 * 1024, parts: 5, partReads: 17, listPartsPages: 2, largeWithMd5: 1, largeMd5Bytes: 100 * 1024 * 1024,
      messages: { 'copy-blobs': { count: 1, bytes: 30_000, chunks: 1 }, 'large-blob': { count: 2, bytes: 2000, chunks: 2 } },
    };
    const local = predictLocal({ tally, containers: 1 }).requests;
    expect(local.azure).toEqual({ ListBlobs: 3, GetBlobProperties: 3, GetBlob: 117, BytesRead: 100_000 + 300 * 1024 * 1024, SetBlobTier: 0 });
    expect(local.s3).toMatchObject({
      HeadBucket: 1, PutObject: 100 + 2 + 1 + 1 + 4 + 1, DeleteObject: 3, GetObject: 1 + 4 + 2, HeadObject: 4 + 4, ListObjectsV2: 3,
      CreateMultipartUpload: 2, ListMultipartUploads: 2, UploadPart: 5, ListParts: 2, CompleteMultipartUpload: 2,
    });
    const deployed = predictDeployed({ tally, containers: 1 }).requests;
    // Deployed: no write probe, no second copy of the report.
    expect(deployed.s3.PutObject).toBe(local.s3.PutObject - 3);
    expect(deployed.lambda.Invocations).toBeGreaterThanOrEqual(1 + 1 + 1 + 2 + 5 + 2);
    expect(deployed.dynamodb.TransactWriteItems).toBe(1 + 3 + 5);
  });

  it('predicts the mirror\'s checks and deletions, none when its guard refuses, and the rehydrations asked for', () => {
    const tally = {
      ...emptyTally(), pages: 1, listed: 10, destLists: 1, heads: 2600, sourceProperties: 2500, deletes: 2500, deleteUnits: 3,
      destinationSeen: 3000, rehydrations: 4, rehydrateBytes: 4000,
    };
    const allowed = predictLocal({ tally, containers: 1 }).requests;
    expect(allowed.azure).toMatchObject({ GetBlobProperties: 1 + 2500, SetBlobTier: 4 });
    expect(allowed.s3).toMatchObject({ HeadObject: 2600, DeleteObjects: 3 });
    const refused = predictLocal({ tally, containers: 1, deletionsRefused: true }).requests;
    expect(refused.s3.DeleteObjects).toBe(0);
    // The three units are written either way; allowed, each is settled (a transaction of two items: two PUTs in the
    // bucket); refused, the refusal is noted on the run (one PUT).
    expect(allowed.state.PutObject - refused.state.PutObject).toBe(3 * 2 - 1);
  });

  it('maps run-state calls to bucket requests and DynamoDB units', () => {
    const calls = [
      { op: 'get', count: 2, kib: 5 }, { op: 'recall', count: 3, kib: 1 }, { op: 'put', count: 1, kib: 0.5 }, { op: 'put', count: 5, kib: 0.5, creates: true },
      { op: 'update', count: 1, kib: 3 }, { op: 'query', count: 1, kib: 10, items: 4 }, { op: 'query', count: 2, kib: 10, items: 200 },
      { op: 'delete', count: 2, kib: 0.2 }, { op: 'transact', count: 1, kib: 3.5, items: 2 },
    ] as const;
    // Reads: the gets, the put of an item not created, the items of a query beyond the units remembered (128 of
    // 256). Recalls, creates, updates, transactions (their conditions checked against what the store remembers)
    // and the rest of the queries read nothing.
    expect(bucketStateRequests([...calls])).toEqual({ GetObject: 2 + 1 + (200 - 128), PutObject: 1 + 5 + 1 + 2, ListObjectsV2: 3, DeleteObject: 2 });
    expect(dynamoStateRequests([...calls])).toEqual({
      GetItem: 2 + 3, PutItem: 6, UpdateItem: 1, Query: 3, DeleteItem: 2, TransactWriteItems: 1,
      ReadRequestUnits: 2 * 2 + 3 + 3 + 2 * 3, WriteRequestUnits: 1 + 5 + 3 + 2 + 2 * 4,
    });
  });

  it('packs publishes as the publisher does: 10 messages, 250 KB, billed per 64 KB', () => {
    const t = { publishBatches: 0, publishChunks: 0 };
    countBatches(t, [...new Array<number>(12).fill(1000), 200 * 1024, 100 * 1024]);
    // [10 x 1 KB], [2 x 1 KB + 200 KiB] (202 KiB: 4 chunks), [100 KiB] (2 chunks).
    expect(t).toEqual({ publishBatches: 3, publishChunks: 1 + 4 + 2 });
  });
});

describe('an invocation\'s own requests', () => {
  it('are its Lambda request and duration, and its message received and deleted, for its run', () => {
    const event = { Records: [{ body: JSON.stringify({ runId: 'r1', kind: 'copy-part' }) }] };
    expect(runIdsOf(event, undefined)).toEqual(['r1']);
    expect(runIdsOf({}, { started: true, runId: 'r2' })).toEqual(['r2']);
    expect(invocationCounts(event, 2000, 1024, 0)).toEqual({ lambda: { Invocations: 1, GBSeconds: 2 }, sqs: { ReceiveMessage: 1, DeleteMessage: 1 } });
    expect(invocationCounts(event, 500, 512, 1).sqs).toEqual({ ReceiveMessage: 1, DeleteMessage: 0 });
  });

  it('travel as flat attributes of the run\'s item and back', () => {
    const counts = { s3: { PutObject: 3 }, azure: { GetBlob: 2 } };
    expect(countsToAttributes(counts)).toEqual({ 'req:s3:PutObject': 3, 'req:azure:GetBlob': 2 });
    expect(countsFromAttributes({ ...countsToAttributes(counts), runId: 'x', copied: 4 })).toEqual(counts);
  });

  it('count DynamoDB\'s consumed capacity as read or write units by the operation when only a total comes back', async () => {
    const meter = createMeter();
    let middleware: ((next: (a: { input: unknown }) => Promise<{ output: unknown }>, c: { commandName?: string }) => (a: { input: unknown }) => Promise<{ output: unknown }>) | undefined;
    meterClient({ middlewareStack: { add: (m: typeof middleware) => void (middleware = m) } }, meter, 'dynamodb');
    const send = (commandName: string, output: unknown) => middleware!(async () => ({ output }), { commandName })({ input: {} });
    await send('GetItemCommand', { ConsumedCapacity: { CapacityUnits: 0.5 } });
    await send('UpdateItemCommand', { ConsumedCapacity: { CapacityUnits: 2 } });
    await send('TransactWriteItemsCommand', { ConsumedCapacity: [{ CapacityUnits: 4 }, { CapacityUnits: 2 }] });
    await send('PutItemCommand', { ConsumedCapacity: { WriteCapacityUnits: 1, ReadCapacityUnits: 0 } });
    expect(meter.peek()).toEqual({
      dynamodb: { GetItem: 1, UpdateItem: 1, TransactWriteItems: 1, PutItem: 1, ReadRequestUnits: 0.5, WriteRequestUnits: 2 + 6 + 1 },
    });
  });
});
