/** Lambda entry for the recombinator stage: an SQS batch in (partial failures reported back), the stage's messages out. */
import { awsRuntime } from '../core/aws-runtime';
import { topicHandler } from '../core/handler';

const { runtime, retryLater, flushingMetrics } = awsRuntime('recombinator');

export const handler = flushingMetrics(topicHandler('recombinator', () => runtime, { retryLater }));
