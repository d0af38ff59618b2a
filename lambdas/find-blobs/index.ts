/** Lambda entry for the find-blobs stage: an SQS batch in (partial failures reported back), the stage's messages out. */
import { awsRuntime } from '../core/aws-runtime';
import { topicHandler } from '../core/handler';

const { runtime, retryLater, flushingMetrics } = awsRuntime('find-blobs');

export const handler = flushingMetrics(topicHandler('find-blobs', () => runtime, { retryLater }));
