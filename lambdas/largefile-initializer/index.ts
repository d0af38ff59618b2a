/** Lambda entry for the largefile-initializer stage: an SNS event in, the stage's messages out. */
import { awsRuntime } from '../core/aws-runtime';
import { topicHandler } from '../core/handler';

const runtime = awsRuntime('largefile-initializer');

export const handler = topicHandler('largefile-initializer', () => runtime);
