/**
 * Start the two emulators the local mode runs against, on free loopback ports:
 * Azurite (from npm) for Azure Blob Storage and moto (`moto_server`) for S3.
 * Each start returns how to reach it and a stop function; nothing outlives the
 * process that started it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../core/errors';

export const AZURITE_ACCOUNT = 'devstoreaccount1';
/** Azurite's published development key; not a secret. */
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface Emulator {
  endpoint: string;
  stop(): Promise<void>;
}

export interface AzuriteEmulator extends Emulator {
  connectionString: string;
  account: string;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export async function waitForPort(port: number, child: ChildProcess, name: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited: string | undefined;
  child.once('exit', (code, signal) => (exited = `exited with ${code ?? signal}`));
  for (;;) {
    if (exited) throw new Error(`${name} ${exited} before it listened on port ${port}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`${name} did not listen on port ${port} within ${timeoutMs / 1000}s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function stopper(child: ChildProcess, cleanup?: () => void) {
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', kill);
  return async () => {
    process.removeListener('exit', kill);
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    }
    cleanup?.();
  };
}

export interface AzuriteOptions {
  /** HTTPS with this certificate and key (required for OAuth). */
  cert?: string;
  key?: string;
  /** Accept bearer tokens (Azurite checks audience, issuer and times, not signatures). */
  oauth?: boolean;
  /** Keep blobs in memory instead of a temporary folder. */
  inMemory?: boolean;
}

export async function startAzurite(options: AzuriteOptions = {}): Promise<AzuriteEmulator> {
  const require = createRequire(import.meta.url);
  const main = join(dirname(require.resolve('azurite/package.json')), 'dist/src/blob/main.js');
  const port = await freePort();
  // Azurite refuses --location together with --inMemoryPersistence.
  const location = options.inMemory ? undefined : mkdtempSync(join(tmpdir(), 'azs3copy-azurite-'));
  const args = [main, '--silent', '--blobHost', '127.0.0.1', '--blobPort', String(port),
    '--skipApiVersionCheck', '--loose', '--disableTelemetry'];
  args.push(...(location ? ['--location', location] : ['--inMemoryPersistence']));
  if (options.cert && options.key) args.push('--cert', options.cert, '--key', options.key);
  if (options.oauth) args.push('--oauth', 'basic');
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  await waitForPort(port, child, 'Azurite');
  const scheme = options.cert ? 'https' : 'http';
  const endpoint = `${scheme}://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
  return {
    endpoint,
    account: AZURITE_ACCOUNT,
    connectionString:
      `DefaultEndpointsProtocol=${scheme};AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${endpoint};`,
    stop: stopper(child, () => location && rmSync(location, { recursive: true, force: true })),
  };
}

export function motoCommand(): string {
  const found = spawnSync('sh', ['-c', 'command -v moto_server'], { encoding: 'utf8' });
  const path = found.stdout.trim();
  if (found.status !== 0 || !path) {
    throw new ConfigError('moto_server is not installed: run pip install "moto[server]" (the local S3 emulator), then try again');
  }
  return path;
}

/**
 * How to start moto: through moto-server.py (moto_server with atomic DynamoDB writes) with the Python
 * that has moto, or moto_server itself where that Python cannot be found.
 */
export function motoLaunch(): { command: string; args: string[] } {
  const command = motoCommand();
  const script = motoScript();
  if (!script) return { command, args: [] };
  for (const python of ['python3', 'python']) {
    if (spawnSync(python, ['-c', 'import moto.server, moto.dynamodb.models'], { stdio: 'ignore' }).status === 0) {
      return { command: python, args: [script] };
    }
  }
  return { command, args: [] };
}

/**
 * moto-server.py, found from this module whether it runs from the sources (beside it) or from the prebuilt
 * command (dist/chunks/, with the sources two folders up), or undefined where it is not there.
 */
function motoScript(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let up = 0; up < 4; up++) {
    for (const candidate of [join(dir, 'moto-server.py'), join(dir, 'lambdas', 'local', 'moto-server.py')]) {
      if (existsSync(candidate)) return candidate;
    }
    dir = dirname(dir);
  }
  return undefined;
}

export async function startMoto(options: { env?: Record<string, string> } = {}): Promise<Emulator> {
  const { command, args } = motoLaunch();
  const port = await freePort();
  const child = spawn(command, [...args, '-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', process.env.AZS3COPY_MOTO_STDERR ? 'inherit' : 'ignore'],
    env: { ...process.env, MOTO_ALLOW_NONEXISTENT_REGION: 'true', ...options.env },
  });
  await waitForPort(port, child, 'moto_server');
  return { endpoint: `http://127.0.0.1:${port}`, stop: stopper(child) };
}

/** Credentials for the emulators; moto accepts any. Set only where the caller has none. */
export function useEmulatorAwsCredentials(env: NodeJS.ProcessEnv = process.env): void {
  env.AWS_ACCESS_KEY_ID ??= 'testing';
  env.AWS_SECRET_ACCESS_KEY ??= 'testing';
  env.AWS_REGION ??= 'us-east-1';
}
