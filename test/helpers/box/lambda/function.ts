/**
 * A function's containers, as Lambda keeps them: a warm container is reused, a
 * new one is started (cold) when all are busy, up to the function's concurrency
 * (its reserved concurrency, and the box's own cap for this machine); beyond it
 * an invocation waits for a container to free up. Each invocation is counted
 * and logged (START / END / REPORT lines, as Lambda writes them).
 */
import { randomUUID } from 'node:crypto';
import { Container, type FunctionSpec, type LogSink, type RunResult } from './container';
import type { FunctionErrorPayload } from './protocol';

export interface LogLine {
  functionName: string;
  requestId?: string;
  stream: 'stdout' | 'stderr' | 'platform';
  text: string;
  at: Date;
}

export interface FunctionStats {
  invocations: number;
  failures: number;
  timeouts: number;
  coldStarts: number;
  /** Longest invocation, init excluded. */
  longestMs: number;
  totalMs: number;
  /** Most invocations running at once. */
  peakConcurrency: number;
}

export interface Invocation extends RunResult {
  requestId: string;
  coldStart: boolean;
  durationMs: number;
}

/** One invocation as the box saw it: the event it got and how it ended. */
export interface InvocationRecord extends Invocation {
  functionName: string;
  event: unknown;
  at: Date;
}

export class LambdaFunction {
  readonly stats: FunctionStats = { invocations: 0, failures: 0, timeouts: 0, coldStarts: 0, longestMs: 0, totalMs: 0, peakConcurrency: 0 };
  readonly concurrency: number;
  private readonly idle: Container[] = [];
  private readonly all = new Set<Container>();
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private stopped = false;

  constructor(
    readonly spec: FunctionSpec,
    private readonly runtimeFile: string,
    private readonly logs: LogLine[],
    private readonly history: InvocationRecord[],
    boxCap: number,
    private readonly echo?: (line: LogLine) => void,
  ) {
    this.concurrency = Math.max(1, Math.min(spec.reservedConcurrency ?? Number.POSITIVE_INFINITY, boxCap));
  }

  /** Invocations running now. */
  get busy(): number {
    return this.running;
  }

  /** Kill every container that is running an invocation, as a crash (or Lambda's timeout) would: those invocations fail. */
  crashBusy(): number {
    const busy = [...this.all].filter((c) => !this.idle.includes(c));
    for (const container of busy) container.kill();
    return busy.length;
  }

  /** Free capacity right now (event sources use it to decide how much to take). */
  get free(): number {
    return this.concurrency - this.running - this.waiting.length;
  }

  /** Run one invocation, synchronously as `aws lambda invoke` does (the caller waits for the outcome). */
  async invoke(event: unknown, requestId: string = randomUUID()): Promise<Invocation> {
    if (this.stopped) throw new Error(`the box is stopped; ${this.spec.name} cannot run`);
    await this.acquire();
    try {
      const at = new Date();
      const outcome = await this.runOnce(event, requestId);
      this.history.push({ ...outcome, functionName: this.spec.name, event, at });
      return outcome;
    } finally {
      this.release();
    }
  }

  private async runOnce(event: unknown, requestId: string): Promise<Invocation> {
    let container = this.idle.pop();
    const coldStart = !container;
    if (!container) {
      const started = await Container.start(this.spec, this.runtimeFile, this.sink());
      if (!(started instanceof Container)) return this.record(requestId, true, 0, { ok: false, timedOut: started.errorType === 'Sandbox.Timedout', error: started });
      container = started;
      this.all.add(container);
    }
    const begin = Date.now();
    this.platform(requestId, `START RequestId: ${requestId} Version: $LATEST`);
    const result = await container.run(requestId, event, begin + this.spec.timeoutMs);
    const durationMs = Date.now() - begin;
    if (result.timedOut) this.platform(requestId, `${new Date().toISOString()} ${requestId} ${result.error!.errorMessage}`);
    this.platform(requestId, `END RequestId: ${requestId}`);
    this.platform(requestId, `REPORT RequestId: ${requestId}\tDuration: ${durationMs} ms\tMemory Size: ${this.spec.memoryMiB} MB${coldStart ? '\t(cold start)' : ''}`);
    if (container.alive && !this.stopped) this.idle.push(container);
    else this.all.delete(container);
    return this.record(requestId, coldStart, durationMs, result);
  }

  private record(requestId: string, coldStart: boolean, durationMs: number, result: RunResult): Invocation {
    const s = this.stats;
    s.invocations++;
    if (!result.ok) s.failures++;
    if (result.timedOut) s.timeouts++;
    if (coldStart) s.coldStarts++;
    s.longestMs = Math.max(s.longestMs, durationMs);
    s.totalMs += durationMs;
    if (!result.ok && !result.timedOut) this.platform(requestId, `${requestId} ERROR ${describe(result.error!)}`);
    return { ...result, requestId, coldStart, durationMs };
  }

  private async acquire(): Promise<void> {
    if (this.running >= this.concurrency) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.running++;
    this.stats.peakConcurrency = Math.max(this.stats.peakConcurrency, this.running);
  }

  private release(): void {
    this.running--;
    this.waiting.shift()?.();
  }

  private sink(): LogSink {
    return (stream, text, requestId) => this.log({ functionName: this.spec.name, requestId, stream, text, at: new Date() });
  }

  private platform(requestId: string, text: string): void {
    this.log({ functionName: this.spec.name, requestId, stream: 'platform', text, at: new Date() });
  }

  private log(line: LogLine): void {
    this.logs.push(line);
    this.echo?.(line);
  }

  /** Kill every container; nothing runs after this. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all([...this.all].map((c) => c.stop()));
    this.idle.length = 0;
    this.all.clear();
  }
}

export function describe(error: FunctionErrorPayload): string {
  return `${error.errorType}: ${error.errorMessage}`;
}
