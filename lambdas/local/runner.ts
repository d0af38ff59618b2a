/**
 * A local copy: qualify starts the run (checking source and bucket first, so bad
 * input is one line before anything is copied), then the pipeline runs until the
 * bus is quiet.
 */
import { qualify } from '../core/stages/qualify';
import { emptyReport, finishLocalRun, localPipeline, type LocalCopyOptions, type LocalRunResult } from './pipeline';

export { DEFAULT_LOCAL_CONCURRENCY, type LocalCopyOptions, type LocalRunResult } from './pipeline';

export async function runLocalCopy(options: LocalCopyOptions): Promise<LocalRunResult> {
  const pipeline = localPipeline(options);
  // Called directly rather than through its Lambda handler, so a configuration error reaches the CLI as one.
  const first = await qualify(pipeline.runtime, { runId: pipeline.runId });
  if (!first.started) {
    return { report: emptyReport(pipeline), deadLetters: [], bus: pipeline.bus.stats, started: false, reason: first.reason };
  }
  pipeline.started(pipeline.runId);
  return finishLocalRun(pipeline);
}
