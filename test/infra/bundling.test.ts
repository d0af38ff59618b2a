/**
 * The bundles as deployed: NodejsFunction and the bench share one set of esbuild
 * settings; the layers provide what the bundles leave out; a bundle loads with
 * nothing but the layers beside it (the redrive's, which needs no Azure SDK, with
 * nothing at all); and a synth with bundling works offline without Docker.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AZURE_LAYERS, FUNCTION_BUNDLE, LAYER_MODULES, NODE_MAJOR, PROJECT_ROOT, buildLambdaTree, layerSourceDir, type AzureLayerName, type BuiltTree } from '../../lib/bundling';
import { LAMBDA_RUNTIME, functionBundling } from '../../lib/constructs/copy-function';
import { STAGE_NAMES } from '../../lambdas/core/stages/specs';
import { synthesize } from './synth';

const scratch = mkdtempSync(join(tmpdir(), 'azs3copy-bundling-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const readJson = (file: string) => JSON.parse(readFileSync(file, 'utf8'));

/** Import a bundle in a fresh Node process, outside the project, and say what its `handler` export is. */
function loadInFreshNode(file: string) {
  const script = `const m = await import(${JSON.stringify(pathToFileURL(file).href)}); process.stdout.write(typeof m.handler);`;
  return spawnSync(process.execPath, ['--enable-source-maps', '--input-type=module', '-e', script], {
    cwd: tmpdir(),
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH ?? '',
      AZS3COPY_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:x',
      AZS3COPY_RUN_TABLE: 'etl-azs3copy-runs',
      AWS_REGION: 'eu-west-1',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
  });
}

describe('settings', () => {
  it('gives NodejsFunction the shared esbuild settings: local, minified ESM with source maps, Azure SDK external', () => {
    const bundling = functionBundling();
    expect(bundling).toMatchObject({
      forceDockerBundling: false,
      format: 'esm',
      minify: true,
      sourceMap: true,
      target: `node${NODE_MAJOR}`,
      externalModules: [...LAYER_MODULES],
      banner: FUNCTION_BUNDLE.banner.js,
    });
    expect(LAMBDA_RUNTIME.name).toBe(`nodejs${NODE_MAJOR}.x`);
  });

  it('describes each layer with a manifest whose ranges are the project\'s own', () => {
    const root = readJson(join(PROJECT_ROOT, 'package.json')).dependencies as Record<string, string>;
    for (const [layer, packages] of Object.entries(AZURE_LAYERS)) {
      const manifest = readJson(join(layerSourceDir(layer as AzureLayerName), 'package.json'));
      expect(Object.keys(manifest.dependencies).sort()).toEqual([...packages].sort());
      for (const pkg of packages) expect(manifest.dependencies[pkg], pkg).toBe(root[pkg]);
    }
  });
});

describe('a bundle with its layers', () => {
  let bundle: BuiltTree['bundles'][string];
  let events: BuiltTree['bundles'][string];
  beforeAll(() => {
    const built = buildLambdaTree(join(scratch, 'tree'), ['parter', 'events']);
    bundle = built.bundles.parter;
    events = built.bundles.events;
  }, 180_000);

  it('imports the Azure SDK from the layers rather than carrying it', () => {
    const code = readFileSync(bundle.file, 'utf8');
    // A static import, or (@azure/identity, loaded only by a source that signs in to Entra ID) a dynamic one.
    for (const pkg of LAYER_MODULES) expect(code).toMatch(new RegExp(`(from\\s*|import\\(\\s*)"${pkg}"`));
    expect(code).not.toMatch(/class \w*ClientSecretCredential\b/);
    expect(existsSync(`${bundle.file}.map`)).toBe(true);
    for (const pkg of LAYER_MODULES) {
      const dir = join(scratch, 'tree', 'nodejs', 'node_modules', pkg);
      expect(readJson(join(dir, 'package.json'))).toMatchObject({ name: pkg, type: 'module', exports: { '.': './index.mjs' } });
    }
  });

  it('loads in a fresh Node process with only the layers beside it, and exports the handler', () => {
    const run = loadInFreshNode(bundle.file);
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe('function');
  });

  it('carries @azure/eventgrid in the events bundle (no layer provides it), which loads with only the layers beside it', () => {
    expect(LAYER_MODULES).not.toContain('@azure/eventgrid');
    const code = readFileSync(events.file, 'utf8');
    expect(code).not.toMatch(/from\s*"@azure\/eventgrid"/);
    expect(code).toContain('Microsoft.EventGrid.SubscriptionValidationEvent');
    const run = loadInFreshNode(events.file);
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe('function');
  });
});

describe('synth with bundling', () => {
  const outdir = join(scratch, 'cdk.out');
  let json: Record<string, any>;
  beforeAll(() => {
    // Any fall-back to Docker would fail here: CDK runs docker through CDK_DOCKER.
    const docker = process.env.CDK_DOCKER;
    process.env.CDK_DOCKER = join(scratch, 'no-docker-here');
    try {
      json = synthesize({}, { bundle: true, outdir }).json;
    } finally {
      if (docker === undefined) delete process.env.CDK_DOCKER;
      else process.env.CDK_DOCKER = docker;
    }
  }, 240_000);

  it('bundles the seven stage functions, the redrive and two layers locally, without Docker or the network', () => {
    const assetDirs = readdirSync(outdir).filter((d) => d.startsWith('asset.'));
    const functionAssets = assetDirs.filter((d) => existsSync(join(outdir, d, 'index.mjs')));
    expect(functionAssets).toHaveLength(STAGE_NAMES.length + 1);
    for (const d of functionAssets) expect(readdirSync(join(outdir, d)).sort()).toEqual(['index.mjs', 'index.mjs.map']);
    const layerAssets = assetDirs.filter((d) => existsSync(join(outdir, d, 'nodejs', 'node_modules')));
    expect(layerAssets).toHaveLength(2);
    const provided = layerAssets.flatMap((d) => LAYER_MODULES.filter((pkg) => existsSync(join(outdir, d, 'nodejs', 'node_modules', pkg, 'index.mjs'))));
    expect(provided.sort()).toEqual([...LAYER_MODULES].sort());
    const codeKeys = Object.values(json.Resources as Record<string, any>)
      .filter((r) => r.Type === 'AWS::Lambda::Function' || r.Type === 'AWS::Lambda::LayerVersion')
      .map((r) => (r.Properties.Code ?? r.Properties.Content).S3Key);
    expect(new Set(codeKeys).size).toBe(STAGE_NAMES.length + 1 + 2);
  });

  it('builds the redrive without the Azure SDK: it loads with no layer at all', () => {
    const fn = Object.values(json.Resources as Record<string, any>).find((r) => r.Properties?.FunctionName === 'etl-redrive')!;
    expect(fn.Properties.Layers).toBeUndefined();
    const file = join(outdir, `asset.${String(fn.Properties.Code.S3Key).replace(/\.zip$/, '')}`, 'index.mjs');
    expect(readFileSync(file, 'utf8')).not.toMatch(/@azure\//);
    const run = loadInFreshNode(file);
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe('function');
  });
});
