/**
 * Retry with capped exponential backoff and full jitter, for the calls whose
 * failure the SDKs do not retry themselves (a stream cut mid-body, a conditional
 * write racing another writer). Throttling is waited out, never counted as failure.
 */
import { timeToRetry } from './deadline';
import { codeOf, statusOf } from './errors';

export interface RetryOptions {
  /** Total tries, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  isRetryable?: (error: unknown) => boolean;
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export const DEFAULT_RETRY: RetryOptions = { attempts: 5, baseDelayMs: 200, maxDelayMs: 20_000 };

const TRANSIENT_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const TRANSIENT_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'UND_ERR_SOCKET',
  'ERR_STREAM_PREMATURE_CLOSE', 'TimeoutError', 'RequestTimeout', 'RequestTimeTooSkewed',
  'SlowDown', 'ServerBusy', 'OperationTimedOut', 'InternalError', 'ServiceUnavailable',
  'REQUEST_SEND_ERROR', 'ResponseStreamError', 'TransientError',
]);

export function isTransient(error: unknown): boolean {
  const status = statusOf(error);
  if (status !== undefined && TRANSIENT_STATUS.has(status)) return true;
  const code = codeOf(error);
  if (code && TRANSIENT_CODES.has(code)) return true;
  const cause = (error as { cause?: unknown } | undefined)?.cause;
  return cause !== undefined && cause !== error && isTransient(cause);
}

export function backoffDelay(attempt: number, options: Pick<RetryOptions, 'baseDelayMs' | 'maxDelayMs' | 'random'>): number {
  const ceiling = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** (attempt - 1));
  return Math.floor((options.random ?? Math.random)() * ceiling);
}

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function withRetry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions = DEFAULT_RETRY): Promise<T> {
  const retryable = options.isRetryable ?? isTransient;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (error) {
      if (attempt >= options.attempts || !retryable(error)) throw error;
      const delay = backoffDelay(attempt, options);
      // Not past the invocation's deadline: the queue retries the message later instead.
      if (!timeToRetry(delay)) throw error;
      options.onRetry?.(error, attempt, delay);
      await (options.sleep ?? realSleep)(delay);
    }
  }
}
