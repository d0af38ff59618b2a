/**
 * The two emulators for the benchmark, started with their access logs on so that
 * every request either copier makes is counted where it lands, by the server
 * itself: no proxy hop in the data path, and the same count for azs3copy and rclone.
 *
 * Azurite (without --silent) and moto (werkzeug) both log one line per request,
 * `... "METHOD /path HTTP/1.1" status ...`. A count is closed by sending a marker
 * request and waiting for its line: every request made before it is then counted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { AZURITE_ACCOUNT, AZURITE_KEY, freePort, motoCommand } from '../lambdas/local/emulators';

export interface RequestCounts {
  total: number;
  byMethod: Record<string, number>;
}

export interface CountingEmulator {
  endpoint: string;
  pid: number;
  /** Requests logged so far, up to and excluding a fresh marker request. */
  counts(): Promise<RequestCounts>;
  stop(): Promise<void>;
}

export interface CountingAzurite extends CountingEmulator {
  account: string;
  connectionString: string;
}

const LINE = /"([A-Z]+) (\S+) HTTP\/[\d.]+"/;

function counter(child: ChildProcess, stream: NodeJS.ReadableStream, markerPath: string) {
  const byMethod: Record<string, number> = {};
  let total = 0;
  const waiting = new Map<string, () => void>();
  createInterface({ input: stream }).on('line', (line) => {
    if (process.env.BENCH_ACCESS_LOG) process.stderr.write(`${process.env.BENCH_ACCESS_LOG} ${line}\n`);
    const m = LINE.exec(line);
    if (!m) return;
    const [, method, path] = m;
    if (path.includes(markerPath)) {
      const id = /marker-(\w+)/.exec(path)?.[1];
      if (id) waiting.get(id)?.();
      return;
    }
    total++;
    byMethod[method] = (byMethod[method] ?? 0) + 1;
  });
  let n = 0;
  return async (sendMarker: (id: string) => Promise<void>): Promise<RequestCounts> => {
    const id = `${process.pid}x${++n}`;
    const seen = new Promise<void>((resolve) => waiting.set(id, resolve));
    await sendMarker(id);
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, 10_000).unref());
    await Promise.race([seen, timeout]);
    waiting.delete(id);
    void child;
    return { total, byMethod: { ...byMethod } };
  };
}

async function waitForHttp(url: string, child: ChildProcess, name: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  let exited = '';
  child.once('exit', (code, signal) => (exited = `${name} exited with ${code ?? signal}`));
  for (;;) {
    if (exited) throw new Error(exited);
    try {
      await fetch(url);
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`${name} did not answer at ${url} within ${timeoutMs / 1000}s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

function stopper(child: ChildProcess) {
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', kill);
  return async () => {
    process.removeListener('exit', kill);
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  };
}

/** Azurite keeping blobs in memory (no disk in the read path), access log on. */
export async function startCountingAzurite(): Promise<CountingAzurite> {
  const require = createRequire(import.meta.url);
  const main = join(dirname(require.resolve('azurite/package.json')), 'dist/src/blob/main.js');
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [main, '--inMemoryPersistence', '--blobHost', '127.0.0.1', '--blobPort', String(port), '--skipApiVersionCheck', '--loose', '--disableTelemetry'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stderr!.resume();
  const count = counter(child, child.stdout!, '/bench-marker-');
  const endpoint = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
  await waitForHttp(`${endpoint}/bench-marker-start`, child, 'Azurite');
  return {
    endpoint,
    pid: child.pid!,
    account: AZURITE_ACCOUNT,
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${endpoint};`,
    counts: () => count(async (id) => void (await fetch(`${endpoint}/bench-marker-${id}`).then((r) => r.arrayBuffer()))),
    stop: stopper(child),
  };
}

/**
 * glibc's allocator settings for moto (BENCH_MOTO_MALLOC=default leaves glibc's own). moto keeps every body,
 * part and completed object as fresh Python bytes, and glibc serves each allocation over 32 MiB with a fresh
 * mmap that it unmaps on free, so every byte moto takes in costs page faults, several times over for a
 * completion (it copies the parts three times). On this machine's VM a page fault is dear: completing a
 * 512 MiB upload of 8 parts cost moto 17 s of CPU, the parts 6 s (`bench/moto-malloc.py`). Kept in glibc's
 * heap (no mmap, no trim) and on transparent huge pages, the same took 3.5 s and 1 s. S3 itself has no such
 * cost, so moto is given these for every copier alike: the bench then measures the copiers, not moto's faults.
 */
const MOTO_MALLOC: Record<string, string> = process.env.BENCH_MOTO_MALLOC === 'default' ? {} : {
  GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184',
};

/** moto's S3 server; its werkzeug access log goes to stderr. */
export async function startCountingMoto(): Promise<CountingEmulator> {
  const port = await freePort();
  const child = spawn(motoCommand(), ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, MOTO_ALLOW_NONEXISTENT_REGION: 'true', PYTHONUNBUFFERED: '1', ...MOTO_MALLOC },
  });
  child.stdout!.resume();
  const count = counter(child, child.stderr!, '/bench-marker-');
  const endpoint = `http://127.0.0.1:${port}`;
  await waitForHttp(`${endpoint}/bench-marker-start`, child, 'moto_server');
  return {
    endpoint,
    pid: child.pid!,
    counts: () => count(async (id) => void (await fetch(`${endpoint}/bench-marker-${id}`).then((r) => r.arrayBuffer()))),
    stop: stopper(child),
  };
}

export function diffCounts(after: RequestCounts, before: RequestCounts): RequestCounts {
  const byMethod: Record<string, number> = {};
  for (const [m, n] of Object.entries(after.byMethod)) {
    const d = n - (before.byMethod[m] ?? 0);
    if (d) byMethod[m] = d;
  }
  return { total: after.total - before.total, byMethod };
}

/** CPU seconds (user + system) a process has used so far, from /proc. */
export function cpuSecondsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields after the command: state is [0]; utime is field 14 of the whole line, [11] here; stime [12].
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}
