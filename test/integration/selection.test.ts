/**
 * Which blobs a run copies and what it does at the destination, through the command
 * line as users run it: every container of an account (equal names kept apart),
 * include/exclude globs and a size range, mirror and its guard, storage classes,
 * and the archive policy.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunReport } from '../../lambdas/core/report';
import { startAzurite, type AzuriteEmulator } from '../../lambdas/local/emulators';
import { digestOf, patternStream, uploadBlob } from '../../lambdas/local/seed';
import { runCli } from '../helpers/cli';
import { emulators, head, listCopies, newBucket, newContainer, objectDigest, s3 } from '../helpers/stores';

const MiB = 1024 * 1024;
const dir = mkdtempSync(join(tmpdir(), 'azs3copy-selection-'));
let reports = 0;

/** `azs3copy copy` against a container (or an account) and a bucket; its exit code, output and JSON report. */
async function copy(connectionString: string, bucket: string, args: string[]) {
  const report = join(dir, `report-${++reports}.json`);
  const result = await runCli(['copy', '--azure-connection-string', connectionString, '--s3-endpoint', emulators().s3Endpoint,
    '--bucket', bucket, '--report', report, '--quiet', ...args]);
  let parsed: RunReport | undefined;
  try {
    parsed = JSON.parse(readFileSync(report, 'utf8')) as RunReport;
  } catch {
    parsed = undefined;
  }
  return { ...result, report: parsed };
}

const sorted = (names: string[]) => [...names].sort();
let allBucket = '';
let namedBucket = '';
let oneBucket = '';

describe('every container of an account', () => {
  let azurite: AzuriteEmulator;
  beforeAll(async () => {
    // An account of its own: the shared one holds every other test's containers.
    azurite = await startAzurite({ inMemory: true });
  });
  afterAll(async () => azurite?.stop());

  it('copies three containers, two of them with the same names, into distinct keys; --container takes a list too', async () => {
    const service = BlobServiceClient.fromConnectionString(azurite.connectionString);
    const containers: Record<string, ContainerClient> = {};
    for (const name of ['alpha', 'beta', 'gamma']) {
      containers[name] = service.getContainerClient(name);
      await containers[name].create();
    }
    // Equal names in alpha and beta, different bytes.
    for (const name of ['alpha', 'beta']) {
      await uploadBlob(containers[name], { name: 'same.txt', size: 100, seed: name });
      await uploadBlob(containers[name], { name: 'dir/same.bin', size: 3000, seed: `${name}-bin` });
    }
    await uploadBlob(containers.gamma, { name: 'only-here.txt', size: 10, seed: 'gamma' });
    const client = s3();

    const all = await copy(azurite.connectionString, await newBucket(client).then((b) => (allBucket = b)), ['--all-containers', '--prefix', 'acct/']);
    expect(all.stderr).toBe('');
    expect(all.code).toBe(0);
    expect(sorted(all.report!.copied)).toEqual(['alpha/dir/same.bin', 'alpha/same.txt', 'beta/dir/same.bin', 'beta/same.txt', 'gamma/only-here.txt']);
    expect(all.report!.settings.containers).toBe(3);
    expect(sorted(await listCopies(client, allBucket, 'acct/'))).toEqual([
      'acct/alpha/dir/same.bin', 'acct/alpha/same.txt', 'acct/beta/dir/same.bin', 'acct/beta/same.txt', 'acct/gamma/only-here.txt',
    ]);
    for (const name of ['alpha', 'beta']) {
      expect(await objectDigest(client, allBucket, `acct/${name}/same.txt`)).toEqual(await digestOf(patternStream(name, 100)));
      expect(await objectDigest(client, allBucket, `acct/${name}/dir/same.bin`)).toEqual(await digestOf(patternStream(`${name}-bin`, 3000)));
    }

    // The same containers named: repeated and comma-separated; a run over one container keeps today's keys.
    const named = await copy(azurite.connectionString, await newBucket(client).then((b) => (namedBucket = b)), ['--container', 'alpha,beta', '--container', 'gamma']);
    expect(named.code).toBe(0);
    expect(sorted(await listCopies(client, namedBucket))).toEqual(['alpha/dir/same.bin', 'alpha/same.txt', 'beta/dir/same.bin', 'beta/same.txt', 'gamma/only-here.txt']);
    const one = await copy(azurite.connectionString, await newBucket(client).then((b) => (oneBucket = b)), ['--container', 'gamma']);
    expect(one.code).toBe(0);
    expect(await listCopies(client, oneBucket)).toEqual(['only-here.txt']);

    // Both ways of naming containers at once is a mistake, said in one line.
    const both = await copy(azurite.connectionString, oneBucket, ['--container', 'alpha', '--all-containers']);
    expect(both.code).toBe(2);
    expect(both.stderr.trim().split('\n')).toHaveLength(1);
    expect(both.stderr).toMatch(/--all-containers/);
  });
});
describe('filters', () => {
  // Built so that `*` (one segment) and `**` (any number) give different answers.
  const corpus = [
    { name: 'top.csv', size: 100 },
    { name: 'logs/a.csv', size: 100 },
    { name: 'logs/a.txt', size: 100 },
    { name: 'logs/2024/b.csv', size: 100 },
    { name: 'logs/2024/01/c.csv', size: 100 },
    { name: 'data/small.bin', size: 10 },
    { name: 'data/mid.bin', size: 2048 },
    { name: 'data/big.bin', size: 5000 },
  ];

  it('takes exactly the blobs the globs and the size range name, and counts the rest', async () => {
    const container = await newContainer();
    for (const spec of corpus) await uploadBlob(container, spec);
    const { connectionString } = emulators().azurite;
    const cases: { args: string[]; copied: string[] }[] = [
      { args: ['--include', 'logs/*.csv'], copied: ['logs/a.csv'] },
      { args: ['--include', 'logs/**/*.csv'], copied: ['logs/2024/01/c.csv', 'logs/2024/b.csv', 'logs/a.csv'] },
      { args: ['--include', 'logs/**', '--exclude', '**/01/**', '--exclude', '**/*.txt'], copied: ['logs/2024/b.csv', 'logs/a.csv'] },
      { args: ['--include', '*.csv'], copied: ['top.csv'] },
      { args: ['--include', 'logs/**', '--exclude', '*.txt'], copied: ['logs/2024/01/c.csv', 'logs/2024/b.csv', 'logs/a.csv', 'logs/a.txt'] },
      { args: ['--include', '**.csv', '--exclude', 'logs/*'], copied: ['logs/2024/01/c.csv', 'logs/2024/b.csv', 'top.csv'] },
      { args: ['--min-size', '1K', '--max-size', '4K'], copied: ['data/mid.bin'] },
      { args: ['--include', 'data/**', '--min-size', '11'], copied: ['data/big.bin', 'data/mid.bin'] },
    ];
    const client = s3();
    // Each case its own run into its own bucket, all at once.
    const results = await Promise.all(cases.map(async (c) => {
      const bucket = await newBucket(client);
      return { bucket, result: await copy(connectionString, bucket, ['--container', container.containerName, ...c.args]) };
    }));
    for (const [n, c] of cases.entries()) {
      const { bucket, result } = results[n];
      expect(result.code, `${c.args.join(' ')}: ${result.stderr}`).toBe(0);
      expect(sorted(result.report!.copied), c.args.join(' ')).toEqual(c.copied);
      // Filtered-out blobs are counted, not listed.
      expect(result.report!.filtered, c.args.join(' ')).toBe(corpus.length - c.copied.length);
      expect(result.report!.skipped).toEqual([]);
      expect(sorted(await listCopies(client, bucket))).toEqual(c.copied);
    }
  });

  it('refuses a bad size or an empty range in one line', async () => {
    const { connectionString } = emulators().azurite;
    for (const args of [['--min-size', 'ten'], ['--min-size', '2K', '--max-size', '1K'], ['--max-deletes', '-3', '--mirror']]) {
      const result = await copy(connectionString, 'no-such-bucket', ['--container', 'anything', ...args]);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
    }
  });
});

describe('mirror', () => {
  it('deletes only the copies whose blob is gone, keeps foreign and excluded objects, and its guard stops a mass delete', async () => {
    const container = await newContainer();
    const names = ['k1.txt', 'k2.txt', 'k3.txt', 'k4.txt', 'k5.txt', 'k6.txt', 'stays.txt', 'keep/excluded.txt'];
    for (const name of names) await uploadBlob(container, { name, size: 50 });
    await uploadBlob(container, { name: 'big.bin', size: 7 * MiB, singleShot: false });
    const client = s3();
    const bucket = await newBucket(client);
    const { connectionString } = emulators().azurite;
    const base = ['--container', container.containerName, '--prefix', 'm/', '--large-blob-mib', '6', '--part-mib', '5'];

    const first = await copy(connectionString, bucket, base);
    expect(first.code).toBe(0);
    expect(first.report!.copied).toHaveLength(names.length + 1);
    // Objects azs3copy did not write: under the prefix (no source metadata), and outside it with its metadata.
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'm/foreign.txt', Body: 'not ours' }));
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'elsewhere/k1.txt', Body: 'x', Metadata: (await head(client, bucket, 'm/k1.txt')).Metadata }));

    for (const name of ['k1.txt', 'k2.txt', 'keep/excluded.txt', 'big.bin']) await container.deleteBlob(name);
    const mirror = [...base, '--mirror', '--exclude', 'keep/**'];
    const mirrored = await copy(connectionString, bucket, mirror);
    expect(mirrored.stderr).toBe('');
    expect(mirrored.code).toBe(0);
    expect(mirrored.report!.mirror).toEqual({ planned: 3, deleted: ['m/big.bin', 'm/k1.txt', 'm/k2.txt'], notDeleted: [] });
    expect(mirrored.stdout).toMatch(/mirror deleted 3/);
    expect(sorted(await listCopies(client, bucket))).toEqual([
      'elsewhere/k1.txt', 'm/foreign.txt', 'm/k3.txt', 'm/k4.txt', 'm/k5.txt', 'm/k6.txt', 'm/keep/excluded.txt', 'm/stays.txt',
    ]);
    // The report names each deleted key, the page too.
    const html = await client.send(new (await import('@aws-sdk/client-s3')).GetObjectCommand({
      Bucket: bucket, Key: mirrored.report!.location!.html,
    })).then((o) => o.Body!.transformToString());
    for (const key of ['m/big.bin', 'm/k1.txt', 'm/k2.txt']) expect(html).toContain(key);

    // A mass delete: more than the guard allows deletes nothing, and the run fails in one clear line.
    for (const name of ['k3.txt', 'k4.txt', 'k5.txt', 'k6.txt']) await container.deleteBlob(name);
    const guarded = await copy(connectionString, bucket, [...mirror, '--max-deletes', '3']);
    expect(guarded.code).toBe(1);
    expect(guarded.stdout.split('\n')[0]).toMatch(/^mirror refused: mirror would delete 4 objects, more than the guard allows \(3\): nothing was deleted/);
    expect(guarded.report!.mirror).toMatchObject({ planned: 4, deleted: [] });
    expect(sorted(await listCopies(client, bucket, 'm/k')).filter((k) => /^m\/k\d/.test(k))).toEqual(['m/k3.txt', 'm/k4.txt', 'm/k5.txt', 'm/k6.txt']);

    // With the guard raised, they go.
    const allowed = await copy(connectionString, bucket, [...mirror, '--max-deletes', '4']);
    expect(allowed.code).toBe(0);
    expect(allowed.report!.mirror!.deleted).toEqual(['m/k3.txt', 'm/k4.txt', 'm/k5.txt', 'm/k6.txt']);
    expect(sorted(await listCopies(client, bucket))).toEqual(['elsewhere/k1.txt', 'm/foreign.txt', 'm/keep/excluded.txt', 'm/stays.txt']);
  });
});

describe('storage classes', () => {
  it('writes single and multipart copies in the class asked for, or by the blob\'s tier', async () => {
    const container = await newContainer();
    await uploadBlob(container, { name: 'hot.txt', size: 100, tier: 'Hot' });
    await uploadBlob(container, { name: 'cool.txt', size: 100, tier: 'Cool' });
    await uploadBlob(container, { name: 'cool-large.bin', size: 7 * MiB, singleShot: false, tier: 'Cool' });
    const client = s3();
    const { connectionString } = emulators().azurite;
    const base = ['--container', container.containerName, '--large-blob-mib', '6', '--part-mib', '5'];

    const one = await newBucket(client);
    const single = await copy(connectionString, one, [...base, '--storage-class', 'STANDARD_IA']);
    expect(single.code).toBe(0);
    for (const key of ['hot.txt', 'cool.txt', 'cool-large.bin']) expect((await head(client, one, key)).StorageClass, key).toBe('STANDARD_IA');

    const mapped = await newBucket(client);
    const byTier = await copy(connectionString, mapped, [...base, '--tier-map', 'Hot=STANDARD,Cool=GLACIER_IR']);
    expect(byTier.code).toBe(0);
    // S3 leaves StorageClass out of a HEAD for STANDARD.
    expect((await head(client, mapped, 'hot.txt')).StorageClass ?? 'STANDARD').toBe('STANDARD');
    expect((await head(client, mapped, 'cool.txt')).StorageClass).toBe('GLACIER_IR');
    expect((await head(client, mapped, 'cool-large.bin')).StorageClass).toBe('GLACIER_IR');
    expect(await objectDigest(client, mapped, 'cool-large.bin')).toEqual(await digestOf(patternStream('cool-large.bin', 7 * MiB)));

    for (const args of [['--storage-class', 'FROZEN'], ['--tier-map', 'Hot=STANDARD,Warm=STANDARD_IA'], ['--tier-map', 'Hot']]) {
      const refused = await copy(connectionString, one, [...base, ...args]);
      expect(refused.code, args.join(' ')).toBe(2);
      expect(refused.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
    }
  });
});

describe('archive policy', () => {
  it('skips archived blobs by default; with rehydrate starts their rehydration once, and a later run copies them', async () => {
    const container = await newContainer();
    await uploadBlob(container, { name: 'warm.txt', size: 100 });
    await uploadBlob(container, { name: 'cold/a.txt', size: 100, tier: 'Archive' });
    const client = s3();
    const bucket = await newBucket(client);
    const { connectionString } = emulators().azurite;
    const base = ['--container', container.containerName];

    const skipped = await copy(connectionString, bucket, base);
    expect(skipped.code).toBe(0);
    expect(skipped.report!.skipped).toEqual([{ name: 'cold/a.txt', reason: expect.stringMatching(/^archived:/) }]);

    const asked = await copy(connectionString, bucket, [...base, '--archive', 'rehydrate']);
    expect(asked.code).toBe(0);
    expect(asked.report!.skipped).toEqual([{ name: 'cold/a.txt', reason: expect.stringMatching(/^rehydrating: its rehydration to the Cool tier was started/) }]);
    expect(asked.report!.rehydrating).toBe(1);
    expect(asked.stdout).toMatch(/1 rehydrating/);
    // Azurite rehydrates at once (Azure takes hours); either way the blob was asked to go to Cool.
    const props = await container.getBlobClient('cold/a.txt').getProperties();
    expect(props.archiveStatus === 'rehydrate-pending-to-cool' || props.accessTier === 'Cool').toBe(true);

    const later = await copy(connectionString, bucket, [...base, '--archive', 'rehydrate']);
    expect(later.code).toBe(0);
    expect(later.report!.copied).toEqual(['cold/a.txt']);
    expect(await objectDigest(client, bucket, 'cold/a.txt')).toEqual(await digestOf(patternStream('cold/a.txt', 100)));
  });
});
