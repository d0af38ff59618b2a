/**
 * How far along a run is, from its state: what `azs3copy status` prints (as text
 * or JSON), and the progress line of a local copy. The rate is bytes (or, for
 * runs of empty blobs, objects) settled per second since the start; the ETA is
 * what is routed and not yet done at that rate (over what is listed so far, while
 * the listing goes on), null when there is no rate yet.
 */
import { formatBytes } from './report';
import type { RunLedger, RunRecord } from './run-ledger';

export interface RunStatus {
  runId: string;
  state: RunRecord['state'];
  copied: number;
  unchanged: number;
  skipped: number;
  failed: number;
  bytesCopied: number;
  /** Blobs given an outcome to reach so far, and how many have one. */
  routed: number;
  settled: number;
  routedBytes: number;
  bytesMoved: number;
  listed: number;
  listingDone: boolean;
  beforeBeginDate: number;
  filtered: number;
  startedAt: string;
  finishedAt?: string;
  lastProgressAt: string;
  elapsedSeconds: number;
  bytesPerSecond: number;
  objectsPerSecond: number;
  etaSeconds: number | null;
  stalledReason?: string;
  /** Failures so far, counted by reason (from the first units read, see `failuresCounted`). */
  failuresByReason: { reason: string; count: number }[];
  settings: RunRecord['settings'];
  report?: string;
}

export function statusOf(run: RunRecord, now = Date.now()): Omit<RunStatus, 'failuresByReason'> {
  const end = run.finishedAt ? Date.parse(run.finishedAt) : now;
  const elapsedSeconds = Math.max((end - Date.parse(run.startedAt)) / 1000, 0.001);
  const bytesPerSecond = run.bytesMoved / elapsedSeconds;
  const objectsPerSecond = run.settled / elapsedSeconds;
  let etaSeconds: number | null = null;
  if (run.state === 'complete') {
    etaSeconds = 0;
  } else if (run.state === 'running') {
    const bytesLeft = Math.max(run.routedBytes - run.bytesMoved, 0);
    const blobsLeft = Math.max(run.routed - run.settled, 0);
    if (bytesLeft > 0 && bytesPerSecond > 0) etaSeconds = Math.round(bytesLeft / bytesPerSecond);
    else if (bytesLeft === 0 && blobsLeft > 0 && objectsPerSecond > 0) etaSeconds = Math.round(blobsLeft / objectsPerSecond);
    else if (bytesLeft === 0 && blobsLeft === 0 && run.listingDone) etaSeconds = 0;
  }
  return {
    runId: run.runId,
    state: run.state,
    copied: run.copied,
    unchanged: run.unchanged,
    skipped: run.skipped,
    failed: run.failed,
    bytesCopied: run.bytesCopied,
    routed: run.routed,
    settled: run.settled,
    routedBytes: run.routedBytes,
    bytesMoved: run.bytesMoved,
    listed: run.listed,
    listingDone: run.listingDone,
    beforeBeginDate: run.beforeBeginDate,
    filtered: run.filtered,
    startedAt: run.startedAt,
    finishedAt: run.finishedAt,
    lastProgressAt: run.lastProgressAt,
    elapsedSeconds: Number(elapsedSeconds.toFixed(1)),
    bytesPerSecond: Math.round(bytesPerSecond),
    objectsPerSecond: Number(objectsPerSecond.toFixed(2)),
    etaSeconds,
    stalledReason: run.stalledReason,
    settings: run.settings,
    report: run.reportKey,
  };
}

/** Failures so far by reason, read from the run's units (at most `maxPages` pages of them). */
export async function failuresByReason(ledger: RunLedger, runId: string, maxPages = 20): Promise<{ reason: string; count: number }[]> {
  const counts = new Map<string, number>();
  for await (const unit of ledger.units(runId, { maxPages })) {
    for (let i = 0; i < unit.status.length; i++) {
      if (unit.status[i] !== 'f') continue;
      const reason = unit.reasons[i] ?? '';
      counts.set(reason, (counts.get(reason) ?? 0) + 1);
    }
  }
  return [...counts].map(([reason, count]) => ({ reason, count })).sort((a, b) => b.count - a.count);
}

export async function runStatus(ledger: RunLedger, run: RunRecord, now = Date.now()): Promise<RunStatus> {
  return { ...statusOf(run, now), failuresByReason: run.failed > 0 ? await failuresByReason(ledger, run.runId) : [] };
}

export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

const n = (value: number) => value.toLocaleString('en-US');

/** The human form of a status: a few lines. */
export function statusText(status: RunStatus, bucket?: string): string {
  const lines: string[] = [];
  const state = status.state === 'stalled' ? `STALLED: ${status.stalledReason ?? ''}` : status.state;
  lines.push(`run ${status.runId}: ${state}`);
  lines.push(`  source ${status.settings.account}/${status.settings.container} -> s3://${status.settings.bucket}/${status.settings.prefix}`);
  lines.push(`  started ${status.startedAt}${status.finishedAt ? `, ended ${status.finishedAt}` : ''} (${formatDuration(status.elapsedSeconds)})`);
  lines.push(
    `  objects: ${n(status.copied)} copied of ${n(status.routed)} routed${status.listingDone ? '' : ' so far'}; ` +
      `${n(status.unchanged)} unchanged, ${n(status.skipped)} skipped, ${n(status.failed)} failed`,
  );
  const share = status.routedBytes > 0 ? ` (${Math.min(100, Math.floor((status.bytesMoved / status.routedBytes) * 100))}%)` : '';
  lines.push(`  bytes:   ${formatBytes(status.bytesMoved)} of ${formatBytes(status.routedBytes)}${share} moved; ${formatBytes(status.bytesCopied)} in finished objects`);
  lines.push(`  listing: ${n(status.listed)} blobs listed, ${status.listingDone ? 'done' : 'going on'}` +
    (status.beforeBeginDate ? `; ${n(status.beforeBeginDate)} before begindate` : '') + (status.filtered ? `; ${n(status.filtered)} filtered out` : ''));
  lines.push(`  rate:    ${formatBytes(status.bytesPerSecond)}/s, ${status.objectsPerSecond} objects/s`);
  if (status.state === 'running') {
    lines.push(`  ETA:     ${status.etaSeconds === null ? 'unknown (no progress yet)' : formatDuration(status.etaSeconds)}${status.listingDone ? '' : ' for what is listed so far'}`);
  }
  if (status.failuresByReason.length > 0) {
    lines.push('  failures by reason:');
    for (const f of status.failuresByReason.slice(0, 10)) lines.push(`    ${String(f.count).padStart(6)}  ${f.reason}`);
  }
  if (status.report) lines.push(`  report:  s3://${bucket ?? status.settings.bucket}/${status.report.replace(/\.json$/, '.html')} (and .json)`);
  return lines.join('\n') + '\n';
}

/** One line per run, for `azs3copy runs`. */
export function runLine(run: RunRecord): string {
  const s = statusOf(run);
  return `${run.runId}  ${run.state.padEnd(8)}  copied ${n(run.copied)}/${n(run.routed)}  ${formatBytes(run.bytesCopied).padStart(10)}  ` +
    `unchanged ${n(run.unchanged)}  skipped ${n(run.skipped)}  failed ${n(run.failed)}  ${formatDuration(s.elapsedSeconds)}  ` +
    `${run.settings.account}/${run.settings.container} -> s3://${run.settings.bucket}/${run.settings.prefix}`;
}
