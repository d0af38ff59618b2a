/**
 * The CLI's progress line and closing summary. The progress line reads the run's
 * state, as `azs3copy status` does.
 */
import { countOf, formatBytes, mirrorLine, type RunReport } from '../core/report';
import type { RunLedger } from '../core/run-ledger';
import { formatDuration, statusOf } from '../core/status';

export { formatBytes };

export async function progressLine(ledger: RunLedger, runId: string, now = Date.now()): Promise<string | undefined> {
  const run = await ledger.getRun(runId);
  if (!run) return undefined;
  const s = statusOf(run, now);
  return (
    `[${formatDuration(s.elapsedSeconds)}] copied ${s.copied}${s.listingDone ? `/${s.routed - s.skipped - s.failed}` : ''} objects, ` +
    `${formatBytes(s.bytesMoved)} (${formatBytes(s.bytesPerSecond)}/s); skipped ${s.skipped}, failed ${s.failed}; ` +
    `listed ${s.listed}${s.listingDone ? '' : '+'}${s.unchanged ? `, ${s.unchanged} unchanged` : ''}` +
    (s.state === 'running' && s.etaSeconds !== null ? `; ETA ${formatDuration(s.etaSeconds)}` : '')
  );
}

/** Print progress every interval: one rewritten line on a terminal, plain lines otherwise. */
export function startProgress(ledger: RunLedger, runId: string, out: NodeJS.WriteStream = process.stderr, intervalMs?: number) {
  const tty = out.isTTY === true;
  let busy = false;
  const print = async (last: boolean) => {
    if (busy && !last) return;
    busy = true;
    try {
      const line = await progressLine(ledger, runId);
      if (line) out.write(tty ? `\r${line}\x1b[K${last ? '\n' : ''}` : `${line}\n`);
    } catch {
      // Progress is a courtesy: a failed read of the state must not stop the copy.
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void print(false), intervalMs ?? (tty ? 1000 : 5000));
  timer.unref();
  return async () => {
    clearInterval(timer);
    await print(true);
  };
}

export function summary(report: RunReport, maxLines = 20): string {
  const lines = [
    `run ${report.runId}${report.state === 'stalled' ? ' STALLED' : ''}: copied ${report.copiedCount} objects (${formatBytes(report.bytes)}) in ${report.seconds?.toFixed(1) ?? '?'}s; ` +
      `${report.unchanged} unchanged, ${countOf(report, 'skipped')} skipped, ${countOf(report, 'failed')} failed` +
      (countOf(report, 'outstanding') ? `, ${countOf(report, 'outstanding')} outstanding` : '') +
      (report.verifiedFromSource ? `; ${report.verifiedFromSource} verified from the source (GLACIER or DEEP_ARCHIVE: the blob read again from Azure)` : '') +
      (report.rehydrating ? `; ${report.rehydrating} rehydrating` : '') +
      (report.mirror && !report.mirror.refused ? `; mirror ${mirrorLine(report.mirror)}` : ''),
  ];
  // The guard tripped: one clear line, first.
  if (report.mirror?.refused) lines.unshift(`mirror refused: ${report.mirror.refused}`);
  const list = (title: string, items: { name: string; reason: string }[], count = items.length) => {
    if (items.length === 0) return;
    lines.push(`${title}:`);
    for (const item of items.slice(0, maxLines)) lines.push(`  ${shortName(item.name)}: ${item.reason}`);
    if (count > maxLines) lines.push(`  ... and ${count - maxLines} more (see the report)`);
  };
  list('failed', report.failed, countOf(report, 'failed'));
  list('outstanding', report.outstanding.map((o) => ({ name: o.name, reason: o.where })), countOf(report, 'outstanding'));
  list('skipped', report.skipped, countOf(report, 'skipped'));
  if (report.mirror) list('not deleted (mirror)', report.mirror.notDeleted);
  if (report.location) lines.push(`report in the bucket: s3://${report.location.bucket}/${report.location.html} (and report.json)`);
  return lines.join('\n') + '\n';
}

/** A name as the summary shows it: quoted, and cut in the middle when very long (the report has it whole). */
export function shortName(name: string, max = 100): string {
  if (name.length <= max) return JSON.stringify(name);
  return `${JSON.stringify(name.slice(0, max / 2))}...${JSON.stringify(name.slice(-20))} (${name.length} characters)`;
}
