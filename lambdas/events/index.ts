/** Lambda entry for the events stage (lambda07): Event Grid's webhook, at the function's URL. */
import { awsRuntime } from '../core/aws-runtime';
import { eventsHandler } from '../core/handler';

const { runtime, flushingMetrics } = awsRuntime('events');

export const handler = flushingMetrics(eventsHandler(() => runtime));
