/**
 * A dry run, as a user starts one: `azs3copy copy --secret-file` with
 * `"dryrun": true` lists and compares, copies nothing, ends complete, and leaves
 * its plan at the run's report location; `azs3copy plan` over two containers
 * plans each under its own prefix, as a copy of both would land them; a price
 * region the list does not hold is refused in one line; a copy given a file that
 * is not a plan is refused in one line.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, it } from 'vitest';
import type { PlanReport } from '../../lambdas/core/cost/plan-report';
import { reportKeys } from '../../lambdas/core/report';
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
    const plan = JSON.parse((await import('node:fs')).readFileSync(file, 'utf8')) as PlanReport;
    expect(plan.source.containers).toEqual([...names].sort());
    expect(plan.copy).toEqual(['a/1.txt', 'a/2.txt', 'a/3.txt', 'b/only.txt']);
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
