/** Lambda entry for the qualify stage: a schedule or a person starts a run; a frequent schedule checks it for a stall. */
import { awsRuntime } from '../core/aws-runtime';
import { qualifyHandler } from '../core/handler';

const { runtime, flushingMetrics } = awsRuntime('qualify');

export const handler = flushingMetrics(qualifyHandler(() => runtime));
