/**
 * The S3 client's retry strategy. The SDK's standard strategy draws from a retry
 * quota that runs dry after a few hundred requests at a 10% error rate, so a long
 * copy under throttling would start failing requests that a wait would have saved.
 * This one has no quota: every retryable error gets capped, jittered backoff,
 * up to a fixed number of attempts.
 */
import type { RetryErrorInfo, RetryStrategyV2, StandardRetryToken } from '@smithy/types';
import { timeToRetry } from '../deadline';
import { backoffDelay } from '../retry';

export interface S3RetryOptions {
  maxAttempts: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
}

function token(retryCount: number, delayMs: number): StandardRetryToken {
  return {
    getRetryCount: () => retryCount,
    getRetryDelay: () => delayMs,
    getRetryTokenCount: () => 0,
    hasRetryTokens: () => true,
    releaseRetryTokens: () => undefined,
    getLastRetryCost: () => 0,
  } as unknown as StandardRetryToken;
}

export function unquotaedRetryStrategy(options: S3RetryOptions): RetryStrategyV2 {
  const baseDelayMs = options.baseDelayMs ?? 100;
  const maxDelayMs = options.maxDelayMs ?? 20_000;
  return {
    async acquireInitialRetryToken() {
      return token(0, 0);
    },
    async refreshRetryTokenForRetry(previous, errorInfo: RetryErrorInfo) {
      const retries = previous.getRetryCount() + 1;
      if (retries >= options.maxAttempts || errorInfo.errorType === 'CLIENT_ERROR') {
        throw new Error('no more retries');
      }
      const hinted = errorInfo.retryAfterHint ? errorInfo.retryAfterHint.getTime() - Date.now() : 0;
      const delay = Math.max(hinted, backoffDelay(retries, { baseDelayMs, maxDelayMs }));
      if (!timeToRetry(delay)) throw new Error('no time left in this invocation for another try');
      return token(retries, delay);
    },
    recordSuccess() {},
  };
}
