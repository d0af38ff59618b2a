/** Lambda entry for the download stage: an SNS event in, the stage's messages out. */
import { awsRuntime } from '../core/aws-runtime';
import { topicHandler } from '../core/handler';

const runtime = awsRuntime('download');

export const handler = topicHandler('download', () => runtime);
