/**
 * Every run leaves a small object in its bucket saying where its state is kept:
 * `.azs3copy-state/runs/<runId>/state.json`, beside its report. Whoever has the
 * bucket can find any run, local or deployed (`azs3copy status --bucket`).
 */
import { reportKeys } from './report';
import type { StateLocation } from './state/table';

export interface RunPointer {
  v: 1;
  runId: string;
  state: StateLocation;
}

export function runPointerKey(runId: string): string {
  return reportKeys(runId).json.replace(/report\.json$/, 'state.json');
}
