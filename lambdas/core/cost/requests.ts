/**
 * Requests by service and operation, as a plan predicts them and as a run makes
 * them: `{"s3": {"PutObject": 12}, "azure": {"GetBlob": 12}}`. The meter counts
 * what the copier itself sends, by wrapping its stores (the blob source, the
 * object sink) and by a middleware on the AWS SDK clients it owns (the run-state
 * table, SNS, Secrets Manager); the plan's predictions use the same names, so the
 * two can stand side by side.
 *
 * Services: `azure` (Blob service operations), `s3` (the bucket: copies,
 * manifests, reports), `state` (the run state kept in the bucket, a local run),
 * `dynamodb` (the run state deployed), `sns`, `sqs`, `lambda`, `secretsmanager`,
 * `kms`, `logs`. Units that are not requests (bytes, GB-seconds, capacity units)
 * are counted under their own names beside them (e.g. `dynamodb.WriteRequestUnits`).
 */
import type { BlobSource, ObjectSink } from '../stores/types';

export type RequestCounts = Record<string, Record<string, number>>;

export function addCounts(into: RequestCounts, more: RequestCounts, factor = 1): RequestCounts {
  for (const [service, ops] of Object.entries(more)) {
    const target = (into[service] ??= {});
    for (const [op, n] of Object.entries(ops)) target[op] = (target[op] ?? 0) + n * factor;
  }
  return into;
}

export function countOf(counts: RequestCounts, service: string, op: string): number {
  return counts[service]?.[op] ?? 0;
}

/** Counts with every zero left out and services sorted, for reports. */
export function tidyCounts(counts: RequestCounts): RequestCounts {
  const out: RequestCounts = {};
  for (const service of Object.keys(counts).sort()) {
    const ops = Object.entries(counts[service]).filter(([, n]) => n !== 0).sort(([a], [b]) => (a < b ? -1 : 1));
    if (ops.length) out[service] = Object.fromEntries(ops.map(([op, n]) => [op, Number.isInteger(n) ? n : Number(n.toFixed(3))]));
  }
  return out;
}

/** Run-item attribute names for counts (flat: `req:s3:PutObject`), so one update adds them all. */
const ATTRIBUTE = 'req:';

export function countsToAttributes(counts: RequestCounts): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [service, ops] of Object.entries(counts)) {
    for (const [op, n] of Object.entries(ops)) if (n !== 0) out[`${ATTRIBUTE}${service}:${op}`] = n;
  }
  return out;
}

export function countsFromAttributes(item: Record<string, unknown>): RequestCounts {
  const out: RequestCounts = {};
  for (const [name, value] of Object.entries(item)) {
    if (!name.startsWith(ATTRIBUTE) || typeof value !== 'number') continue;
    const [service, op] = name.slice(ATTRIBUTE.length).split(':');
    if (service && op) (out[service] ??= {})[op] = value;
  }
  return out;
}

export interface Meter {
  add(service: string, op: string, n?: number): void;
  /** What was counted so far. */
  peek(): RequestCounts;
  /** What was counted since the last take, and start again from nothing. */
  take(): RequestCounts;
}

export function createMeter(): Meter {
  let counts: RequestCounts = {};
  return {
    add(service, op, n = 1) {
      const ops = (counts[service] ??= {});
      ops[op] = (ops[op] ?? 0) + n;
    },
    peek: () => structuredClone(counts),
    take() {
      const taken = counts;
      counts = {};
      return taken;
    },
  };
}

/** The Blob service operations behind each source method. */
export function meteredSource(source: BlobSource, meter: Meter): BlobSource {
  return {
    async check() {
      // One listing of a single blob, then that blob's properties (see azure-source.ts).
      meter.add('azure', 'ListBlobs');
      meter.add('azure', 'GetBlobProperties');
      return source.check();
    },
    async listPage(continuation, maxPageSize) {
      meter.add('azure', 'ListBlobs');
      return source.listPage(continuation, maxPageSize);
    },
    async properties(name, etag) {
      meter.add('azure', 'GetBlobProperties');
      return source.properties(name, etag);
    },
    async blob(name) {
      // A listing from the blob's name (see azure-source.ts).
      meter.add('azure', 'ListBlobs');
      return source.blob(name);
    },
    async read(name, etag, range) {
      meter.add('azure', 'GetBlob');
      const read = await source.read(name, etag, range);
      meter.add('azure', 'BytesRead', read.length);
      return read;
    },
    async rehydrate(name) {
      meter.add('azure', 'SetBlobTier');
      return source.rehydrate(name);
    },
  };
}

/** The S3 operations behind each sink method (its state objects included: manifests, reports, pointers). */
export function meteredSink(sink: ObjectSink, meter: Meter): ObjectSink {
  const s3 = (op: string, n = 1) => meter.add('s3', op, n);
  return {
    check: () => (s3('HeadBucket'), sink.check()),
    head: (key) => (s3('HeadObject'), sink.head(key)),
    list: (prefix, startAfter, maxKeys) => (s3('ListObjectsV2'), sink.list(prefix, startAfter, maxKeys)),
    read: (key, range) => (s3('GetObject'), sink.read(key, range)),
    put: (key, body, attributes, options) => (s3('PutObject'), s3('BytesWritten', options.length), sink.put(key, body, attributes, options)),
    delete: (key) => (s3('DeleteObject'), sink.delete(key)),
    deleteMany: (keys) => (keys.length ? s3('DeleteObjects') : undefined, sink.deleteMany(keys)),
    createUpload: (key, attributes) => (s3('CreateMultipartUpload'), sink.createUpload(key, attributes)),
    uploadPart: (key, uploadId, partNumber, body, length, crc) => (
      s3('UploadPart'), s3('BytesWritten', length), sink.uploadPart(key, uploadId, partNumber, body, length, crc)
    ),
    listUploads: (key) => (s3('ListMultipartUploads'), sink.listUploads(key)),
    abort: (key, uploadId) => (s3('AbortMultipartUpload'), sink.abort(key, uploadId)),
    async listParts(key, uploadId, stopEarly) {
      const parts = await sink.listParts(key, uploadId, stopEarly);
      // One page per 1,000 parts (and one for an upload that is gone).
      s3('ListParts', Math.max(1, Math.ceil((parts?.length ?? 0) / 1000)));
      return parts;
    },
    complete: (key, uploadId, parts) => (s3('CompleteMultipartUpload'), sink.complete(key, uploadId, parts)),
    getJson: (key) => (s3('GetObject'), sink.getJson(key)),
    putJson: (key, value, options) => (s3('PutObject'), sink.putJson(key, value, options)),
    putText: (key, text, contentType) => (s3('PutObject'), sink.putText(key, text, contentType)),
    deleteState: (key) => (s3('DeleteObject'), sink.deleteState(key)),
  };
}

/** The part of an AWS SDK v3 client the meter needs: its middleware stack. */
interface MiddlewareClient {
  middlewareStack: {
    add(
      middleware: (next: (args: { input: unknown }) => Promise<{ output: unknown }>, context: { commandName?: string }) =>
        (args: { input: unknown }) => Promise<{ output: unknown }>,
      options: { step: 'initialize'; name: string },
    ): void;
  };
}

/**
 * Count every command the client sends under `service` (once per command, whatever its retries: a retry
 * the SDK makes is not billed differently here, and is rare). For DynamoDB, each command also asks for its
 * consumed capacity, so the write and read units are counted as DynamoDB bills them.
 */
export function meterClient(client: unknown, meter: Meter, service: string, options: { paused?: () => boolean } = {}): void {
  (client as MiddlewareClient).middlewareStack.add(
    (next, context) => async (args) => {
      if (options.paused?.()) return next(args);
      const op = (context.commandName ?? 'Unknown').replace(/Command$/, '');
      meter.add(service, op);
      if (service === 'dynamodb') (args.input as Record<string, unknown>).ReturnConsumedCapacity ??= 'TOTAL';
      if (service === 'sns' && op === 'PublishBatch') meter.add('sns', 'BilledRequests', snsBilledRequests(args.input));
      const result = await next(args);
      if (service === 'dynamodb') {
        const consumed = (result.output as { ConsumedCapacity?: Capacity | Capacity[] }).ConsumedCapacity;
        for (const c of [consumed ?? []].flat()) {
          if (c.WriteCapacityUnits || c.ReadCapacityUnits) {
            meter.add('dynamodb', 'WriteRequestUnits', c.WriteCapacityUnits ?? 0);
            meter.add('dynamodb', 'ReadRequestUnits', c.ReadCapacityUnits ?? 0);
          } else if (c.CapacityUnits) {
            // Only a total: reads are reads, everything else writes.
            meter.add('dynamodb', READS.has(op) ? 'ReadRequestUnits' : 'WriteRequestUnits', c.CapacityUnits);
          }
        }
      }
      return result;
    },
    { step: 'initialize', name: `azs3copyMeter${service}` },
  );
}

const READS = new Set(['GetItem', 'Query', 'Scan', 'BatchGetItem', 'TransactGetItems']);

interface Capacity {
  CapacityUnits?: number;
  ReadCapacityUnits?: number;
  WriteCapacityUnits?: number;
}

/** SNS bills each 64 KB chunk of a publish's payload as one request. */
export const SNS_CHUNK_BYTES = 64 * 1024;

function snsBilledRequests(input: unknown): number {
  const entries = (input as { PublishBatchRequestEntries?: { Message?: string }[] }).PublishBatchRequestEntries ?? [];
  const bytes = entries.reduce((n, e) => n + Buffer.byteLength(e.Message ?? '', 'utf8'), 0);
  return Math.max(1, Math.ceil(bytes / SNS_CHUNK_BYTES));
}
