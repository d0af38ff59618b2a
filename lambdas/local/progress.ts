/**
 * The CLI's progress line and closing summary, from the run's ledger.
 */
import type { MemoryLedger, RunReport } from '../core/ledger';

const MiB = 1024 * 1024;

export function formatBytes(bytes: number): string {
  if (bytes >= 1024 * MiB) return `${(bytes / 1024 / MiB).toFixed(2)} GiB`;
  if (bytes >= MiB) return `${(bytes / MiB).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} B`;
}

export function progressLine(ledger: MemoryLedger, startedAt: number, now = Date.now()): string {
  let copied = 0, skipped = 0, failed = 0;
  for (const o of ledger.outcomes.values()) {
    if (o.status === 'copied') copied++;
    else if (o.status === 'skipped') skipped++;
    else failed++;
  }
  const seconds = Math.max((now - startedAt) / 1000, 0.001);
  const bytes = ledger.copiedBytes();
  const t = ledger.totals;
  const routed = t.routedSmall + t.routedLarge;
  return (
    `[${seconds.toFixed(0)}s] copied ${copied}${t.done ? `/${routed}` : ''} objects, ${formatBytes(bytes)}` +
    ` (${formatBytes(bytes / seconds)}/s); skipped ${skipped}, failed ${failed}; listed ${t.listed}${t.done ? '' : '+'}` +
    (t.unchanged ? `, ${t.unchanged} unchanged` : '')
  );
}

/** Print progress every interval: one rewritten line on a terminal, plain lines otherwise. */
export function startProgress(ledger: MemoryLedger, out: NodeJS.WriteStream = process.stderr, intervalMs?: number) {
  const startedAt = Date.now();
  const tty = out.isTTY === true;
  const timer = setInterval(() => {
    const line = progressLine(ledger, startedAt);
    out.write(tty ? `\r${line}\x1b[K` : `${line}\n`);
  }, intervalMs ?? (tty ? 500 : 5000));
  timer.unref();
  return () => {
    clearInterval(timer);
    out.write(`${tty ? '\r' : ''}${progressLine(ledger, startedAt)}${tty ? '\x1b[K' : ''}\n`);
  };
}

export function summary(report: RunReport, maxLines = 20): string {
  const lines = [
    `run ${report.runId}: copied ${report.copied.length} objects (${formatBytes(report.bytes)}) in ${report.seconds?.toFixed(1) ?? '?'}s; ` +
      `${report.unchanged} unchanged, ${report.skipped.length} skipped, ${report.failed.length} failed`,
  ];
  const list = (title: string, items: { name: string; reason: string }[]) => {
    if (items.length === 0) return;
    lines.push(`${title}:`);
    for (const item of items.slice(0, maxLines)) lines.push(`  ${shortName(item.name)}: ${item.reason}`);
    if (items.length > maxLines) lines.push(`  ... and ${items.length - maxLines} more (see the report)`);
  };
  list('failed', report.failed);
  list('skipped', report.skipped);
  return lines.join('\n') + '\n';
}

/** A name as the summary shows it: quoted, and cut in the middle when very long (the report has it whole). */
export function shortName(name: string, max = 100): string {
  if (name.length <= max) return JSON.stringify(name);
  return `${JSON.stringify(name.slice(0, max / 2))}...${JSON.stringify(name.slice(-20))} (${name.length} characters)`;
}
