/** Lambda entry for the qualify stage: a schedule or a person starts a run. */
import { awsRuntime } from '../core/aws-runtime';
import { qualifyHandler } from '../core/handler';

const runtime = awsRuntime('qualify');

export const handler = qualifyHandler(() => runtime);
