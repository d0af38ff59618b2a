/** Lambda entry for the recombinator stage: an SNS event in, the stage's messages out. */
import { awsRuntime } from '../core/aws-runtime';
import { topicHandler } from '../core/handler';

const runtime = awsRuntime('recombinator');

export const handler = topicHandler('recombinator', () => runtime);
