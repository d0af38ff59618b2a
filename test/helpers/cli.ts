/**
 * Run the azs3copy command line as a user would, in a child process.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../bin/azs3copy.mjs', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Start the command line and hand back the process (to stop it part way) and its outcome. */
export function startCli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      AWS_REGION: 'us-east-1',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const done = new Promise<CliResult & { signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
}

export async function runCli(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 120_000): Promise<CliResult> {
  const { child, done } = startCli(args, env);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const { code, stdout, stderr } = await done.finally(() => clearTimeout(timer));
  return { code, stdout, stderr };
}

/**
 * The environment that makes a Node process write the URL of every module it
 * imports to `log`, one a line (test/helpers/record-imports.mjs), and a reader of that file.
 */
export function recordingImports(log: string) {
  return {
    env: { NODE_OPTIONS: `--import=${new URL('./record-imports.mjs', import.meta.url).href}`, AZS3COPY_RECORD_IMPORTS: log },
    imports: (): string[] => readFileSync(log, 'utf8').split('\n').filter(Boolean),
  };
}
