/**
 * One Lambda execution environment: a long-lived Node child process (runtime.ts)
 * with the function's task root as its working directory, exactly the function's
 * environment, and its handler loaded once. It runs one invocation at a time;
 * one that runs past the function's timeout is killed with the process, and the
 * container is discarded, as Lambda does.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { ChildReply, ChildRequest, FunctionErrorPayload } from './protocol';

/** A function as the box runs it, its template properties resolved. */
export interface FunctionSpec {
  logicalId: string;
  name: string;
  arn: string;
  /** `index.handler` */
  handler: string;
  runtime: string;
  /** The bundle with its layers' packages in `node_modules` beside it. */
  taskRoot: string;
  /** The whole environment of the process: the template's variables and what Lambda provides. */
  environment: Record<string, string>;
  /** The timeout the box enforces (the template's, unless the box scales it). */
  timeoutMs: number;
  memoryMiB: number;
  /** ReservedConcurrentExecutions, when the template sets it. */
  reservedConcurrency?: number;
  logGroupName: string;
}

export interface RunResult {
  ok: boolean;
  payload?: unknown;
  error?: FunctionErrorPayload;
  timedOut: boolean;
}

export type LogSink = (stream: 'stdout' | 'stderr', text: string, requestId: string | undefined) => void;

/**
 * Lambda's limit on an on-demand init phase. Past it, Lambda does not fail the invocation: it runs the init
 * again inside the invoke phase, bounded by the function's timeout. The box lets the one init run that long.
 */
const INIT_TIMEOUT_MS = 10_000;

export class Container {
  readonly logStreamName: string;
  private requestId: string | undefined;
  private settle: ((reply: Extract<ChildReply, { type: 'result' }> | { exited: string }) => void) | undefined;
  private exited: string | undefined;
  private killed = false;

  private constructor(
    private readonly spec: FunctionSpec,
    private readonly child: ChildProcess,
  ) {
    const day = new Date().toISOString().slice(0, 10).replace(/-/g, '/');
    this.logStreamName = `${day}/[$LATEST]${randomBytes(16).toString('hex')}`;
    child.once('exit', (code, signal) => {
      this.exited = `Runtime exited with ${signal ? `signal: ${signal}` : `error: exit status ${code}`}`;
      this.settle?.({ exited: this.exited });
    });
    child.on('message', (reply: ChildReply) => {
      if (reply.type === 'result' && reply.requestId === this.requestId) this.settle?.(reply);
    });
  }

  /** Neither exited nor killed (a killed process may not have exited yet). */
  get alive(): boolean {
    return this.exited === undefined && !this.killed;
  }

  /** Start the process and load the handler; an init failure kills it and is returned as the function error. */
  static async start(spec: FunctionSpec, runtimeFile: string, log: LogSink): Promise<Container | FunctionErrorPayload> {
    const heapMiB = Math.max(64, Math.floor(spec.memoryMiB * 0.9));
    const child = spawn(process.execPath, [`--max-old-space-size=${heapMiB}`, runtimeFile], {
      cwd: spec.taskRoot,
      env: spec.environment,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'json',
    });
    const container = new Container(spec, child);
    for (const stream of ['stdout', 'stderr'] as const) {
      let partial = '';
      child[stream]!.setEncoding('utf8').on('data', (chunk: string) => {
        const lines = (partial + chunk).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) log(stream, line, container.requestId);
      });
      child[stream]!.on('end', () => partial && log(stream, partial, container.requestId));
    }
    const ready = await new Promise<ChildReply | { exited: string } | { timeout: true }>((resolve) => {
      const timer = setTimeout(() => resolve({ timeout: true }), INIT_TIMEOUT_MS + spec.timeoutMs);
      const done = (value: ChildReply | { exited: string }) => {
        clearTimeout(timer);
        child.off('message', done);
        resolve(value);
      };
      child.on('message', done);
      child.once('exit', () => done({ exited: container.exited ?? 'Runtime exited' }));
      child.send({ type: 'init', taskRoot: spec.taskRoot, handler: spec.handler } satisfies ChildRequest);
    });
    if ('type' in ready && ready.type === 'ready') return container;
    container.kill();
    if ('timeout' in ready) return { errorType: 'Sandbox.Timedout', errorMessage: `Task timed out after ${(spec.timeoutMs / 1000).toFixed(2)} seconds (in init)`, trace: [] };
    if ('exited' in ready) return { errorType: 'Runtime.ExitError', errorMessage: ready.exited, trace: [] };
    return ready.type === 'init-error' ? ready.error : { errorType: 'Runtime.Unknown', errorMessage: JSON.stringify(ready), trace: [] };
  }

  /** Run one invocation; past the deadline the process is killed and the result is a timeout. */
  async run(requestId: string, event: unknown, deadline: number): Promise<RunResult> {
    if (this.settle) throw new Error(`container of ${this.spec.name} is already running ${this.requestId}`);
    this.requestId = requestId;
    try {
      const reply = await new Promise<Extract<ChildReply, { type: 'result' }> | { exited: string } | { timeout: true }>((resolve) => {
        const timer = setTimeout(() => resolve({ timeout: true }), Math.max(0, deadline - Date.now()));
        this.settle = (value) => {
          clearTimeout(timer);
          resolve(value);
        };
        if (this.exited) return this.settle({ exited: this.exited });
        this.child.send({
          type: 'invoke',
          requestId,
          event,
          deadline,
          functionName: this.spec.name,
          functionVersion: '$LATEST',
          invokedFunctionArn: this.spec.arn,
          memoryLimitInMB: this.spec.memoryMiB,
          logGroupName: this.spec.logGroupName,
          logStreamName: this.logStreamName,
        } satisfies ChildRequest);
      });
      if ('timeout' in reply) {
        this.kill();
        const seconds = (this.spec.timeoutMs / 1000).toFixed(2);
        return { ok: false, timedOut: true, error: { errorType: 'Sandbox.Timedout', errorMessage: `Task timed out after ${seconds} seconds`, trace: [] } };
      }
      if ('exited' in reply) return { ok: false, timedOut: false, error: { errorType: 'Runtime.ExitError', errorMessage: reply.exited, trace: [] } };
      if (reply.ok) return { ok: true, payload: reply.payload, timedOut: false };
      if (reply.fatal) this.kill();
      return { ok: false, error: reply.error, timedOut: false };
    } finally {
      this.settle = undefined;
      this.requestId = undefined;
    }
  }

  kill(): void {
    this.killed = true;
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }

  /** Resolves once the process is gone. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const gone = new Promise((r) => this.child.once('exit', r));
    this.kill();
    await gone;
  }
}
