/** Lambda entry for the download stage: an SQS batch in (partial failures reported back), the stage's messages out. */
import { awsRuntime } from '../core/aws-runtime';
import { topicHandler } from '../core/handler';

const { runtime, retryLater, flushingMetrics } = awsRuntime('download');

export const handler = flushingMetrics(topicHandler('download', () => runtime, { retryLater }));
