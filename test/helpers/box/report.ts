/** The box's state as text: for the developer script and a failing test's message. */
import type { LogLine, FunctionStats } from './lambda/function';
import type { Denial } from './moto';
import type { BoxResource } from './provision';

export function formatLogs(lines: LogLine[], last?: number): string {
  const shown = last === undefined ? lines : lines.slice(-last);
  return shown.map((l) => `${l.at.toISOString().slice(11, 23)} [${l.functionName}]${l.requestId ? ` ${l.requestId.slice(0, 8)}` : ''} ${l.text}`).join('\n');
}

export function formatStats(stats: Record<string, FunctionStats>): string {
  const rows = Object.entries(stats).map(([name, s]) =>
    [name, s.invocations, s.failures, s.timeouts, s.coldStarts, s.peakConcurrency, s.longestMs, s.invocations ? Math.round(s.totalMs / s.invocations) : 0].map(String),
  );
  const header = ['function', 'invocations', 'failures', 'timeouts', 'cold', 'peak', 'longest ms', 'mean ms'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [header, ...rows].map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')).join('\n');
}

export interface ReportParts {
  resources: readonly BoxResource[];
  stats: Record<string, FunctionStats>;
  problems: readonly string[];
  notes: readonly string[];
  denials: readonly Denial[];
  timings: object;
}

export function formatReport(p: ReportParts): string {
  const out: string[] = [];
  const counts = ['created', 'emulated', 'ignored', 'skipped'].map((s) => `${p.resources.filter((r) => r.status === s).length} ${s}`);
  out.push(`resources: ${counts.join(', ')}`);
  for (const status of ['skipped', 'ignored'] as const) {
    for (const r of p.resources.filter((x) => x.status === status)) out.push(`  ${status} ${r.logicalId} (${r.type}): ${r.note ?? ''}`);
  }
  for (const r of p.resources.filter((x) => (x.status === 'created' || x.status === 'emulated') && x.note)) out.push(`  note ${r.logicalId} (${r.type}): ${r.note}`);
  for (const n of p.notes) out.push(`  note ${n}`);
  out.push(`timings: ${Object.entries(p.timings as Record<string, number>).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  out.push(formatStats(p.stats));
  if (p.problems.length) out.push('problems:', ...p.problems.map((x) => `  ${x}`));
  if (p.denials.length) {
    const unique = new Map(p.denials.map((d) => [`${d.user} ${d.action} ${d.resource}`, d]));
    out.push('AccessDenied:', ...[...unique.values()].map((d) => `  ${d.user.split('/').pop()} ${d.action} on ${d.resource}`));
  }
  return out.join('\n');
}
