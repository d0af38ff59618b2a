/**
 * The stack as synthesized: the CDK app run in-process with bundling on, into a
 * cloud assembly on disk. The box reads only the assembly (the template file and
 * the asset directories), as `cdk deploy` would, never the constructs.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, join } from 'node:path';
import { stop as stopEsbuild } from 'esbuild';
import { PROJECT_ROOT } from '../../../lib/bundling';
import { synthesize } from '../../infra/synth';

export interface StackAssembly {
  /** The cloud assembly's directory. */
  dir: string;
  stackName: string;
  account: string;
  region: string;
  template: Record<string, any>;
  /** The directory holding the unzipped content of a Lambda Code/Content property. */
  assetDir(code: unknown, where: string): string;
}

interface AssetsManifest {
  files?: Record<string, { source: { path?: string; packaging?: string }; destinations: Record<string, { objectKey: string }> }>;
}

/** Synthesize the stack with `context` into `outdir` and read it back. */
export function synthesizeAssembly(context: Record<string, unknown>, outdir: string): StackAssembly {
  withFastSynth(join(outdir, '..', 'npx-shortcut'), () => synthesize(context, { bundle: true, outdir }));
  // The layers' buildSync leaves esbuild's service process running; nothing else needs it now (it restarts if asked).
  void stopEsbuild();
  return readAssembly(outdir);
}

/**
 * The same synth, minus two costs that do not change the assembly:
 * - aws-cdk-lib's built-in CloudFormation validation (a WebAssembly rule engine,
 *   about 10 s here; CDK_VALIDATION=false turns it off). test/infra checks the
 *   template against cfn-lint.
 * - NodejsFunction bundles each function with `npx --no-install esbuild ...`, and
 *   npx takes 2-3 s to start here. An `npx` first on PATH sends exactly that
 *   command to the project's own esbuild binary (the one npx would run) and
 *   anything else to the real npx.
 */
function withFastSynth<T>(dir: string, run: () => T): T {
  const saved = { PATH: process.env.PATH, CDK_VALIDATION: process.env.CDK_VALIDATION };
  process.env.CDK_VALIDATION = 'false';
  const esbuild = join(createRequire(join(PROJECT_ROOT, 'package.json')).resolve('esbuild/package.json'), '..', 'bin', 'esbuild');
  const npx = spawnSync('sh', ['-c', 'command -v npx'], { encoding: 'utf8' }).stdout.trim();
  try {
    if (npx && existsSync(esbuild)) process.env.PATH = `${npxShortcut(dir, esbuild, npx)}${delimiter}${saved.PATH ?? ''}`;
    return run();
  } finally {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
}

function npxShortcut(dir: string, esbuild: string, npx: string): string {
  mkdirSync(dir, { recursive: true });
  const shim = join(dir, 'npx');
  writeFileSync(
    shim,
    `#!/bin/sh\nif [ "$1" = "--no-install" ] && [ "$2" = "esbuild" ]; then shift 2; exec "${esbuild}" "$@"; fi\nexec "${npx}" "$@"\n`,
  );
  chmodSync(shim, 0o755);
  return dir;
}

/** Read the (single) stack of a cloud assembly directory. */
export function readAssembly(dir: string): StackAssembly {
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { artifacts: Record<string, any> };
  const stacks = Object.entries(manifest.artifacts).filter(([, a]) => a.type === 'aws:cloudformation:stack');
  if (stacks.length !== 1) throw new Error(`the assembly in ${dir} has ${stacks.length} stacks; the box runs exactly one`);
  const [artifactId, stack] = stacks[0];
  const env = /^aws:\/\/(\d{12}|unknown-account)\/([a-z0-9-]+|unknown-region)$/.exec(stack.environment ?? '');
  if (!env || env[1] === 'unknown-account' || env[2] === 'unknown-region') {
    throw new Error(`stack ${artifactId} has environment "${stack.environment}": give the stack an explicit account and region`);
  }
  const template = JSON.parse(readFileSync(join(dir, stack.properties.templateFile), 'utf8')) as Record<string, any>;

  // Object key of each asset (as the template's Code.S3Key names it) -> its directory in the assembly.
  const byObjectKey = new Map<string, string>();
  for (const artifact of Object.values(manifest.artifacts)) {
    if (artifact.type !== 'cdk:asset-manifest') continue;
    const assets = JSON.parse(readFileSync(join(dir, artifact.properties.file), 'utf8')) as AssetsManifest;
    for (const file of Object.values(assets.files ?? {})) {
      if (!file.source.path) continue;
      for (const destination of Object.values(file.destinations)) byObjectKey.set(destination.objectKey, join(dir, file.source.path));
    }
  }

  return {
    dir,
    stackName: stack.properties.stackName ?? artifactId,
    account: env[1],
    region: env[2],
    template,
    assetDir(code, where) {
      const c = (code ?? {}) as Record<string, unknown>;
      if (c.ZipFile !== undefined || c.ImageUri !== undefined) throw new Error(`${where}: inline or image code is not supported in the box`);
      const key = typeof c.S3Key === 'string' ? c.S3Key : undefined;
      const found = key ? byObjectKey.get(key) : undefined;
      if (!found || !existsSync(found)) throw new Error(`${where}: no asset directory in ${dir} for code ${JSON.stringify(code)}`);
      return found;
    },
  };
}
