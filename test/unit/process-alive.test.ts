/**
 * Whether the process that ran a local run is alive (run-ledger's processAlive): a process
 * that has ended but not been reaped yet (a zombie, as a killed copy is until whatever adopted
 * it reaps it) ran no more, and must not hold the pipeline's next run back.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { processAlive } from '../../lambdas/core/run-ledger';

const started: { kill(): void }[] = [];
afterEach(() => started.splice(0).forEach((p) => p.kill()));

describe.runIf(process.platform === 'linux')('processAlive', () => {
  it('is true for a running process and false for one that ended, reaped or not', async () => {
    // The shell starts a short-lived child and becomes a `sleep` that never reaps it: a zombie for 30 s.
    const shell = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
    started.push(shell);
    const zombiePid = Number(await new Promise<string>((resolve) => shell.stdout.once('data', (d) => resolve(String(d)))));
    const deadline = Date.now() + 10_000;
    const state = () => readFileSync(`/proc/${zombiePid}/stat`, 'utf8').split(') ')[1]?.[0];
    while (state() !== 'Z') {
      if (Date.now() > deadline) throw new Error(`pid ${zombiePid} never became a zombie`);
      await new Promise((r) => setTimeout(r, 20));
    }

    expect(processAlive(shell.pid!)).toBe(true);
    expect(processAlive(zombiePid)).toBe(false);
    expect(processAlive(process.pid)).toBe(true);
    expect(processAlive(2 ** 22 + 12345)).toBe(false);
  });
});
