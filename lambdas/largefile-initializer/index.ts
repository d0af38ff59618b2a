/** Lambda entry for the largefile-initializer stage: an SQS batch in (partial failures reported back), the stage's messages out. */
import { awsRuntime } from '../core/aws-runtime';
import { topicHandler } from '../core/handler';

const { runtime, retryLater, flushingMetrics } = awsRuntime('largefile-initializer');

export const handler = flushingMetrics(topicHandler('largefile-initializer', () => runtime, { retryLater }));
