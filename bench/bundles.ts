/**
 * Cold start of the deployed functions: builds each function bundle and the
 * Azure SDK layers with the deployment's own esbuild settings (lib/bundling.ts),
 * lays them out as Lambda does (layers in nodejs/node_modules), then loads each
 * bundle in a fresh Node process and times its module initialisation, with and
 * without the source-map support the functions run with.
 *
 *   npx tsx bench/bundles.ts            (BENCH_BUNDLE_RUNS=N for more runs; 7 by default)
 *
 * The figure is this machine's, on this Node version: Lambda's arm64 CPU at a
 * function's memory size differs, so compare bundles with each other, not with
 * Lambda's reported Init Duration.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { STAGE_NAMES } from '../lambdas/core/stages';
import { FUNCTION_NODE_OPTIONS, buildLambdaTree } from '../lib/bundling';

const RUNS = Number(process.env.BENCH_BUNDLE_RUNS ?? 7);
const KiB = 1024;

/** What a handler module needs at load: the variables the stack sets, none of them reachable. */
const FUNCTION_ENV = {
  AZS3COPY_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:etl-azure-source-AbCdEf',
  AZS3COPY_BUCKET: 'bench-bucket',
  AZS3COPY_RUN_TABLE: 'etl-runs',
  AWS_REGION: 'eu-west-1',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
};

interface Init {
  /** Wall-clock milliseconds of the import. */
  wall: number;
  /** CPU milliseconds (user + system) the import took: steadier than wall time on a busy machine. */
  cpu: number;
}

/** Time the import of `target` (a file, or a bare package name resolved from `from`) in a fresh process. */
function init(target: string, from: string, nodeOptions: string[]): Init {
  const specifier = target.startsWith('/') ? pathToFileURL(target).href : target;
  const script = [
    'const c0 = process.cpuUsage(); const t0 = performance.now();',
    `const mod = await import(${JSON.stringify(specifier)});`,
    'const wall = performance.now() - t0; const c = process.cpuUsage(c0);',
    `if (${target.startsWith('/')} && typeof mod.handler !== 'function') throw new Error('no handler export');`,
    'process.stdout.write(JSON.stringify({ wall, cpu: (c.user + c.system) / 1000 }));',
  ].join('\n');
  const run = spawnSync(process.execPath, [...nodeOptions, '--input-type=module', '-e', script], {
    cwd: from,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', ...FUNCTION_ENV },
  });
  if (run.status !== 0) throw new Error(`loading ${target} failed: ${run.stderr.trim().split('\n').find((l) => /^\w*Error\b/.test(l)) ?? run.stderr.trim().slice(-300)}`);
  return JSON.parse(run.stdout) as Init;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** Median wall and CPU milliseconds over RUNS fresh processes, as table cells. */
function measure(target: string, from: string, nodeOptions: string[]): [string, string] {
  const runs = Array.from({ length: RUNS }, () => init(target, from, nodeOptions));
  return [median(runs.map((r) => r.wall)).toFixed(0), median(runs.map((r) => r.cpu)).toFixed(0)];
}

function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(cells[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

export function benchBundles(): string {
  const root = mkdtempSync(join(tmpdir(), 'azs3copy-bundles-'));
  try {
    const started = Date.now();
    const tree = buildLambdaTree(root, STAGE_NAMES);
    const buildSeconds = (Date.now() - started) / 1000;
    const nodejs = join(root, 'nodejs');
    const layerRows = tree.layers.map((l) => [`layer ${l.pkg}@${l.version}`, (l.bytes / KiB).toFixed(0), '', ...measure(l.pkg, nodejs, []), '', '']);
    const functionRows = STAGE_NAMES.map((stage) => {
      const b = tree.bundles[stage];
      return [
        stage,
        (b.bytes / KiB).toFixed(0),
        (b.mapBytes / KiB).toFixed(0),
        ...measure(b.file, nodejs, []),
        ...measure(b.file, nodejs, [FUNCTION_NODE_OPTIONS]),
      ];
    });
    return [
      `Function bundles (minified ESM, Azure SDK from the layers), Node ${process.version}, median of ${RUNS} fresh processes; built in ${buildSeconds.toFixed(1)} s`,
      table(['bundle', 'KiB', 'map KiB', 'init ms', 'cpu ms', 'init ms (source maps)', 'cpu ms (source maps)'], [...functionRows, ...layerRows]),
      `A function's init includes loading both layers; a layer row is that layer alone. "Source maps" runs with ${FUNCTION_NODE_OPTIONS}, as deployed.`,
    ].join('\n');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log(benchBundles());
}
