/**
 * A dry run, as a user starts one: `azs3copy copy --secret-file` with
 * `"dryrun": true` lists and compares, copies nothing, ends complete, and leaves
 * its plan at the run's report location; `azs3copy plan` over two containers
 * plans each under its own prefix, naming blobs by container as a copy of both
 * reports them; a plan (and a dry run) of a selection with mirror and the
 * rehydrate policy counts what that copy would take, delete and rehydrate, and
 * deletes and rehydrates nothing itself, and the copy then does as planned; a
 * price region the list does not hold is refused in one line; a copy given a
 * file that is not a plan is refused in one line.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import type { ContainerClient } from '@azure/storage-blob';
import { beforeAll, describe, expect, it } from 'vitest';
import type { PlanReport } from '../../lambdas/core/cost/plan-report';
import { reportKeys, type RunReport } from '../../lambdas/core/report';
import { uploadBlob } from '../../lambdas/local/seed';
import { runCli } from '../helpers/cli';
import { emulators, listCopies, newBucket, newContainer, s3 } from '../helpers/stores';

const dir = mkdtempSync(join(tmpdir(), 'azs3copy-dry-'));

describe('a dry run', () => {
  const client = s3();
  let bucket: string;
  let names: string[];

  beforeAll(async () => {
    bucket = await newBucket(client);
    const containers = await Promise.all([newContainer(), newContainer()]);
    names = containers.map((c) => c.containerName);
    await Promise.all([
      ...[1, 2, 3].map((i) => uploadBlob(containers[0], { name: `a/${i}.txt`, size: 100 * i })),
      uploadBlob(containers[1], { name: 'b/only.txt', size: 7 }),
    ]);
  });

  it('from a secret with "dryrun": true copies nothing and leaves the plan as the run\'s report', async () => {
    const secret = join(dir, 'secret.json');
    writeFileSync(secret, JSON.stringify({ connectionstring: emulators().azurite.connectionString, container: names[0], isactive: 'True', dryrun: 'true' }));
    const out = await runCli(['copy', '--secret-file', secret, '--bucket', bucket, '--s3-endpoint', emulators().s3Endpoint, '--quiet']);
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(/to copy\s+3 objects, 600 B/);
    const where = /plan in the bucket: s3:\/\/[^/]+\/(\.azs3copy-state\/runs\/([^/]+)\/report\.html)/.exec(out.stdout);
    expect(where).not.toBeNull();
    const runId = where![2];
    const body = await client.send(new GetObjectCommand({ Bucket: bucket, Key: reportKeys(runId).json }));
    const plan = JSON.parse(await body.Body!.transformToString()) as PlanReport;
    expect(plan).toMatchObject({ kind: 'plan', runId, copy: ['a/1.txt', 'a/2.txt', 'a/3.txt'], unchanged: 0, skip: [], fail: [] });
    expect(plan.cost.totalUsd).toBeGreaterThan(0);
    const html = await client.send(new GetObjectCommand({ Bucket: bucket, Key: reportKeys(runId).html }));
    expect(await html.Body!.transformToString()).toContain('azs3copy plan');
    expect(await listCopies(client, bucket)).toEqual([]);
    // The run ended complete, as status shows it.
    const status = await runCli(['status', '--bucket', bucket, '--s3-endpoint', emulators().s3Endpoint, '--run-id', runId, '--json']);
    expect(JSON.parse(status.stdout)).toMatchObject({ runId, state: 'complete', copied: 0, listed: 3 });
  });

  it('of two containers plans each under its own prefix, in one plan', async () => {
    const file = join(dir, 'two.json');
    const out = await runCli([
      'plan', '--azure-connection-string', emulators().azurite.connectionString, '--container', names[0], '--container', names[1],
      '--bucket', bucket, '--s3-endpoint', emulators().s3Endpoint, '--prefix', 'mig/', '--region', 'eu-west-1', '--report', file,
    ]);
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    const plan = JSON.parse(readFileSync(file, 'utf8')) as PlanReport;
    expect(plan.source.containers).toEqual([...names].sort());
    // Named as a copy of several containers reports them: <container>/<blob name>.
    expect(plan.copy).toEqual([...['a/1.txt', 'a/2.txt', 'a/3.txt'].map((n) => `${names[0]}/${n}`), `${names[1]}/b/only.txt`].sort());
    expect(plan.prices.region).toBe('eu-west-1');
    expect(plan.requests.azure.ListBlobs).toBe(4);
    expect(out.stdout).toContain('eu-west-1 prices');
  });

  it('refuses a price region the list does not hold, and a plan file that is not one, in one line', async () => {
    const flags = ['--azure-connection-string', emulators().azurite.connectionString, '--container', names[0], '--bucket', bucket, '--s3-endpoint', emulators().s3Endpoint];
    const region = await runCli(['plan', ...flags, '--region', 'mars-north-1']);
    expect(region).toEqual({
      code: 2, stdout: '',
      stderr: 'azs3copy: --region is "mars-north-1", which the price list does not hold: use us-east-1 or eu-west-1 (prices in lambdas/core/cost/prices.json)\n',
    });
    const notPlan = join(dir, 'not-plan.json');
    writeFileSync(notPlan, JSON.stringify({ runId: 'x', copied: [] }));
    const copy = await runCli(['copy', ...flags, '--plan', notPlan]);
    expect(copy).toEqual({ code: 2, stdout: '', stderr: `azs3copy: ${notPlan} is not a plan of azs3copy: give the file "azs3copy plan --report" wrote\n` });
  });
});

describe('a plan of a selection, then its copy', () => {
  const MiB = 1024 * 1024;
  const client = s3();
  let bucket: string;
  let container: ContainerClient;
  let flags: string[];

  beforeAll(async () => {
    bucket = await newBucket(client);
    container = await newContainer();
    await Promise.all([
      uploadBlob(container, { name: 'keep/a.txt', size: 100 }),
      uploadBlob(container, { name: 'keep/b.txt', size: 5000 }),
      uploadBlob(container, { name: 'keep/tiny.txt', size: 5 }),
      uploadBlob(container, { name: 'keep/big.bin', size: 7 * MiB, singleShot: false }),
      uploadBlob(container, { name: 'keep/gone-1.txt', size: 10 }),
      uploadBlob(container, { name: 'keep/gone-2.txt', size: 20 }),
      uploadBlob(container, { name: 'keep/cold.txt', size: 100, tier: 'Archive' }),
      uploadBlob(container, { name: 'other/x.txt', size: 100 }),
    ]);
    const base = ['--azure-connection-string', emulators().azurite.connectionString, '--container', container.containerName,
      '--bucket', bucket, '--s3-endpoint', emulators().s3Endpoint, '--prefix', 'p/', '--large-blob-mib', '6', '--part-mib', '5'];
    const first = await runCli(['copy', ...base, '--include', 'keep/**', '--quiet']);
    expect(first.code).toBe(0);
    // Since then: two blobs gone (their copies are the mirror's to delete), one new.
    await Promise.all([container.deleteBlob('keep/gone-1.txt'), container.deleteBlob('keep/gone-2.txt')]);
    await uploadBlob(container, { name: 'keep/new.txt', size: 300 });
    flags = [...base, '--include', 'keep/**', '--min-size', '10', '--archive', 'rehydrate', '--mirror', '--storage-class', 'STANDARD_IA'];
  });

  const archived = async () => {
    const props = await container.getBlobClient('keep/cold.txt').getProperties();
    return { tier: props.accessTier, status: props.archiveStatus };
  };

  it('says when the mirror\'s guard would refuse the deletions, and prices none (before the copy below makes them)', async () => {
    const file = join(dir, 'refused.json');
    const out = await runCli(['plan', ...flags, '--max-deletes', '1', '--report', file]);
    expect(out.code).toBe(0);
    const plan = JSON.parse(readFileSync(file, 'utf8')) as PlanReport;
    expect(plan.mirror).toMatchObject({ delete: ['p/keep/gone-1.txt', 'p/keep/gone-2.txt'], guard: 1, refused: expect.stringMatching(/^mirror would delete 2/) });
    expect(plan.local.requests.s3.DeleteObjects).toBeUndefined();
    expect(out.stdout).toMatch(/to delete\s+2 copies whose blob is gone \(mirror\), 30 B; the guard allows 1\n\s+REFUSED: mirror would delete 2 objects, more than the guard allows \(1\): a copy would delete nothing and fail/);
  });

  it('counts what the copy would take, delete and rehydrate; deletes and rehydrates nothing, nor does a dry run', async () => {
    const before = await listCopies(client, bucket);
    const file = join(dir, 'selection.json');
    const out = await runCli(['plan', ...flags, '--report', file]);
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    const plan = JSON.parse(readFileSync(file, 'utf8')) as PlanReport;
    expect(plan).toMatchObject({
      copy: ['keep/new.txt'], unchanged: 3, filtered: 2, fail: [],
      skip: [{ name: 'keep/cold.txt', reason: expect.stringMatching(/^rehydrating:/) }],
      rehydrate: { objects: 1, bytes: 100 },
      mirror: { delete: ['p/keep/gone-1.txt', 'p/keep/gone-2.txt'], bytes: 30, guard: 1000 },
      settings: { filters: { include: ['keep/**'], minSize: 10 }, storage: 'STANDARD_IA', archive: 'rehydrate', mirror: true },
    });
    expect(plan.local.requests.s3).toMatchObject({ DeleteObjects: 1 });
    expect(plan.local.requests.azure).toMatchObject({ SetBlobTier: 1 });
    expect(out.stdout).toMatch(/selection\s+include keep\/\*\*; at least 10 bytes; storage class STANDARD_IA; archived blobs: rehydrate; mirror/);
    expect(out.stdout).toMatch(/to delete\s+2 copies whose blob is gone \(mirror\), 30 B; the guard allows 1,000/);
    expect(out.stdout).toMatch(/of which 1 archived, 100 B, whose rehydration to Cool a copy starts/);
    expect(out.stdout).toMatch(/Set Blob Tier \(rehydrate from Archive, standard priority\)/);
    expect(await listCopies(client, bucket)).toEqual(before);
    expect(await archived()).toEqual({ tier: 'Archive', status: undefined });

    // A dry run of the same copy keeps its plan in the bucket's state, and deletes nothing either.
    const dry = await runCli(['copy', ...flags, '--dry-run', '--quiet']);
    expect(dry.stderr).toBe('');
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/to delete\s+2 copies whose blob is gone/);
    expect(await listCopies(client, bucket)).toEqual(before);
    expect(await archived()).toEqual({ tier: 'Archive', status: undefined });

    // The copy then does as planned.
    const reportFile = join(dir, 'selection-report.json');
    const copied = await runCli(['copy', ...flags, '--plan', file, '--report', reportFile, '--quiet']);
    expect(copied.stderr).toBe('');
    expect(copied.code).toBe(0);
    const report = JSON.parse(readFileSync(reportFile, 'utf8')) as RunReport;
    expect(report.copied).toEqual(plan.copy);
    expect(report.skipped).toEqual(plan.skip);
    expect(report.unchanged).toBe(plan.unchanged);
    expect(report.filtered).toBe(plan.filtered);
    expect(report.mirror?.deleted).toEqual(plan.mirror?.delete);
    expect(report.costs?.actual.requests.s3).toMatchObject({ DeleteObjects: 1 });
    expect(report.costs?.actual.requests.azure).toMatchObject({ SetBlobTier: 1 });
    expect(await listCopies(client, bucket)).toEqual(before.filter((k) => !k.startsWith('p/keep/gone-')).concat('p/keep/new.txt').sort());
  });
});
