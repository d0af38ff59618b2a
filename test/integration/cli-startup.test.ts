/**
 * How the `azs3copy` command starts: from the JavaScript prebuilt into dist/, never
 * through a TypeScript loader; loading an SDK only when a command needs it (help,
 * a bad flag, a missing flag and check-secret load none); and never from a build
 * older than its sources. Timings are in the README, not here: the machine is shared.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AZURITE_KEY } from '../../lambdas/local/emulators';
import { USAGE } from '../../lambdas/local/usage';
import { runCli, recordingImports } from '../helpers/cli';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'azs3copy-startup-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SDK = /^(@aws-sdk|@smithy|@azure|@aws-lambda-powertools)\//;
const TYPESCRIPT = /\/node_modules\/(tsx|esbuild|typescript)\/|\.m?tsx?$/;

/** A secret switched off: a copy from it loads the pipeline, then stops before any request. */
const SECRET = join(dir, 'off.json');
writeFileSync(SECRET, JSON.stringify({
  connectionstring: `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${AZURITE_KEY};BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;`,
  container: 'c01',
  isactive: 'False',
}));

/** Run the command with its imports recorded: files imported, and the packages in them (bundled or not). */
async function runRecorded(name: string, args: string[]) {
  const recorder = recordingImports(join(dir, `${name}.imports`));
  const result = await runCli(args, recorder.env);
  const imports = recorder.imports();
  return { ...result, imports, packages: packagesIn(imports) };
}

/**
 * The packages these imports loaded: those imported from node_modules, and those the build bundled into the
 * dist/ files imported (its stamp names them, from esbuild's record of what went into each file).
 */
function packagesIn(imports: string[]): string[] {
  const bundled = (JSON.parse(readFileSync(join(ROOT, 'dist/build.json'), 'utf8')) as { packages: Record<string, string[]> }).packages;
  const names = new Set<string>();
  for (const url of imports) {
    const path = url.startsWith('file://') ? fileURLToPath(url) : url;
    const fromModules = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(path);
    if (fromModules) names.add(fromModules[1]);
    const inDist = path.startsWith(join(realpathSync(ROOT), 'dist') + '/') ? path.slice(realpathSync(ROOT).length + 1) : undefined;
    for (const name of (inDist && bundled[inDist]) || []) names.add(name);
  }
  return [...names].sort();
}

describe('azs3copy starts from dist/', () => {
  it.each([
    { name: 'help', args: ['--help'], code: 0 },
    { name: 'bad-flag', args: ['copy', '--nope'], code: 2 },
    { name: 'missing-flag', args: ['copy', '--container', 'c01'], code: 2 },
    { name: 'check-secret', args: ['check-secret', SECRET], code: 0 },
  ])('$name runs the prebuilt bundle and loads no SDK', async ({ name, args, code }) => {
    const result = await runRecorded(name, args);

    expect(result.code).toBe(code);
    expect(result.imports).toContain(`file://${realpathSync(ROOT)}/dist/azs3copy.mjs`);
    expect(result.packages.filter((name) => SDK.test(name))).toEqual([]);
    expect(result.imports.filter((url) => TYPESCRIPT.test(url))).toEqual([]);
  });

  it('help prints the usage on stdout and nothing on stderr', async () => {
    expect(await runCli(['--help'])).toEqual({ code: 0, stdout: USAGE, stderr: '' });
  });

  it('copy loads the SDKs once its flags are checked (so the recording would show them)', async () => {
    const result = await runRecorded('copy', ['copy', '--secret-file', SECRET, '--bucket', 'b01', '--quiet']);

    expect(result).toMatchObject({ code: 0, stdout: 'run not started: the copy is switched off ("isactive" is false in the configuration)\n', stderr: '' });
    expect(result.packages).toEqual(expect.arrayContaining(['@aws-sdk/client-s3', '@azure/storage-blob']));
    expect(result.imports.filter((url) => TYPESCRIPT.test(url))).toEqual([]);
  });
});

describe('a missing or stale build', () => {
  const project = join(dir, 'project');
  const usage = join(project, 'lambdas/local/usage.ts');
  const cli = (args: string[]) => {
    const { status, stdout, stderr } = spawnSync(process.execPath, [join(project, 'bin/azs3copy.mjs'), ...args], { encoding: 'utf8', timeout: 60_000 });
    return { code: status, stdout, stderr };
  };

  beforeAll(() => {
    // The project's sources and packages, and no dist/.
    for (const part of ['bin', 'lambdas', 'lib', 'package.json', 'tsconfig.json']) cpSync(join(ROOT, part), join(project, part), { recursive: true });
    symlinkSync(realpathSync(join(ROOT, 'node_modules')), join(project, 'node_modules'));
  });

  it('is built before the command runs', () => {
    expect(existsSync(join(project, 'dist'))).toBe(false);

    expect(cli(['--help'])).toEqual({ code: 0, stdout: USAGE, stderr: '' });
    expect(existsSync(join(project, 'dist/build.json'))).toBe(true);
  });

  it('is rebuilt when a source changed, so the command runs the change', () => {
    writeFileSync(usage, readFileSync(usage, 'utf8').replace('copy Azure Blob Storage containers', 'copy a changed container'));

    const result = cli(['--help']);

    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^azs3copy: copy a changed container into an S3 bucket\n/);
  });

  it('that cannot be rebuilt stops the command with one line saying how to build', () => {
    writeFileSync(usage, 'export const USAGE = ;\n');

    const result = cli(['--help']);

    expect(result.code).toBe(3);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(
      /^azs3copy: dist\/ is missing or older than the sources, and rebuilding it failed \(lambdas\/local\/usage\.ts:1:\d+: [^\n]+\): fix that, then run "npm run build"\n$/,
    );
  });
});
