/** Lambda entry for the parter stage: an SQS batch in (partial failures reported back), the stage's messages out. */
import { awsRuntime } from '../core/aws-runtime';
import { topicHandler } from '../core/handler';

const { runtime, retryLater, flushingMetrics } = awsRuntime('parter');

export const handler = flushingMetrics(topicHandler('parter', () => runtime, { retryLater }));
