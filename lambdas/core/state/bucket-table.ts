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
import { BUCKET_REMEMBERED_ITEMS, applyUpdate, checkKey, holds, writeToken, type Precondition, type StateItem, type StateTable, type Update } from './table';

export const BUCKET_STATE_PREFIX = `${STATE_PREFIX}state/`;

/**
 * Items a query reads at once. All of a page's (up to 1,000) at once held as many answers and connections:
 * the closing report of a 200,000-blob copy (2,000 units, pages of 500) took its peak RSS from 147 to 187 MiB
 * (bench/memory.ts). The store answers one request at a time anyway (moto), so this many keep it busy.
 */
const QUERY_READS_AT_ONCE = 32;

/*
 * Items whose last version this process wrote are remembered (BUCKET_REMEMBERED_ITEMS of them), so that the next
 * read-modify-write of one starts from it rather than from a GET: within a local run every write goes through
 * this process's lock, so what it wrote is what is there. A version remembered wrongly (another process wrote
 * since) only costs a refused write (its ETag no longer matches) and a fresh read; a refusal or a failed
 * condition is never answered from memory. A 1,000-blob copy sent 77 GETs of state before writing it, 20 since
 * (9 once a settle looked for the run's end in the run as it wrote it: run-ledger.ts, maybeEnd).
 */

interface Stored {
  item: StateItem;
  etag: string;
  /** From this process's memory, not from a read: a decision against it is confirmed by a read. */
  remembered?: boolean;
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

  /** The JSON and ETag of each remembered item, oldest first (a JSON copy: nobody can change what is kept). */
  const remembered = new Map<string, { json: string; etag: string }>();
  const remember = (key: string, json: string, etag: string | undefined) => {
    remembered.delete(key);
    if (etag === undefined) return;
    remembered.set(key, { json, etag });
    if (remembered.size > BUCKET_REMEMBERED_ITEMS) remembered.delete(remembered.keys().next().value!);
  };
  /** The item as this process last wrote it, else as read now. */
  const known = async (key: string): Promise<Stored | undefined> => {
    const kept = remembered.get(key);
    if (kept) return { item: JSON.parse(kept.json) as StateItem, etag: kept.etag, remembered: true };
    return read(key);
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
    const json = JSON.stringify(item);
    try {
      const out = await client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: json,
          ContentType: 'application/json',
          ...(previous ? { IfMatch: previous.etag } : { IfNoneMatch: '*' }),
        }),
      );
      remember(key, json, out.ETag);
      return true;
    } catch (error) {
      remembered.delete(key);
      // 412: someone else wrote first. 409: a concurrent conditional write is in progress on the key. 404: the
      // version remembered was deleted since (If-Match on a missing object).
      const missing = previous?.remembered && (statusOf(error) === 404 || codeOf(error) === 'NoSuchKey');
      if (missing || statusOf(error) === 412 || statusOf(error) === 409 || codeOf(error) === 'PreconditionFailed' || codeOf(error) === 'ConditionalRequestConflict') {
        const now = await read(key);
        if (now?.item.w !== token) return false;
        remember(key, JSON.stringify(now.item), now.etag);
        return true;
      }
      throw error;
    }
  };

  const putItem = async (item: StateItem, precondition: Precondition | undefined): Promise<boolean> => {
    const key = keyOf(item.pk, item.sk);
    for (let fresh = false; ; fresh = true) {
      // A create-if-absent needs no read: the store refuses it if the item is there (If-None-Match).
      const current = fresh ? await read(key) : precondition && 'ifAbsent' in precondition && !remembered.has(key) ? undefined : await known(key);
      if (!holds(current?.item, precondition)) {
        if (current?.remembered) continue; // said no from memory: ask the store
        return false;
      }
      if (await write(key, { ...item, v: (current?.item.v ?? 0) + 1 }, current)) return true;
      // Lost a race: with a precondition that is the answer (to a version read, not remembered); without one,
      // read again and write over it.
      if (precondition && !current?.remembered) return false;
    }
  };

  const updateItem = async (update: Update): Promise<StateItem | undefined> => {
    const key = keyOf(update.pk, update.sk);
    for (let fresh = false; ; fresh = true) {
      const current = fresh ? await read(key) : await known(key);
      const after = applyUpdate(current?.item, update);
      if (!after) {
        if (current?.remembered) continue; // its condition failed from memory: ask the store
        return undefined;
      }
      if (await write(key, after, current)) return after;
    }
  };

  return {
    description: { kind: 'bucket', bucket, endpoint: options.endpoint },
    async get(pk, sk) {
      return (await read(keyOf(pk, sk)))?.item;
    },
    async recall(pk, sk) {
      return (await known(keyOf(pk, sk)))?.item;
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
      const listed = (out.Contents ?? []).filter((o) => o.Key!.endsWith('.json'));
      const keys = listed.map((o) => o.Key!);
      // An item whose listed ETag is the version this process remembers is not read again.
      const items = (await mapLimit(listed, QUERY_READS_AT_ONCE, async (o) => {
        const kept = remembered.get(o.Key!);
        return kept && kept.etag === o.ETag ? (JSON.parse(kept.json) as StateItem) : (await read(o.Key!))?.item;
      })).filter((i): i is StateItem => i !== undefined);
      const last = keys[keys.length - 1];
      return { items, next: out.IsTruncated && last ? last.slice(prefix.length, -'.json'.length) : undefined };
    },
    async delete(pk, sk) {
      remembered.delete(keyOf(pk, sk));
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: keyOf(pk, sk) }));
    },
    transact(put, updates) {
      const keys = [keyOf(put.item.pk, put.item.sk), ...updates.map((u) => keyOf(u.pk, u.sk))];
      return locked(keys, async () => {
        // Conditions first, so that a refusal writes nothing: from what this process wrote last where it remembers
        // (the keys are locked, so that is what is there unless another process wrote since), else as read now; a
        // condition failed from memory is asked of the store.
        const holdsNow = async (u: Update) => {
          const probe = { ...u, add: undefined, set: undefined };
          const current = await known(keyOf(u.pk, u.sk));
          if (applyUpdate(current?.item, probe)) return true;
          return current?.remembered === true && applyUpdate((await read(keyOf(u.pk, u.sk)))?.item, probe) !== undefined;
        };
        const checked = await mapLimit(updates.filter((u) => u.when !== undefined), 16, holdsNow);
        if (checked.includes(false)) return false;
        if (!(await putItem(put.item, put.precondition))) return false;
        // Each write is still conditional on the version it starts from: another process's write since is found
        // then, and its condition asked again (all or none holds within a process; across two, as with a crash,
        // the writes after the put may be refused).
        await mapLimit(updates, 16, (u) => updateItem(u));
        return true;
      });
    },
  };
}
