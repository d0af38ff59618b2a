/**
 * AWS's own template linter finds no error in the synthesized template (with a
 * created bucket and with an existing one). Skipped, saying so, where cfn-lint
 * is not installed (`pip install cfn-lint`).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { synthesize } from './synth';

const version = spawnSync('cfn-lint', ['--version'], { encoding: 'utf8' });
const installed = version.status === 0;

interface Finding {
  Level: 'Error' | 'Warning' | 'Informational';
  Rule: { Id: string };
  Message: string;
  Filename: string;
  Location: { Path: (string | number)[] };
}

const VARIANTS: Record<string, Record<string, unknown>> = {
  created: { alarmEmail: 'ops@example.com' },
  existing: { bucketName: 'my-existing-bucket', schedule: 'cron(0 2 * * ? *)' },
};

const describeLint = installed ? describe : describe.skip;
describeLint(`cfn-lint ${installed ? version.stdout.trim() : '(not on PATH: pip install cfn-lint to run these)'}`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'azs3copy-cfn-lint-'));
  let findings: Finding[] = [];
  beforeAll(() => {
    const templates = Object.entries(VARIANTS).map(([name, context]) => [name, synthesize(context).json] as const);
    // A control: the created template with one property CloudFormation does not know, which must be caught.
    const broken = structuredClone(templates[0][1]);
    Object.values(broken.Resources as Record<string, any>).find((r) => r.Type === 'AWS::SNS::Topic')!.Properties.Colour = 'blue';
    const files = [...templates, ['broken', broken] as const].map(([name, json]) => {
      const file = join(dir, `${name}.template.json`);
      writeFileSync(file, JSON.stringify(json, null, 1));
      return file;
    });
    const run = spawnSync('cfn-lint', ['--format', 'json', '--regions', 'eu-west-1', '--', ...files], { encoding: 'utf8' });
    // The exit status is a bit mask (2 errors, 4 warnings, 8 informational); 1 or more is cfn-lint itself failing.
    if (run.status === null || run.status & 1 || run.status > 15) throw new Error(`cfn-lint failed: ${run.stderr}`);
    findings = JSON.parse(run.stdout || '[]') as Finding[];
  }, 180_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('catches an error when there is one', () => {
    const errors = findings.filter((f) => f.Filename.endsWith('broken.template.json') && f.Level === 'Error');
    expect(errors.map((f) => f.Message).join('\n')).toContain('Colour');
  });

  it.each(Object.keys(VARIANTS))('reports no error for the template with a %s bucket', (name) => {
    const mine = findings.filter((f) => f.Filename.endsWith(`${name}.template.json`));
    const errors = mine.filter((f) => f.Level === 'Error').map((f) => `${f.Rule.Id} ${f.Message} at ${f.Location.Path.join('/')}`);
    expect(errors).toEqual([]);
    // CDK's own redundant DependsOn on each function's role (W3005) is the one warning expected.
    expect(mine.filter((f) => f.Level !== 'Error' && f.Rule.Id !== 'W3005').map((f) => `${f.Rule.Id} ${f.Message}`)).toEqual([]);
  });
});
