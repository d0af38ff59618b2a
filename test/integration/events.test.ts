/**
 * Event-driven replication through `azs3copy watch`, the deployed events handler
 * served locally, fed real Event Grid and CloudEvents payloads: the handshakes; a
 * missing or wrong key changes nothing; 1,000 BlobCreated events in batches copy
 * every blob (the latency from event to object is printed); a duplicate and an
 * older event after a newer one leave the newest version, copied once; a large
 * blob goes through the multipart path; BlobDeleted deletes only in mirror mode;
 * the hour's event-driven run shows in `azs3copy status`.
 */
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mapLimit } from '../../lambdas/core/batching';
import { uploadBlob, type BlobSpec } from '../../lambdas/local/seed';
import { runCli, startCli } from '../helpers/cli';
import { cloudEventsBatch, deliver, eventGridBatch, validationEvent, type BlobChange } from '../helpers/event-grid';
import { emulators, expectExactCopies, head, listCopies, listKeys, newBucket, newContainer, s3 } from '../helpers/stores';

const KEY = 'test-webhook-key-5f2c0d7e9a41';
const MiB = 1024 * 1024;

/** `azs3copy watch --listen 0 ...` until stopped: its URL and what it printed. */
async function startWatch(container: ContainerClient, bucket: string, extra: string[] = []) {
  const { azurite, s3Endpoint } = emulators();
  const { child, done } = startCli([
    'watch', '--listen', '0', '--azure-connection-string', azurite.connectionString, '--container', container.containerName,
    '--s3-endpoint', s3Endpoint, '--bucket', bucket, '--webhook-key', KEY, ...extra,
  ]);
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      const m = /at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
      if (m) resolve(m[1]);
    });
    void done.then((r) => reject(new Error(`watch ended early (${r.code}): ${r.stderr}`)));
  });
  return {
    url,
    output: () => out,
    errors: () => err,
    /** The lines printed since `from` (an earlier output().length), once `count` of them have arrived. */
    linesSince: async (from: number, count = 1) =>
      waitFor('the watch\'s line', async () => {
        const lines = out.slice(from).split('\n').filter(Boolean);
        return lines.length >= count ? lines : undefined;
      }, 30_000),
    stop: async () => {
      child.kill('SIGINT');
      return done;
    },
  };
}

type Watch = Awaited<ReturnType<typeof startWatch>>;

/**
 * Poll the bucket until every key is there; when each was first seen (to a quarter of a second). Only under the
 * keys' own prefix, and four times a second: the run's state beside them grows with every blob, and listing it too
 * ten times a second kept moto (one Python process) busy enough to slow the copy it was timing several times over;
 * ten listings a second of the copies alone still cost the 1,000-event test about 4 s of its 41.
 */
async function seenTimes(bucket: string, keys: string[], prefix: string, timeoutMs = 240_000): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  const until = Date.now() + timeoutMs;
  const wanted = new Set(keys);
  while (seen.size < keys.length && Date.now() < until) {
    for (const key of await listCopies(s3(), bucket, prefix)) if (wanted.has(key) && !seen.has(key)) seen.set(key, Date.now());
    if (seen.size < keys.length) await new Promise((r) => setTimeout(r, 250));
  }
  return seen;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const text = async (bucket: string, key: string) =>
  (await (await s3().send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToString());

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];

describe('azs3copy watch: the events endpoint', () => {
  let container: ContainerClient;
  let bucket: string;
  let watch: Watch;
  let sequence = 0;
  const created = (name: string, extra: Partial<BlobChange> = {}): BlobChange => ({ container: container.containerName, name, kind: 'created', sequencer: ++sequence, ...extra });

  beforeAll(async () => {
    container = await newContainer();
    bucket = await newBucket();
    watch = await startWatch(container, bucket, ['--large-blob-mib', '8', '--part-mib', '5']);
  });
  afterAll(async () => {
    await watch?.stop();
  });

  it('answers both handshakes, and a request without the key or with a wrong one gets 401 and changes nothing', async () => {
    const validation = await deliver(watch.url, validationEvent('512d38b6-c7b8-40c8-89fe-f46f9e9622b6'), { key: KEY });
    expect(validation.status).toBe(200);
    expect(JSON.parse(validation.body)).toEqual({ validationResponse: '512d38b6-c7b8-40c8-89fe-f46f9e9622b6' });

    const options = await fetch(`${watch.url}?code=${KEY}`, { method: 'OPTIONS', headers: { 'WebHook-Request-Origin': 'eventemitter.example.com' } });
    expect(options.status).toBe(200);
    expect(options.headers.get('webhook-allowed-origin')).toBe('eventemitter.example.com');

    await uploadBlob(container, { name: 'unkeyed.txt', size: 100 });
    const batch = eventGridBatch([created('unkeyed.txt')]);
    expect((await deliver(watch.url, batch)).status).toBe(401);
    expect((await deliver(watch.url, batch, { key: 'not-the-key-but-long-enough' })).status).toBe(401);
    expect((await deliver(watch.url, batch, { key: `${KEY}x` })).status).toBe(401);
    const unkeyedOptions = await fetch(watch.url, { method: 'OPTIONS', headers: { 'WebHook-Request-Origin': 'eventemitter.example.com' } });
    expect(unkeyedOptions.status).toBe(401);
    expect(unkeyedOptions.headers.get('webhook-allowed-origin')).toBeNull();

    // Nothing at all in the bucket: no copy, no run state.
    expect(await listKeys(s3(), bucket)).toEqual([]);
    expect(watch.output()).not.toContain(KEY);
  });

  it('copies 1,000 blobs from BlobCreated events in batches of both schemas (latency printed)', async () => {
    const specs: BlobSpec[] = Array.from({ length: 1000 }, (_, i) => ({ name: `many/${String(i).padStart(4, '0')} ü+%.bin`, size: 1 + ((i * 7919) % 4096) }));
    await mapLimit(specs, 32, (spec) => uploadBlob(container, spec));
    const sentAt = new Map<string, number>();
    const seen = seenTimes(bucket, specs.map((s) => s.name), 'many/');
    for (let b = 0; b < 10; b++) {
      const changes = specs.slice(b * 100, (b + 1) * 100).map((s) => created(s.name, { size: s.size }));
      const cloud = b % 2 === 1;
      const at = Date.now();
      const answer = await deliver(watch.url, cloud ? cloudEventsBatch(changes) : eventGridBatch(changes), { key: KEY, schema: cloud ? 'cloudevents' : 'eventgrid' });
      expect(answer.status).toBe(200);
      for (const c of changes) sentAt.set(c.name, at);
    }
    const times = await seen;
    if (times.size < specs.length) console.log(watch.output().split('\n').filter((l) => !/ 200 100 /.test(l)).slice(0, 40).join('\n'), watch.errors().slice(-3000));
    const latencies = specs.map((s) => (times.get(s.name) ?? Number.NaN) - sentAt.get(s.name)!).sort((a, b) => a - b);
    expect(latencies.filter(Number.isNaN)).toEqual([]);
    console.log(`1,000 BlobCreated events -> objects: p50 ${(percentile(latencies, 50) / 1000).toFixed(2)} s, p99 ${(percentile(latencies, 99) / 1000).toFixed(2)} s, max ${(latencies[latencies.length - 1] / 1000).toFixed(2)} s`);
    await expectExactCopies(s3(), bucket, specs);
    // One line per batch, naming the schema and what it came to.
    expect(watch.output().match(/200 100 Event Grid events: 100 to copy/g)).toHaveLength(5);
    expect(watch.output().match(/200 100 CloudEvents events: 100 to copy/g)).toHaveLength(5);
  }, 400_000);

  it('keeps the newest version: a duplicate and an older event after a newer one copy nothing again', async () => {
    const name = 'versioned.txt';
    const blob = container.getBlockBlobClient(name);
    const v1 = await blob.upload('first version', 13);
    const first = created(name, { eTag: v1.etag });
    expect((await deliver(watch.url, eventGridBatch([first]), { key: KEY })).status).toBe(200);
    await waitFor('the first version', async () => ((await head(s3(), bucket, name).catch(() => undefined)) ? true : undefined));
    expect(await text(bucket, name)).toBe('first version');

    const v2 = await blob.upload('second, newer version', 21);
    const second = created(name, { eTag: v2.etag });
    expect((await deliver(watch.url, eventGridBatch([second]), { key: KEY })).status).toBe(200);
    await waitFor('the second version', async () => ((await text(bucket, name)) === 'second, newer version' ? true : undefined));
    const identity = async () => {
      const h = await s3().send(new HeadObjectCommand({ Bucket: bucket, Key: name }));
      return { etag: h.ETag, lastModified: h.LastModified, metadata: h.Metadata };
    };
    const copied = await identity();

    // The same event again, and the older one after it: each answered with nothing to copy.
    const before = watch.output().length;
    expect((await deliver(watch.url, eventGridBatch([second]), { key: KEY })).status).toBe(200);
    expect((await deliver(watch.url, cloudEventsBatch([first]), { key: KEY, schema: 'cloudevents' })).status).toBe(200);
    const lines = await watch.linesSince(before, 2);
    expect(lines).toEqual([
      expect.stringMatching(/ 200 1 Event Grid event: 0 to copy, 0 unchanged, 1 duplicates; run \S+-events$/),
      expect.stringMatching(/ 200 1 CloudEvents event: 0 to copy, 0 unchanged, 1 duplicates; run \S+-events$/),
    ]);
    expect(await text(bucket, name)).toBe('second, newer version');
    expect(await identity()).toEqual(copied);
  }, 120_000);

  it('copies a large blob through the multipart path', async () => {
    const spec: BlobSpec = { name: 'large/video.mp4', size: 12 * MiB + 7, singleShot: false };
    await uploadBlob(container, spec);
    expect((await deliver(watch.url, eventGridBatch([created(spec.name, { api: 'PutBlockList', size: spec.size })]), { key: KEY })).status).toBe(200);
    await waitFor('the large copy', async () => ((await listCopies(s3(), bucket)).includes(spec.name) ? true : undefined), 180_000);
    await expectExactCopies(s3(), bucket, [spec]);
    const etag = (await s3().send(new GetObjectCommand({ Bucket: bucket, Key: spec.name, Range: 'bytes=0-0' }))).ETag!;
    expect(etag).toMatch(/-3"$/);
  }, 200_000);

  it('does not follow a deletion unless mirroring, and shows the hour\'s run in status', async () => {
    await container.getBlobClient('versioned.txt').delete();
    const before = watch.output().length;
    expect((await deliver(watch.url, eventGridBatch([{ ...created('versioned.txt'), kind: 'deleted' }]), { key: KEY })).status).toBe(200);
    const answer = (await watch.linesSince(before)).join('\n');
    expect(answer).toMatch(/1 deletions not followed/);
    expect(await text(bucket, 'versioned.txt')).toBe('second, newer version');

    // This answer's run, not the first one in the output: the suite may have crossed an hour, which closes
    // the earlier hour's run.
    const runId = /run (\S+-events)/.exec(answer)![1];
    const status = await runCli(['status', '--bucket', bucket, '--s3-endpoint', emulators().s3Endpoint, '--run-id', runId, '--json']);
    expect(status.stderr).toBe('');
    expect(status.code).toBe(0);
    const parsed = JSON.parse(status.stdout);
    expect(parsed).toMatchObject({ runId, state: 'running' });
    expect(JSON.stringify(parsed)).not.toContain(KEY);
  }, 120_000);
});

describe('azs3copy watch --mirror', () => {
  it('deletes the copy of a deleted blob, and only a copy azs3copy wrote', async () => {
    const container = await newContainer();
    const bucket = await newBucket();
    const watch = await startWatch(container, bucket, ['--mirror']);
    try {
      let n = 0;
      const change = (name: string, kind: 'created' | 'deleted'): BlobChange => ({ container: container.containerName, name, kind, sequencer: ++n });
      await uploadBlob(container, { name: 'goes.txt', size: 10 });
      await uploadBlob(container, { name: 'stays.txt', size: 10 });
      expect((await deliver(watch.url, eventGridBatch([change('goes.txt', 'created'), change('stays.txt', 'created')]), { key: KEY })).status).toBe(200);
      await waitFor('both copies', async () => ((await listCopies(s3(), bucket)).length === 2 ? true : undefined));
      // An object another tool wrote, under a name whose blob does not exist either.
      await s3().send(new PutObjectCommand({ Bucket: bucket, Key: 'foreign.txt', Body: 'not ours' }));

      await container.getBlobClient('goes.txt').delete();
      const before = watch.output().length;
      const answer = await deliver(watch.url, eventGridBatch([change('goes.txt', 'deleted'), change('foreign.txt', 'deleted'), change('stays.txt', 'deleted')]), { key: KEY });
      expect(answer.status).toBe(200);
      // stays.txt exists at the source (its deletion event is wrong or stale): its copy stays.
      expect((await watch.linesSince(before)).join('\n')).toMatch(/3 Event Grid events: 0 to copy, 0 unchanged, 1 deleted, 2 deletions not followed/);
      expect((await listCopies(s3(), bucket)).sort()).toEqual(['foreign.txt', 'stays.txt']);
    } finally {
      await watch.stop();
    }
  }, 120_000);
});
