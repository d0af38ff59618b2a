/** Lambda entry for the find-blobs stage: an SNS event in, the stage's messages out. */
import { awsRuntime } from '../core/aws-runtime';
import { topicHandler } from '../core/handler';

const runtime = awsRuntime('find-blobs');

export const handler = topicHandler('find-blobs', () => runtime);
