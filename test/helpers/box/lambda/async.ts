/**
 * Asynchronous invocation, as Lambda runs it for SNS and `--invocation-type
 * Event`: the event is queued, run, retried on a function error (twice by
 * default, after about one and then two minutes), and once the retries are spent
 * or the event is too old it goes to the function's on-failure destination (or
 * dead-letter queue) as Lambda's invocation record. On success, the on-success
 * destination, if any, gets the record too.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { Invocation, LambdaFunction } from './function';

export interface AsyncInvokeConfig {
  /** AWS::Lambda::EventInvokeConfig MaximumRetryAttempts. @default 2 */
  maximumRetryAttempts: number;
  /** MaximumEventAgeInSeconds. @default 21600 */
  maximumEventAgeSeconds: number;
  onSuccess?: string;
  onFailure?: string;
  /** The function's DeadLetterConfig.TargetArn (the older mechanism). */
  deadLetterTarget?: string;
}

export const DEFAULT_ASYNC_CONFIG: AsyncInvokeConfig = { maximumRetryAttempts: 2, maximumEventAgeSeconds: 21_600 };

/** Lambda's waits before the second and third attempts. */
export const LAMBDA_RETRY_DELAYS_MS: readonly number[] = [60_000, 120_000];

/** Sends to a destination ARN (SQS, SNS, Lambda) as the function's role would. */
export type Deliver = (from: LambdaFunction, targetArn: string, body: string, attributes?: Record<string, string>) => Promise<void>;

export interface DestinationRecord {
  version: '1.0';
  timestamp: string;
  requestContext: { requestId: string; functionArn: string; condition: 'Success' | 'RetriesExhausted' | 'EventAgeExceeded'; approximateInvokeCount: number };
  requestPayload: unknown;
  responseContext: { statusCode: number; executedVersion: string; functionError?: 'Unhandled' };
  responsePayload?: unknown;
}

export class AsyncInvoker {
  config: AsyncInvokeConfig = { ...DEFAULT_ASYNC_CONFIG };
  private inFlight = 0;
  private readonly stopping = new AbortController();
  private readonly events: { requestId: string; outcome: 'succeeded' | 'failed' }[] = [];

  constructor(
    readonly fn: LambdaFunction,
    private readonly deliver: Deliver,
    private readonly retryDelaysMs: readonly number[],
    private readonly problem: (text: string) => void,
  ) {}

  /** Events accepted and not yet finished (running, queued or waiting for a retry). */
  get pending(): number {
    return this.inFlight;
  }

  /** Outcomes of finished events, in order. */
  get finished(): readonly { requestId: string; outcome: 'succeeded' | 'failed' }[] {
    return this.events;
  }

  /** Drop every waiting retry (the box is stopping). */
  stop(): void {
    this.stopping.abort();
  }

  /** Accept an event (Lambda answers 202 at once); returns its request id. */
  enqueue(event: unknown): string {
    const requestId = randomUUID();
    this.inFlight++;
    void this.run(event, requestId)
      .then((outcome) => this.events.push({ requestId, outcome }))
      .catch((error: unknown) => {
        if (!this.stopping.signal.aborted) this.problem(`async invocation ${requestId} of ${this.fn.spec.name}: ${String(error)}`);
      })
      .finally(() => this.inFlight--);
    return requestId;
  }

  private async run(event: unknown, requestId: string): Promise<'succeeded' | 'failed'> {
    const accepted = Date.now();
    let last: Invocation | undefined;
    let attempts = 0;
    for (let attempt = 0; attempt <= this.config.maximumRetryAttempts; attempt++) {
      if (attempt > 0) await delay(this.retryDelaysMs[Math.min(attempt - 1, this.retryDelaysMs.length - 1)] ?? 0, undefined, { signal: this.stopping.signal });
      if (Date.now() - accepted > this.config.maximumEventAgeSeconds * 1000) {
        await this.fail(event, requestId, attempts, 'EventAgeExceeded', last);
        return 'failed';
      }
      attempts++;
      last = await this.fn.invoke(event, requestId);
      if (last.ok) {
        if (this.config.onSuccess) await this.send(this.config.onSuccess, this.record(event, requestId, attempts, 'Success', last));
        return 'succeeded';
      }
    }
    await this.fail(event, requestId, attempts, 'RetriesExhausted', last);
    return 'failed';
  }

  private async fail(event: unknown, requestId: string, attempts: number, condition: 'RetriesExhausted' | 'EventAgeExceeded', last?: Invocation) {
    if (this.config.onFailure) {
      await this.send(this.config.onFailure, this.record(event, requestId, attempts, condition, last));
    } else if (this.config.deadLetterTarget) {
      await this.sendRaw(this.config.deadLetterTarget, JSON.stringify(event), {
        RequestID: requestId,
        ErrorCode: '200',
        ErrorMessage: last?.error?.errorMessage ?? condition,
      });
    } else {
      this.problem(`${this.fn.spec.name} dropped event ${requestId} (${condition}): no on-failure destination`);
    }
  }

  private record(event: unknown, requestId: string, attempts: number, condition: DestinationRecord['requestContext']['condition'], last?: Invocation): DestinationRecord {
    const failed = last !== undefined && !last.ok;
    return {
      version: '1.0',
      timestamp: new Date().toISOString(),
      requestContext: { requestId, functionArn: `${this.fn.spec.arn}:$LATEST`, condition, approximateInvokeCount: attempts },
      requestPayload: event,
      responseContext: { statusCode: 200, executedVersion: '$LATEST', ...(failed ? { functionError: 'Unhandled' as const } : {}) },
      responsePayload: failed
        ? { errorType: last.error!.errorType, errorMessage: last.error!.errorMessage, stackTrace: last.error!.trace }
        : last?.payload,
    };
  }

  private send(target: string, record: DestinationRecord): Promise<void> {
    return this.sendRaw(target, JSON.stringify(record));
  }

  private async sendRaw(target: string, body: string, attributes?: Record<string, string>): Promise<void> {
    try {
      await this.deliver(this.fn, target, body, attributes);
    } catch (error) {
      // Lambda drops a record it cannot deliver (and counts DestinationDeliveryFailures); the box says so.
      this.problem(`${this.fn.spec.name} could not deliver to ${target}: ${(error as Error).name}: ${(error as Error).message}`);
    }
  }
}

