/**
 * How the functions and the Azure SDK layers are built, in one place: the CDK
 * constructs (NodejsFunction, the layer assets) and `bench/bundles.ts` derive
 * their esbuild settings from here, so a benchmarked bundle is the deployed one.
 *
 * Everything runs esbuild from the project's own node_modules: no Docker, no
 * network, no `npm install` at synth time.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync, type BuildOptions } from 'esbuild';
import type { StageName } from '../lambdas/core/stages';

/**
 * The project root (where package.json and node_modules are): the nearest directory
 * above this module with a package.json, which holds for lib/bundling.ts and for the
 * CDK app's bundle in dist/ (bin/build.mjs) alike.
 */
export const PROJECT_ROOT = projectRootAbove(dirname(fileURLToPath(import.meta.url)));

function projectRootAbove(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json in ${start} or above it: cannot find the project root`);
  }
}

/** Node.js major version of the Lambda runtime; the esbuild target follows it. */
export const NODE_MAJOR = 24;

/**
 * An ESM bundle may still contain `require()` calls from CommonJS dependencies;
 * give the module a real `require` so they work.
 */
const REQUIRE_SHIM = "import{createRequire as __azs3copyRequire}from'node:module';const require=__azs3copyRequire(import.meta.url);";

/** The Azure SDK layers: the layer's directory under `layers/` and the packages it provides. */
export const AZURE_LAYERS = {
  'azure-identity': ['@azure/identity'],
  'azure-storage': ['@azure/storage-blob'],
} as const satisfies Record<string, readonly string[]>;
export type AzureLayerName = keyof typeof AZURE_LAYERS;

/** What a function bundle leaves out because a layer provides it. */
export const LAYER_MODULES: readonly string[] = Object.values(AZURE_LAYERS).flat();

/** Settings common to the function bundles and the layer bundles. */
const COMMON = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: `node${NODE_MAJOR}`,
  minify: true,
  // Error classes keep their names in stack traces and `error.name` checks.
  keepNames: true,
  mainFields: ['module', 'main'],
  banner: { js: REQUIRE_SHIM },
  legalComments: 'none',
  logLevel: 'warning',
} as const satisfies BuildOptions;

/** The esbuild settings of a function bundle, as data both consumers read. */
export const FUNCTION_BUNDLE = {
  ...COMMON,
  sourcemap: true,
  // Stack traces need the mappings, not the sources: a third of the map's size.
  sourcesContent: false,
  external: LAYER_MODULES,
} as const;

/**
 * NODE_OPTIONS of every function: stack traces in the logs point into lambdas/
 * through the source maps. It costs some init time; bench/bundles.ts measures how much.
 */
export const FUNCTION_NODE_OPTIONS = '--enable-source-maps';

/** A deployed function's handler directory under `lambdas/`: a stage's, or the operator's redrive. */
export type FunctionEntry = StageName | 'redrive';

/** The handler source of a function. */
export function entryOf(entry: FunctionEntry): string {
  return join(PROJECT_ROOT, 'lambdas', entry, 'index.ts');
}

/** esbuild options for one function bundle written to `outfile` (used by the bench). */
export function functionBuildOptions(entry: FunctionEntry, outfile: string): BuildOptions {
  return {
    ...FUNCTION_BUNDLE,
    external: [...FUNCTION_BUNDLE.external],
    mainFields: [...FUNCTION_BUNDLE.mainFields],
    entryPoints: [entryOf(entry)],
    outfile,
    absWorkingDir: PROJECT_ROOT,
  };
}

/** The version of a package as installed in the project. */
export function installedVersion(pkg: string): string {
  const require = createRequire(join(PROJECT_ROOT, 'package.json'));
  return (JSON.parse(readFileSync(require.resolve(`${pkg}/package.json`), 'utf8')) as { version: string }).version;
}

/** The directory of a layer's manifest (`layers/<name>/package.json`). */
export function layerSourceDir(layer: AzureLayerName): string {
  return join(PROJECT_ROOT, 'layers', layer);
}

/**
 * Build a layer's content into `outputDir`: each package it provides becomes one
 * minified ESM file at `nodejs/node_modules/<package>/index.mjs`, with a
 * package.json naming the installed version. This is where Lambda's Node.js
 * runtime looks for layer modules (`/opt/nodejs/node_modules`).
 */
export function buildLayer(layer: AzureLayerName, outputDir: string): { pkg: string; version: string; bytes: number }[] {
  return AZURE_LAYERS[layer].map((pkg) => {
    const dir = join(outputDir, 'nodejs', 'node_modules', ...pkg.split('/'));
    mkdirSync(dir, { recursive: true });
    const version = installedVersion(pkg);
    const result = buildSync({
      ...COMMON,
      mainFields: [...COMMON.mainFields],
      stdin: { contents: `export * from '${pkg}';`, resolveDir: PROJECT_ROOT, loader: 'js' },
      outfile: join(dir, 'index.mjs'),
      absWorkingDir: PROJECT_ROOT,
      metafile: true,
    });
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify({ name: pkg, version, type: 'module', main: './index.mjs', exports: { '.': './index.mjs' } }, null, 2) + '\n',
    );
    const bytes = Object.values(result.metafile!.outputs).reduce((sum, o) => sum + o.bytes, 0);
    return { pkg, version, bytes };
  });
}

export interface BuiltTree {
  /** Where a function's bundle is: `<root>/nodejs/<stage>/index.mjs`, beside the layers' node_modules. */
  bundles: Record<string, { file: string; bytes: number; mapBytes: number }>;
  layers: { pkg: string; version: string; bytes: number }[];
}

/**
 * Build the layers and the given stages' bundles into one tree, the way Lambda
 * lays them out for a function: the layers merged into `nodejs/node_modules`, and
 * each bundle where walking up from it finds them (and nothing else of the project's).
 */
export function buildLambdaTree(root: string, stages: readonly FunctionEntry[]): BuiltTree {
  const layers = (Object.keys(AZURE_LAYERS) as AzureLayerName[]).flatMap((layer) => buildLayer(layer, root));
  const bundles: BuiltTree['bundles'] = {};
  for (const stage of stages) {
    const file = join(root, 'nodejs', stage, 'index.mjs');
    const result = buildSync({ ...functionBuildOptions(stage, file), metafile: true });
    const outputs = result.metafile!.outputs;
    const size = (suffix: string) => Object.entries(outputs).find(([path]) => path.endsWith(suffix))?.[1].bytes ?? 0;
    bundles[stage] = { file, bytes: size('index.mjs'), mapBytes: size('index.mjs.map') };
  }
  return { bundles, layers };
}
