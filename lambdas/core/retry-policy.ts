/**
 * How often, and how soon, a stage message that failed is tried again: by the
 * queue that feeds the stage (deployed) or the local bus. One policy for both, in a
 * module with no weight, so the CDK stack sizes the queues from the same numbers.
 *
 * After a failed try the message waits a few seconds, then longer each time; after
 * its fifth try it is dead-lettered. Request-level retries inside each try have
 * already waited out short trouble, so a message that cannot succeed reaches its
 * dead-letter queue within about four minutes plus the time of its tries.
 */
export const RETRY_DELAYS_SECONDS = [5, 15, 30, 60, 120] as const;

/** Tries of a message before it is dead-lettered: the queue's maxReceiveCount. */
export const MAX_RECEIVES = RETRY_DELAYS_SECONDS.length;

/**
 * How long a message waits after its `receiveCount`-th try failed. AZS3COPY_RETRY_DELAYS_SECONDS (a comma list)
 * replaces the delays, for a test's sake or an operator's; the number of tries stays the queue's.
 */
export function retryDelaySeconds(receiveCount: number, env: NodeJS.ProcessEnv = process.env): number {
  const given = env.AZS3COPY_RETRY_DELAYS_SECONDS?.split(',').map(Number).filter((n) => Number.isFinite(n) && n >= 0);
  const delays = given?.length ? given : RETRY_DELAYS_SECONDS;
  return delays[Math.min(Math.max(receiveCount, 1), delays.length) - 1];
}
