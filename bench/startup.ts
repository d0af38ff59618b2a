/**
 * `azs3copy --help` start-up, as users run it: `node bin/azs3copy.mjs --help`, the prebuilt
 * command, in its own process under /usr/bin/time (wall from spawn to exit, user + system CPU).
 * One warm-up run (the page cache), then RUNS timed runs; the median wall time is checked against
 * the bound (0.3 s), the best and the slowest beside it. Bare Node (`node -e ''`) is timed
 * the same way, interleaved, as the floor: on a loaded shared machine Node alone can take longer
 * than the bound, and the CPU figures are what the load does not stretch.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './cli';

export const STARTUP_BOUND_SECONDS = 0.3;
const RUNS = Math.max(1, Number(process.env.BENCH_STARTUP_RUNS ?? 11));

interface Sample { wall: number; cpu: number }

export interface Timings {
  median: number;
  best: number;
  worst: number;
  medianCpu: number;
}

export interface StartupResult {
  runs: number;
  help: Timings;
  bareNode: Timings;
  met: boolean;
}

function once(args: string[], check: (stdout: string) => boolean): Sample {
  const out = spawnSync('/usr/bin/time', ['-f', '%e %U %S', process.execPath, ...args], { cwd: ROOT, encoding: 'utf8' });
  if (out.status !== 0 || !check(out.stdout)) throw new Error(`node ${args.join(' ')} exited ${out.status}: ${out.stderr.slice(-500)}`);
  const [wall, user, sys] = out.stderr.trim().split('\n').at(-1)!.split(' ').map(Number);
  return { wall, cpu: user + sys };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function timings(samples: Sample[]): Timings {
  const walls = samples.map((s) => s.wall);
  return { median: median(walls), best: Math.min(...walls), worst: Math.max(...walls), medianCpu: median(samples.map((s) => s.cpu)) };
}

export function benchStartup(): StartupResult {
  const help = () => once([join(ROOT, 'bin/azs3copy.mjs'), '--help'], (stdout) => stdout.includes('azs3copy'));
  const bare = () => once(['-e', ''], () => true);
  help();
  const helps: Sample[] = [];
  const bares: Sample[] = [];
  for (let i = 0; i < RUNS; i++) {
    helps.push(help());
    bares.push(bare());
  }
  const result = { runs: RUNS, help: timings(helps), bareNode: timings(bares) };
  return { ...result, met: result.help.median < STARTUP_BOUND_SECONDS };
}

export function startupLine(r: StartupResult): string {
  const t = (x: Timings) => `median ${x.median.toFixed(2)} s (best ${x.best.toFixed(2)}, slowest ${x.worst.toFixed(2)}), CPU ${x.medianCpu.toFixed(2)} s`;
  return `azs3copy --help (node bin/azs3copy.mjs --help, whole process, ${r.runs} runs): ${t(r.help)}; bare node -e '' beside it: ${t(r.bareNode)}`;
}

if (process.argv[1]?.endsWith('startup.ts')) {
  const { buildCli } = await import('./cli');
  buildCli();
  process.stdout.write(`${startupLine(benchStartup())}\n`);
}
