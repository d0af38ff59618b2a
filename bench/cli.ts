/**
 * Running a copier as the bench measures it: its own process under /usr/bin/time
 * (wall, user + system CPU, peak RSS), with the process's resident memory sampled
 * from /proc while it runs (so a peak can be placed in time), and optionally
 * Node's own heap figures (process.memoryUsage) from a preload, bench/mem-sampler.mjs.
 *
 * azs3copy is run as users run it: `node bin/azs3copy.mjs copy ...`, the prebuilt
 * command (dist/, built once before the first run so no run pays for a build).
 * For experiments with settings the command has no flag for, bench/copier.ts is
 * prebuilt the same way (esbuild, the project's code bundled, packages from
 * node_modules) and takes BENCH_TUNING / BENCH_STAGE_CONCURRENCY.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
// @ts-expect-error plain JavaScript beside the launcher, typed by its JSDoc
import { HUGE_PAGES_TUNABLE, hostFacts, hugePagesHelp } from '../bin/relaunch.mjs';

export const ROOT = resolve(fileURLToPath(import.meta.url), '../..');
const PREBUILT = join(ROOT, 'node_modules/.cache/azs3copy-bench');

/** Build dist/ (the azs3copy command) now, so that no timed run rebuilds it. */
export function buildCli(): void {
  const out = spawnSync(process.execPath, [join(ROOT, 'bin/build.mjs'), '--quiet'], { cwd: ROOT, encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`bin/build.mjs failed: ${out.stderr}`);
}

/** Checksum modules the copier can be built with, in place of lambdas/core/crc32c.ts (bench/checksum.ts). */
export type ChecksumVariant = 'native-crc32c' | 'js-crc32c' | 'zlib-crc32';

/**
 * bench/copier.ts prebuilt as the command is (bin/build.mjs's settings): plain JavaScript, no loader at run
 * time. `checksum` swaps the checksum module for one in bench/checksums/ (the default is the project's own).
 */
export async function prebuiltCopier(checksum: ChecksumVariant = 'native-crc32c'): Promise<string> {
  const { build } = await import('esbuild');
  mkdirSync(PREBUILT, { recursive: true });
  const outfile = join(PREBUILT, `copier-${checksum}.mjs`);
  const swap = checksum === 'native-crc32c' ? [] : [{
    name: 'checksum-variant',
    setup(b: { onResolve(o: { filter: RegExp }, f: (a: { importer: string }) => { path: string } | undefined): void }) {
      b.onResolve({ filter: /\/crc32c$/ }, (a) => (a.importer.includes('/lambdas/') ? { path: join(ROOT, `bench/checksums/${checksum}.ts`) } : undefined));
    },
  }];
  await build({
    entryPoints: [join(ROOT, 'bench/copier.ts')], outfile, absWorkingDir: ROOT, bundle: true, packages: 'external',
    format: 'esm', platform: 'node', target: 'node20', keepNames: true, logLevel: 'silent', plugins: swap,
  });
  return outfile;
}

/** The azs3copy command's arguments for one copy. */
export function azs3copyArgs(copy: { connectionString: string; container: string; bucket: string; s3Endpoint: string; report: string; extra?: string[] }): string[] {
  // BENCH_AZS3COPY_NODE_ARGS: Node's own flags for a look inside (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof");
  // BENCH_AZS3COPY_VERBOSE=1: the copier logs with --verbose (kept with BENCH_KEEP_LOGS=1) rather than --quiet.
  return [
    ...(process.env.BENCH_AZS3COPY_NODE_ARGS ?? '').split(' ').filter(Boolean),
    join(ROOT, 'bin/azs3copy.mjs'), 'copy', '--azure-connection-string', copy.connectionString, '--container', copy.container,
    '--bucket', copy.bucket, '--s3-endpoint', copy.s3Endpoint, ...(process.env.BENCH_AZS3COPY_VERBOSE ? ['--verbose'] : ['--quiet']), '--report', copy.report, ...(copy.extra ?? []),
  ];
}

export interface Timed {
  /** When the process was started (epoch ms). */
  startedAtMs: number;
  code: number;
  wallSeconds: number;
  cpuSeconds: number;
  userSeconds: number;
  systemSeconds: number;
  maxRssMiB: number;
  stdout: string;
  stderr: string;
  /** Resident MiB by second since start, from /proc (the process /usr/bin/time runs). */
  rssSamples: { t: number; rssMiB: number }[];
  /** From bench/mem-sampler.mjs, when asked for: Node's heap figures over time. */
  heapSamples?: HeapSample[];
}

export interface HeapSample {
  t: number;
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  /** Sampled in the process the command relaunched on huge pages (bin/relaunch.mjs). */
  relaunched?: boolean;
}

export interface TimedOptions {
  env?: NodeJS.ProcessEnv;
  /** Where the run's output files go. */
  dir: string;
  label: string;
  /** Sample Node's heap every this many ms (azs3copy only: the preload is a Node module). */
  heapEveryMs?: number;
  /** Send this signal at these seconds after start (e.g. SIGUSR2 with --heapsnapshot-signal). */
  signals?: { atSeconds: number; signal: NodeJS.Signals }[];
}

/** The pid of the process /usr/bin/time started (its only child). */
function childOf(pid: number): number | undefined {
  try {
    const first = readdirSync(`/proc/${pid}/task`)[0];
    const children = readFileSync(`/proc/${pid}/task/${first}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    return children.length ? Number(children[0]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The process doing the copy under /usr/bin/time: the launcher's child when the command relaunched itself on
 * huge pages (bin/relaunch.mjs), the launcher itself when it did not. Asked again at each sample, since the
 * relaunched process appears a moment after the launcher.
 */
function copyProcessOf(timePid: number): number | undefined {
  let pid = childOf(timePid);
  for (let next = pid === undefined ? undefined : childOf(pid); next !== undefined; next = childOf(next)) pid = next;
  return pid;
}

function rssMiBOf(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Run `cmd args` under /usr/bin/time, sampling its memory; never throws for a non-zero exit (the caller decides). */
export async function runTimed(cmd: string, args: string[], options: TimedOptions): Promise<Timed> {
  mkdirSync(options.dir, { recursive: true });
  const timeFile = join(options.dir, `${options.label}.time`);
  const heapFile = join(options.dir, `${options.label}.heap.jsonl`);
  const env: NodeJS.ProcessEnv = { ...(options.env ?? process.env) };
  if (options.heapEveryMs) {
    env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ''} --import ${join(ROOT, 'bench/mem-sampler.mjs')}`.trim();
    env.BENCH_HEAP_FILE = heapFile;
    env.BENCH_HEAP_EVERY_MS = String(options.heapEveryMs);
    writeFileSync(heapFile, '');
  }
  const startedAtMs = Date.now();
  const started = performance.now();
  const rssSamples: Timed['rssSamples'] = [];
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const code = await new Promise<number>((done, reject) => {
    const child = spawn('/usr/bin/time', ['-f', '%e %U %S %M', '-o', timeFile, cmd, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT });
    child.stdout.on('data', (c) => out.push(c));
    child.stderr.on('data', (c) => err.push(c));
    const sampler = setInterval(() => {
      const target = copyProcessOf(child.pid!);
      const rss = target === undefined ? undefined : rssMiBOf(target);
      if (rss !== undefined) rssSamples.push({ t: (performance.now() - started) / 1000, rssMiB: rss });
    }, 250);
    const timers = (options.signals ?? []).map((s) => setTimeout(() => {
      const target = copyProcessOf(child.pid!);
      if (target !== undefined) process.kill(target, s.signal);
    }, s.atSeconds * 1000));
    child.on('error', reject);
    child.on('close', (c) => {
      clearInterval(sampler);
      timers.forEach(clearTimeout);
      done(c ?? 1);
    });
  });
  const wallSeconds = (performance.now() - started) / 1000;
  const stdout = Buffer.concat(out).toString('utf8');
  const stderr = Buffer.concat(err).toString('utf8');
  writeFileSync(join(options.dir, `${options.label}.out`), stdout);
  writeFileSync(join(options.dir, `${options.label}.err`), stderr);
  const [, user, sys, rssKiB] = readFileSync(timeFile, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
  const allHeapSamples = options.heapEveryMs && existsSync(heapFile)
    ? readFileSync(heapFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as HeapSample)
    : undefined;
  // Both processes of a relaunched command sample; the copy is the relaunched one.
  const heapSamples = allHeapSamples?.some((h) => h.relaunched) ? allHeapSamples.filter((h) => h.relaunched) : allHeapSamples;
  return {
    startedAtMs, code, wallSeconds, cpuSeconds: user + sys, userSeconds: user, systemSeconds: sys, maxRssMiB: rssKiB / 1024,
    stdout, stderr, rssSamples, heapSamples,
  };
}

/**
 * For bench/copier.ts, which runs a copy without the launcher: the allocator setting the launcher gives the
 * command here (bin/relaunch.mjs), so its figures are the command's. BENCH_COPIER_GLIBC sets another
 * (empty: glibc's defaults), to compare.
 */
export function launcherTunables(): NodeJS.ProcessEnv {
  const given = process.env.BENCH_COPIER_GLIBC;
  if (given !== undefined) return given ? { GLIBC_TUNABLES: given } : {};
  return hugePagesHelp(process.env, hostFacts()) ? { GLIBC_TUNABLES: HUGE_PAGES_TUNABLE } : {};
}

/** The environment a copier runs in: the emulators' AWS credentials, and no SDK notice on stderr. */
export function copierEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...extra };
}
