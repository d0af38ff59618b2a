/**
 * The state table as objects in the destination bucket, under
 * `.azs3copy-state/state/<pk>/<sk>.json`: what a local run uses, so that it needs
 * nothing but the bucket it copies into, and `azs3copy status --bucket` finds it.
 *
 * Writes are S3 conditional writes: `If-None-Match: *` to create, `If-Match: <ETag>`
 * to replace the version read, so two writers never both win. Read-modify-write
 * operations (update, transact) also take an in-process lock per item key, so the
 * stages of one local run never spin against each other; across processes the
 * conditional writes decide. Cost, per million blobs (100 blobs per unit of
 * accounting): about 10,000 units x (1 PUT to create + 1 GET and 2 PUTs to settle)
 * = 30,000 requests, $0.15 at S3 Standard prices.
 */
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { mapLimit } from '../batching';
import { codeOf, statusOf } from '../errors';
import { STATE_PREFIX } from '../keys';
import { isTransient, withRetry } from '../retry';
import { applyUpdate, checkKey, holds, writeToken, type Precondition, type StateItem, type StateTable, type Update } from './table';

export const BUCKET_STATE_PREFIX = `${STATE_PREFIX}state/`;

/**
 * Items a query reads at once. All of a page's (up to 1,000) at once held as many answers and connections:
 * the closing report of a 200,000-blob copy (2,000 units, pages of 500) took its peak RSS from 147 to 187 MiB
 * (bench/memory.ts). The store answers one request at a time anyway (moto), so this many keep it busy.
 */
const QUERY_READS_AT_ONCE = 32;

interface Stored {
  item: StateItem;
  etag: string;
}

export function bucketTable(client: S3Client, bucket: string, options: { endpoint?: string } = {}): StateTable {
  const keyOf = (pk: string, sk: string) => `${BUCKET_STATE_PREFIX}${checkKey(pk, 'pk')}/${checkKey(sk, 'sk')}.json`;
  const locks = new Map<string, Promise<unknown>>();

  /** Run `fn` after every earlier holder of these keys' locks, in this process. */
  const locked = async <T>(keys: string[], fn: () => Promise<T>): Promise<T> => {
    const before = keys.map((k) => locks.get(k) ?? Promise.resolve());
    const run = Promise.allSettled(before).then(fn);
    const tail = run.catch(() => undefined);
    for (const k of keys) locks.set(k, tail);
    try {
      return await run;
    } finally {
      for (const k of keys) if (locks.get(k) === tail) locks.delete(k);
    }
  };

  // A body cut mid-way is not retried by the SDK (its answer had begun): read again here.
  const read = (key: string): Promise<Stored | undefined> => withRetry(async () => {
    try {
      const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      const item = JSON.parse(await out.Body!.transformToString('utf8')) as StateItem;
      return { item, etag: out.ETag! };
    } catch (error) {
      if (statusOf(error) === 404 || codeOf(error) === 'NoSuchKey') return undefined;
      throw error;
    }
  }, { attempts: 5, baseDelayMs: 50, maxDelayMs: 2_000, isRetryable: (e) => isTransient(e) || /aborted|premature|ECONNRESET/i.test(String(e)) });

  /**
   * Write conditionally on what was read: created only if still absent, replaced only if still that ETag.
   * Refused, it may have been our own write, retried after its answer was lost: the token tells.
   */
  const write = async (key: string, item: StateItem, previous: Stored | undefined): Promise<boolean> => {
    const token = writeToken();
    item.w = token;
    try {
      await client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: JSON.stringify(item),
          ContentType: 'application/json',
          ...(previous ? { IfMatch: previous.etag } : { IfNoneMatch: '*' }),
        }),
      );
      return true;
    } catch (error) {
      // 412: someone else wrote first. 409: a concurrent conditional write is in progress on the key.
      if (statusOf(error) === 412 || statusOf(error) === 409 || codeOf(error) === 'PreconditionFailed' || codeOf(error) === 'ConditionalRequestConflict') {
        return (await read(key))?.item.w === token;
      }
      throw error;
    }
  };

  const putItem = async (item: StateItem, precondition: Precondition | undefined): Promise<boolean> => {
    const key = keyOf(item.pk, item.sk);
    for (;;) {
      const current = await read(key);
      if (!holds(current?.item, precondition)) return false;
      if (await write(key, { ...item, v: (current?.item.v ?? 0) + 1 }, current)) return true;
      // Lost a race: with a precondition that is the answer; without one, read again and write over it.
      if (precondition) return false;
    }
  };

  const updateItem = async (update: Update): Promise<StateItem | undefined> => {
    const key = keyOf(update.pk, update.sk);
    for (;;) {
      const current = await read(key);
      const after = applyUpdate(current?.item, update);
      if (!after) return undefined;
      if (await write(key, after, current)) return after;
    }
  };

  return {
    description: { kind: 'bucket', bucket, endpoint: options.endpoint },
    async get(pk, sk) {
      return (await read(keyOf(pk, sk)))?.item;
    },
    put(item, precondition) {
      const key = keyOf(item.pk, item.sk);
      return locked([key], () => putItem(item, precondition));
    },
    update(update) {
      return locked([keyOf(update.pk, update.sk)], () => updateItem(update));
    },
    async query(pk, skPrefix, options = {}) {
      const prefix = `${BUCKET_STATE_PREFIX}${checkKey(pk, 'pk')}/`;
      const out = await client.send(
        new ListObjectsV2Command({
          Bucket: bucket,
          Prefix: prefix + skPrefix,
          StartAfter: options.after === undefined ? undefined : `${prefix}${options.after}.json`,
          MaxKeys: options.limit ?? 1000,
        }),
      );
      const keys = (out.Contents ?? []).map((o) => o.Key!).filter((k) => k.endsWith('.json'));
      const items = (await mapLimit(keys, QUERY_READS_AT_ONCE, async (k) => (await read(k))?.item)).filter((i): i is StateItem => i !== undefined);
      const last = keys[keys.length - 1];
      return { items, next: out.IsTruncated && last ? last.slice(prefix.length, -'.json'.length) : undefined };
    },
    async delete(pk, sk) {
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: keyOf(pk, sk) }));
    },
    transact(put, updates) {
      const keys = [keyOf(put.item.pk, put.item.sk), ...updates.map((u) => keyOf(u.pk, u.sk))];
      return locked(keys, async () => {
        // Conditions first, so that a refusal writes nothing.
        for (const u of updates) {
          if (u.when !== undefined && !applyUpdate((await read(keyOf(u.pk, u.sk)))?.item, { ...u, add: undefined, set: undefined })) return false;
        }
        if (!(await putItem(put.item, put.precondition))) return false;
        for (const u of updates) await updateItem({ ...u, when: undefined });
        return true;
      });
    },
  };
}
