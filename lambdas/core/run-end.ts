/**
 * What happens when a run ends (complete, or stalled), done by whichever stage
 * invocation recorded the ending: the report is built from the run state and
 * written to the bucket, the run notes where it is, metrics say how it ended, and
 * the operator hears one line with the report's location.
 */
import { errorMessage } from './errors';
import type { Logger } from './log';
import { METRIC, type MetricName } from './metrics';
import type { RunSettings } from './messages';
import { buildReport, endedBadly, reportKeys, summaryLine, writeReport, type RunReport, type Whereabouts } from './report';
import type { RunLedger, RunRecord } from './run-ledger';
import type { StateObjects } from './stores/types';

export interface EndOfRunDeps {
  ledger(): RunLedger;
  stateFor(settings: RunSettings): Pick<StateObjects, 'putJson' | 'putText'>;
  /** Where each outstanding unit's message waits (a stalled run). */
  whereabouts?(runId: string): Promise<Whereabouts>;
  /** Tell the operator (the deployed pipeline's operator topic). */
  notify?(subject: string, text: string): Promise<void>;
  metric?(name: MetricName, value: number): void;
  log: Logger;
  /** Called with the report once written (the local runner prints it). */
  onReport?(report: RunReport): void;
}

export function endOfRun(deps: EndOfRunDeps) {
  return async (run: RunRecord): Promise<void> => {
    const log = deps.log.child({ runId: run.runId });
    let whereabouts: Whereabouts = new Map();
    if (run.state === 'stalled' && deps.whereabouts) {
      try {
        whereabouts = await deps.whereabouts(run.runId);
      } catch (error) {
        log.warn('could not look into the dead-letter queues for the outstanding blobs', { error: errorMessage(error) });
      }
    }
    const report = await buildReport(deps.ledger(), run, whereabouts);
    await writeReport(deps.stateFor(run.settings), report);
    await deps.ledger().reported(run.runId, reportKeys(run.runId).json);
    if (run.state === 'complete') {
      deps.metric?.(METRIC.runsCompleted, 1);
      deps.metric?.(METRIC.runsWithFailures, endedBadly(report) ? 1 : 0);
    } else {
      deps.metric?.(METRIC.runsStalled, 1);
    }
    const line = summaryLine(report);
    (endedBadly(report) || run.state === 'stalled' ? log.warn : log.info)('run ended', { summary: line });
    deps.onReport?.(report);
    if (deps.notify) {
      try {
        await deps.notify(`azs3copy run ${run.runId} ${run.state === 'stalled' ? 'stalled' : 'complete'}`, line);
      } catch (error) {
        log.warn('could not notify the operator topic', { error: errorMessage(error) });
      }
    }
  };
}
