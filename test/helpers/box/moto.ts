/**
 * The box's own moto, with IAM enforced: started through moto_iam.py (moto's
 * server with its IAM checks made to judge resources and actions as AWS does),
 * with INITIAL_NO_AUTH_ACTION_COUNT so that only the first few requests (the
 * admin's bootstrap) go unsigned and unchecked. Every AccessDenied it answers is
 * also collected here, with the user, action and resource.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, motoCommand, waitForPort } from '../../../lambdas/local/emulators';

export interface Denial {
  /** The IAM user's ARN. */
  user: string;
  action: string;
  resource: string;
  at: Date;
}

export interface IamMoto {
  endpoint: string;
  denials: Denial[];
  /** The last lines moto wrote to stderr (its tracebacks), for a failure's message. */
  stderrTail(): string[];
  stop(): Promise<void>;
}

const LAUNCHER = join(dirname(fileURLToPath(import.meta.url)), 'moto_iam.py');

/** A Python that can import moto: $AZS3COPY_MOTO_PYTHON, moto_server's own interpreter, or python3. */
export function motoPython(): string {
  const candidates = [process.env.AZS3COPY_MOTO_PYTHON];
  const server = motoCommand();
  const real = spawnSync('pyenv', ['which', 'moto_server'], { encoding: 'utf8' });
  for (const script of [real.status === 0 ? real.stdout.trim() : undefined, server]) {
    if (!script) continue;
    const shebang = /^#!\s*(\S*python[0-9.]*)\s*$/m.exec(readFileSync(script, 'utf8').split('\n', 1)[0]);
    if (shebang) candidates.push(shebang[1]);
  }
  candidates.push('python3');
  for (const python of candidates) {
    if (python && spawnSync(python, ['-c', 'import moto'], { stdio: 'ignore' }).status === 0) return python;
  }
  throw new Error('no Python that imports moto: run pip install "moto[server]", or set AZS3COPY_MOTO_PYTHON');
}

/** Start moto; the first `noAuthRequests` requests are neither authenticated nor authorized. */
export async function startIamMoto(noAuthRequests: number, region: string): Promise<IamMoto> {
  const port = await freePort();
  const child = spawn(motoPython(), [LAUNCHER, '-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: {
      ...process.env,
      INITIAL_NO_AUTH_ACTION_COUNT: String(noAuthRequests),
      MOTO_ALLOW_NONEXISTENT_REGION: 'true',
      AWS_DEFAULT_REGION: region,
      PYTHONUNBUFFERED: '1',
    },
  });
  const denials: Denial[] = [];
  const tail: string[] = [];
  let partial = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (process.env.BOX_MOTO_LOG) process.stderr.write(`[moto] ${line}\n`);
      if (line.startsWith('BOX-DENIED ')) {
        denials.push({ ...(JSON.parse(line.slice('BOX-DENIED '.length)) as Omit<Denial, 'at'>), at: new Date() });
      } else if (!/ "(GET|POST|PUT|HEAD|DELETE) .* HTTP\/1\.1" \d{3} /.test(line)) {
        tail.push(line);
        if (tail.length > 50) tail.shift();
      }
    }
  });
  const kill = () => child.kill('SIGKILL');
  process.once('exit', kill);
  try {
    await waitForPort(port, child, 'moto_server');
  } catch (error) {
    kill();
    throw new Error(`${(error as Error).message}\n${tail.join('\n')}`);
  }
  return {
    endpoint: `http://127.0.0.1:${port}`,
    denials,
    stderrTail: () => [...tail],
    async stop() {
      process.removeListener('exit', kill);
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(kill, 3000);
      await exited;
      clearTimeout(timer);
    },
  };
}
