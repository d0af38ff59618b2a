/**
 * Node child processes for the tests that need a process of their own (one started
 * with NODE_EXTRA_CA_CERTS, which Node reads only at start): run in the project's
 * root, two at a time (one per core; more only fight over them), and awaited
 * asynchronously, since the stand-ins they talk to live in the test's process and a
 * synchronous spawn would block them.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SLOTS = 2;
let running = 0;
const waiting: (() => void)[] = [];

export interface ChildRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** When the process exited (Date.now()). */
  endedAt: number;
}

/** `node ARGS` in the project root; killed after `timeoutMs` (a hang the code failed to bound shows as code null). */
export async function runNode(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 90_000): Promise<ChildRun> {
  if (running < SLOTS) running += 1;
  else await new Promise<void>((resolve) => waiting.push(resolve)); // handed a slot by a run that ended
  try {
    return await new Promise((resolve, reject) => {
      const child = spawn(process.execPath, args, { cwd: ROOT, env });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.once('error', reject);
      child.once('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr, endedAt: Date.now() });
      });
    });
  } finally {
    const next = waiting.shift();
    if (next) next();
    else running -= 1;
  }
}
