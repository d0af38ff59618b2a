/**
 * The CDK app as `npx cdk synth` runs it: the command in cdk.json, which runs the
 * app prebuilt into dist/ (no TypeScript loader) and finds the project root from
 * there, since the layers are built from it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { recordingImports } from '../helpers/cli';

const ROOT = realpathSync(fileURLToPath(new URL('../..', import.meta.url)));
const scratch = mkdtempSync(join(tmpdir(), 'azs3copy-app-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

it('cdk.json runs the prebuilt app, which synthesizes the stack', () => {
  const cdk = JSON.parse(readFileSync(join(ROOT, 'cdk.json'), 'utf8')) as { app: string; context: Record<string, unknown> };
  const outdir = join(scratch, 'cdk.out');
  const recorder = recordingImports(join(scratch, 'imports'));

  // As the CDK CLI runs the app, with the function bundling skipped (bundling.test.ts covers it).
  const run = spawnSync(cdk.app, {
    shell: true,
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 120_000,
    env: {
      ...process.env,
      ...recorder.env,
      CDK_OUTDIR: outdir,
      CDK_CONTEXT_JSON: JSON.stringify({ ...cdk.context, 'aws:cdk:bundling-stacks': [] }),
    },
  });

  expect(run.stderr).toBe('');
  expect(run.status).toBe(0);
  expect(recorder.imports()).toContain(`file://${ROOT}/dist/app.mjs`);
  expect(recorder.imports().filter((url) => /\/node_modules\/(tsx|typescript)\/|\.m?tsx?$/.test(url))).toEqual([]);
  const template = JSON.parse(readFileSync(join(outdir, 'Azs3copy.template.json'), 'utf8'));
  expect(Object.values(template.Resources as Record<string, { Type: string }>).filter((r) => r.Type === 'AWS::Lambda::LayerVersion')).toHaveLength(2);
});
