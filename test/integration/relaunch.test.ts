/**
 * The launcher runs a copy in a new process on huge pages (bin/relaunch.mjs) and stays
 * out of the way: the same output and exit status, signals passed on, and a new process
 * that dies with its parent, so a copy killed outright never goes on copying unseen.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { afterAll, describe, expect, it } from 'vitest';
import { processAlive } from '../../lambdas/core/run-ledger';
import { AZURITE_KEY } from '../../lambdas/local/emulators';
// @ts-expect-error plain JavaScript beside the launcher, typed by its JSDoc
import { HUGE_PAGES_TUNABLE, hostFacts, hugePagesHelp } from '../../bin/relaunch.mjs';
import { runCli, startCli } from '../helpers/cli';

const dir = mkdtempSync(join(tmpdir(), 'azs3copy-relaunch-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Whether this machine gets the relaunch at all (Linux, glibc 2.35 or later, huge pages not off). */
const RELAUNCHES: boolean = hugePagesHelp({}, hostFacts());

interface Recorded { pid: number; ppid?: number; tunables?: string | null; received?: string }

function recording(name: string) {
  const log = join(dir, `${name}.processes`);
  return {
    env: { NODE_OPTIONS: `--import=${new URL('../helpers/record-process.mjs', import.meta.url).href}`, AZS3COPY_RECORD_PROCESS: log },
    processes: (): Recorded[] => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Recorded) : []),
  };
}

function secretFile(name: string, blobEndpoint: string, active: boolean): string {
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify({
    connectionstring: `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${AZURITE_KEY};BlobEndpoint=${blobEndpoint};`,
    container: 'c01',
    isactive: active ? 'True' : 'False',
  }));
  return file;
}

/** A Blob endpoint that takes connections and never answers: a copy against it waits at its first request. */
async function silentServer(): Promise<{ endpoint: string; close(): void }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.resume();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    endpoint: `http://127.0.0.1:${port}/devstoreaccount1`,
    close() {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

/** Running: signal 0 reaches it and it is no zombie (a killed copy waits to be reaped by whatever adopted it). */
const alive = processAlive;

async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * A copy, relaunched, waiting at its first request to a Blob endpoint that never answers; `copier` is the
 * relaunched process, and `end()` stops whatever is left of it.
 */
async function hungCopy(name: string) {
  const azure = await silentServer();
  const rec = recording(name);
  const { child, done } = startCli(['copy', '--secret-file', secretFile(name, azure.endpoint, true), '--bucket', 'b01', '--s3-endpoint', 'http://127.0.0.1:9', '--quiet'], rec.env);
  const end = (copier?: number) => {
    if (copier !== undefined && alive(copier)) process.kill(copier, 'SIGKILL');
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    azure.close();
  };
  try {
    await until('the copy runs in its second process', () => rec.processes().length >= 2);
  } catch (error) {
    end();
    throw error;
  }
  const copier = rec.processes()[1].pid;
  return { child, done, copier, processes: rec.processes, end: () => end(copier) };
}

describe('azs3copy copy relaunched on huge pages', () => {
  it('runs the copy in a second process with the tunable, with the same output and status', async () => {
    const rec = recording('off');
    const result = await runCli(['copy', '--secret-file', secretFile('off', 'http://127.0.0.1:9/devstoreaccount1', false), '--bucket', 'b01', '--quiet'], rec.env);

    expect(result).toEqual({ code: 0, stdout: 'run not started: the copy is switched off ("isactive" is false in the configuration)\n', stderr: '' });
    const processes = rec.processes();
    if (!RELAUNCHES) {
      expect(processes.map((p) => p.tunables)).toEqual([null]);
      return;
    }
    expect(processes).toHaveLength(2);
    const [parent, child] = processes;
    expect(parent.tunables).toBeNull();
    expect(child).toMatchObject({ ppid: parent.pid, tunables: HUGE_PAGES_TUNABLE });
  });

  it('passes on a bad flag\'s one line and status 2', async () => {
    const result = await runCli(['copy', '--container', 'c01', '--bucket', 'b01', '--bogus']);

    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/bogus/);
  });

  it('leaves an operator\'s GLIBC_TUNABLES alone, and help in one process', async () => {
    const own = recording('own');
    await runCli(['copy', '--secret-file', secretFile('own', 'http://127.0.0.1:9/devstoreaccount1', false), '--bucket', 'b01', '--quiet'], { ...own.env, GLIBC_TUNABLES: '' });
    expect(own.processes().map((p) => p.tunables)).toEqual(['']);

    const help = recording('help');
    expect((await runCli(['copy', '--help'], help.env)).code).toBe(0);
    expect(help.processes()).toHaveLength(1);
  });

  it.runIf(RELAUNCHES)('ends the copy\'s process when the command is killed outright', async () => {
    const copy = await hungCopy('killed');
    try {
      expect(alive(copy.copier)).toBe(true);

      copy.child.kill('SIGKILL');

      // Its exit, not its output's end: a copy left running would hold the output open.
      expect((await once(copy.child, 'exit'))[1]).toBe('SIGKILL');
      await until('the copy\'s process has ended', () => !alive(copy.copier), 10_000);
      await copy.done;
    } finally {
      copy.end();
    }
  });

  it.runIf(RELAUNCHES)('passes a SIGTERM on, and ends by it as the copy did', async () => {
    const copy = await hungCopy('terminated');
    try {
      copy.child.kill('SIGTERM');

      expect(await once(copy.child, 'exit')).toEqual([null, 'SIGTERM']);
      expect(copy.processes()).toContainEqual({ pid: copy.copier, received: 'SIGTERM' });
      expect(alive(copy.copier)).toBe(false);
      await copy.done;
    } finally {
      copy.end();
    }
  });
});
