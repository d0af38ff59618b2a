/**
 * The invocation's deadline, visible to every retry loop beneath it without being
 * passed down: a request is not retried when the wait would leave the invocation
 * too little time to use the answer. The message-level retry (the queue) then takes
 * over, so a failing message reaches its dead-letter queue in minutes, never
 * stuck behind retries stacked inside the function's timeout.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

const current = new AsyncLocalStorage<{ deadline: number }>();

/** Time kept back at the end of an invocation for recording the outcome and answering the queue. */
export const RESERVE_MS = 10_000;

export function withDeadline<T>(deadline: number, fn: () => Promise<T>): Promise<T> {
  return current.run({ deadline }, fn);
}

/** Milliseconds the current invocation has left (Infinity outside one). */
export function remainingMs(now = Date.now()): number {
  const store = current.getStore();
  return store ? store.deadline - now : Number.POSITIVE_INFINITY;
}

/** Whether waiting `delayMs` for another try still leaves the reserve. */
export function timeToRetry(delayMs: number): boolean {
  return remainingMs() - delayMs > RESERVE_MS;
}
