/** Lambda entry for the parter stage: an SNS event in, the stage's messages out. */
import { awsRuntime } from '../core/aws-runtime';
import { topicHandler } from '../core/handler';

const runtime = awsRuntime('parter');

export const handler = topicHandler('parter', () => runtime);
