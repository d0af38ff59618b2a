/**
 * A run's report, built from its state when the run ends (complete or stalled) and
 * written to the bucket beside the state: `.azs3copy-state/runs/<runId>/report.json`
 * and `report.html`, a page a person can read (totals, duration, throughput,
 * settings, every blob not copied with its reason). The local CLI prints and
 * writes the same report.
 */
import { usd } from './cost/cost';
import type { RunCosts } from './cost/run-costs';
import { STATE_PREFIX } from './keys';
import { destinationName, destinationsOf } from './destinations';
import type { RunSettings } from './messages';
import type { RunLedger, RunRecord, UnitRecord } from './run-ledger';
import type { StateObjects } from './stores/types';

export interface NamedReason {
  name: string;
  reason: string;
}

export interface RunReport {
  runId: string;
  state: RunRecord['state'];
  /**
   * Names of the blobs copied, in name order: all of them up to REPORT_COPIED_NAMES, else that many (the first
   * the run's units hold). A run of ten million blobs would otherwise hold every name in the memory of the
   * invocation that ends it, and write them as one JSON string past V8's largest.
   */
  copied: string[];
  /** How many blobs were copied (`copied` may name fewer). */
  copiedCount: number;
  /**
   * The blobs skipped, failed and outstanding, with why or where: each list up to REPORT_OUTCOME_NAMES, in name
   * order (the first the run's units hold), and its count beside it. A container of ten million archived blobs
   * would otherwise put ten million names and reasons in the memory of the invocation that ends the run.
   */
  skipped: NamedReason[];
  failed: NamedReason[];
  /** Blobs with no outcome yet (a stalled run), each with where its message is. */
  outstanding: { name: string; where: string }[];
  /** How many were skipped, failed, outstanding (the lists may name fewer; absent in a report of an older release). */
  skippedCount?: number;
  failedCount?: number;
  outstandingCount?: number;
  /** Bytes copied. */
  bytes: number;
  unchanged: number;
  beforeBeginDate: number;
  filtered: number;
  listed: number;
  startedAt: string;
  finishedAt?: string;
  seconds?: number;
  stalledReason?: string;
  throughput: { bytesPerSecond: number; objectsPerSecond: number };
  settings: {
    account: string; container: string; bucket: string; prefix: string; beginDate?: string; largeBlobBytes: number; partBytes: number;
    /** Several containers (or every one): names read `<container>/<blob name>`, keys `<prefix><container>/<blob name>`. */
    containers?: number;
    filters?: RunSettings['filters'];
    storage?: string;
    archive?: RunSettings['archive'];
    mirror?: boolean;
  };
  /** Archived blobs whose rehydration is started or under way (among the skipped). */
  rehydrating: number;
  /**
   * Copies (among the copied) checked by reading their blob again from Azure rather than reading them back:
   * multipart copies in GLACIER or DEEP_ARCHIVE, which S3 gives back only after a restore.
   */
  verifiedFromSource: number;
  /** Mirror: what became of the copies whose blob is gone. */
  mirror?: MirrorReport;
  /** Several destinations: each one's outcome (a blob's own outcome above is the worst of its destinations'). */
  destinations?: DestinationReport[];
  /** Per stage, invocations and the longest (local runs). */
  invocations?: Record<string, { count: number; maxSeconds: number }>;
  /** Where this report is kept. */
  location?: { bucket: string; json: string; html: string };
  /** The requests the run made and their cost, beside the plan's prediction when a plan preceded it. */
  costs?: RunCosts;
}

export interface DestinationReport {
  /** `s3://bucket/prefix`. */
  destination: string;
  /** Copies written to it (in this run). */
  copied: number;
  /** Blobs it held already: unchanged in it, though another destination needed a copy (or every one held it). */
  unchanged: number;
  skipped: number;
  failed: number;
  /** Blobs still without an outcome in it. */
  outstanding: number;
}

export interface MirrorReport {
  /** Copies found whose blob is gone from the source. */
  planned: number;
  /** Every key deleted, in key order. */
  deleted: string[];
  /** Keys that were to go but did not, with why. */
  notDeleted: NamedReason[];
  /** The guard tripped: nothing was deleted, and why. */
  refused?: string;
}

/** How many blobs were skipped, failed or are outstanding: the count, or (a report of an older release) its list's length. */
export function countOf(report: Pick<RunReport, 'skipped' | 'failed' | 'outstanding' | 'skippedCount' | 'failedCount' | 'outstandingCount'>, outcome: 'skipped' | 'failed' | 'outstanding'): number {
  return report[`${outcome}Count`] ?? report[outcome].length;
}

/** A run went wrong somewhere: a blob failed or is outstanding, or the mirror refused or could not delete. */
export function endedBadly(report: RunReport): boolean {
  return countOf(report, 'failed') > 0 || countOf(report, 'outstanding') > 0 || report.mirror?.refused !== undefined || (report.mirror?.notDeleted.length ?? 0) > 0;
}

export function reportKeys(runId: string) {
  const base = `${STATE_PREFIX}runs/${runId}/`;
  return { json: `${base}report.json`, html: `${base}report.html` };
}

/** Where a pending blob's message is: by unit, what a dead-letter search found; otherwise a general answer. */
export type Whereabouts = Map<string, string>;

/** The most copied blobs a report names. */
export const REPORT_COPIED_NAMES = 10_000;
/** Skipped, failed and outstanding blobs named in a report, each. */
export const REPORT_OUTCOME_NAMES = 10_000;

export async function buildReport(ledger: RunLedger, run: RunRecord, whereabouts: Whereabouts = new Map()): Promise<RunReport> {
  const copied: string[] = [];
  let copiedCount = 0;
  const fromSource = { count: 0 };
  const skipped: NamedReason[] = [];
  const failed: NamedReason[] = [];
  const outstanding: { name: string; where: string }[] = [];
  const counts = { skipped: 0, failed: 0, outstanding: 0, rehydrating: 0 };
  // With several containers a blob's name is qualified by its container (its unit's id starts with it).
  const nameOf = (unit: UnitRecord, name: string) => (run.byContainer ? `${unit.unit.slice(0, unit.unit.indexOf('.'))}/${name}` : name);
  const destinations = run.settings.also?.length
    ? destinationsOf(run.settings).map((d): DestinationReport => ({ destination: destinationName(d), copied: 0, unchanged: run.unchanged, skipped: 0, failed: 0, outstanding: 0 }))
    : undefined;
  for await (const unit of ledger.units(run.runId)) {
    copiedCount += collect(unit, { copied, skipped, failed, outstanding }, counts, whereabouts, nameOf);
    if (destinations) countDestinations(unit, destinations);
    fromSource.count += (unit.fromSource ?? []).filter((i) => unit.status[i] === 'c').length;
  }
  const mirror = run.settings.mirror ? await mirrorReport(ledger, run) : undefined;
  const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  copied.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  skipped.sort(byName);
  failed.sort(byName);
  outstanding.sort(byName);
  const finishedAt = run.finishedAt;
  const seconds = finishedAt ? (Date.parse(finishedAt) - Date.parse(run.startedAt)) / 1000 : undefined;
  const elapsed = Math.max(seconds ?? (Date.now() - Date.parse(run.startedAt)) / 1000, 0.001);
  const { account, container, bucket, prefix, beginDate, largeBlobBytes, partBytes } = run.settings;
  const keys = reportKeys(run.runId);
  return {
    runId: run.runId,
    state: run.state,
    copied,
    copiedCount,
    skipped,
    failed,
    outstanding,
    skippedCount: counts.skipped,
    failedCount: counts.failed,
    outstandingCount: counts.outstanding,
    bytes: run.bytesCopied,
    unchanged: run.unchanged,
    beforeBeginDate: run.beforeBeginDate,
    filtered: run.filtered,
    listed: run.listed,
    startedAt: run.startedAt,
    finishedAt,
    seconds,
    stalledReason: run.stalledReason,
    throughput: { bytesPerSecond: Math.round(run.bytesCopied / elapsed), objectsPerSecond: Number((run.copied / elapsed).toFixed(2)) },
    settings: {
      account, container, bucket, prefix, beginDate, largeBlobBytes, partBytes,
      ...(run.byContainer ? { containers: run.containers } : {}),
      ...(run.settings.filters ? { filters: run.settings.filters } : {}),
      ...(storageOf(run.settings) ? { storage: storageOf(run.settings) } : {}),
      ...(run.settings.archive ? { archive: run.settings.archive } : {}),
      ...(run.settings.mirror ? { mirror: true } : {}),
    },
    rehydrating: counts.rehydrating,
    verifiedFromSource: fromSource.count,
    ...(mirror ? { mirror } : {}),
    ...(destinations ? { destinations } : {}),
    location: { bucket, json: keys.json, html: keys.html },
  };
}

/** The storage class asked for, as the report shows it. */
export function storageOf(settings: RunSettings): string | undefined {
  const { storageClass, tierMap } = settings.writing ?? {};
  if (tierMap) return `by tier: ${Object.entries(tierMap).map(([tier, cls]) => `${tier}=${cls}`).join(',')}${storageClass ? `, else ${storageClass}` : ''}`;
  return storageClass;
}

async function mirrorReport(ledger: RunLedger, run: RunRecord): Promise<MirrorReport> {
  const deleted: string[] = [];
  const notDeleted: NamedReason[] = [];
  for await (const unit of ledger.units(run.runId, { deletes: true })) {
    unit.names.forEach((key, i) => {
      if (unit.status[i] === 'c') deleted.push(key);
      else if (!run.mirrorRefused) {
        notDeleted.push({ name: key, reason: unit.reasons[i] ?? (unit.status[i] === 'p' ? 'not deleted yet: the run ended first' : '') });
      }
    });
  }
  deleted.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return { planned: run.deletesPlanned ?? 0, deleted, notDeleted, ...(run.mirrorRefused ? { refused: run.mirrorRefused } : {}) };
}

/** Each destination's share of a unit: its own code where the blob went to several, else the blob's. */
function countDestinations(unit: UnitRecord, into: DestinationReport[]) {
  if (unit.deletes) return;
  for (let i = 0; i < unit.names.length; i++) {
    const codes = unit.dests?.[i];
    into.forEach((destination, d) => {
      const code = codes ? (codes[d] ?? '-') : unit.status[i];
      if (code === 'c') destination.copied++;
      else if (code === '-') destination.unchanged++;
      else if (code === 's') destination.skipped++;
      else if (code === 'f') destination.failed++;
      else destination.outstanding++;
    });
  }
}

function collect(
  unit: UnitRecord,
  into: { copied: string[]; skipped: NamedReason[]; failed: NamedReason[]; outstanding: { name: string; where: string }[] },
  counts: { skipped: number; failed: number; outstanding: number; rehydrating: number },
  whereabouts: Whereabouts,
  nameOf: (unit: UnitRecord, name: string) => string,
): number {
  let copied = 0;
  for (let i = 0; i < unit.names.length; i++) {
    const code = unit.status[i];
    if (code === 'c') {
      copied++;
      if (into.copied.length < REPORT_COPIED_NAMES) into.copied.push(nameOf(unit, unit.names[i]));
      continue;
    }
    if (code === 's') {
      const reason = unit.reasons[i] ?? '';
      counts.skipped++;
      if (reason.startsWith('rehydrating')) counts.rehydrating++;
      if (into.skipped.length < REPORT_OUTCOME_NAMES) into.skipped.push({ name: nameOf(unit, unit.names[i]), reason });
    } else if (code === 'f') {
      counts.failed++;
      if (into.failed.length < REPORT_OUTCOME_NAMES) into.failed.push({ name: nameOf(unit, unit.names[i]), reason: unit.reasons[i] ?? '' });
    } else {
      counts.outstanding++;
      if (into.outstanding.length < REPORT_OUTCOME_NAMES) {
        into.outstanding.push({
          name: nameOf(unit, unit.names[i]),
          where: whereabouts.get(unit.unit) ??
            `no message for it was found in a dead-letter queue: it is still queued for ${unit.large ? 'the large-blob stages' : 'download'}, or was lost`,
        });
      }
    }
  }
  return copied;
}

export async function writeReport(state: Pick<StateObjects, 'putJson' | 'putText'>, report: RunReport): Promise<void> {
  const keys = reportKeys(report.runId);
  await state.putJson(keys.json, report);
  await state.putText(keys.html, reportHtml(report), 'text/html; charset=utf-8');
}

const MiB = 1024 * 1024;

export function formatBytes(bytes: number): string {
  if (bytes >= 1024 * MiB) return `${(bytes / 1024 / MiB).toFixed(2)} GiB`;
  if (bytes >= MiB) return `${(bytes / MiB).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} B`;
}

export function filtersText(filters: NonNullable<RunSettings['filters']>): string {
  const parts = [
    ...(filters.include?.length ? [`include ${filters.include.join(' ')}`] : []),
    ...(filters.exclude?.length ? [`exclude ${filters.exclude.join(' ')}`] : []),
    ...(filters.minSize !== undefined ? [`at least ${filters.minSize} bytes`] : []),
    ...(filters.maxSize !== undefined ? [`at most ${filters.maxSize} bytes`] : []),
  ];
  return parts.join('; ');
}

function keyList(title: string, id: string, keys: string[]): string {
  if (keys.length === 0) return '';
  const e = escapeHtml;
  return `<h2 id="${id}">${e(title)} (${keys.length})</h2>\n<table class="blobs"><thead><tr><th>key</th></tr></thead><tbody>\n` +
    keys.map((k) => `<tr><td class="name">${e(k)}</td></tr>`).join('\n') + '\n</tbody></table>';
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** One line for the operator topic and the log. */
export function summaryLine(report: RunReport): string {
  const head = report.state === 'stalled' ? `run ${report.runId} STALLED` : `run ${report.runId} complete`;
  const parts = [
    `copied ${report.copiedCount} (${formatBytes(report.bytes)})`,
    `unchanged ${report.unchanged}`,
    `skipped ${countOf(report, 'skipped')}`,
    `failed ${countOf(report, 'failed')}`,
    ...(countOf(report, 'outstanding') ? [`outstanding ${countOf(report, 'outstanding')}`] : []),
    ...(report.mirror ? [mirrorLine(report.mirror)] : []),
  ];
  const where = report.location ? `; report: s3://${report.location.bucket}/${report.location.html}` : '';
  return `${head}: ${parts.join(', ')}${report.seconds !== undefined ? ` in ${report.seconds.toFixed(0)} s` : ''}${where}`;
}

/** The mirror's part of a summary, in a few words. */
export function mirrorLine(mirror: MirrorReport): string {
  if (mirror.refused) return `mirror REFUSED (${mirror.planned} deletions, nothing deleted)`;
  return `deleted ${mirror.deleted.length}${mirror.notDeleted.length ? ` (${mirror.notDeleted.length} not deleted)` : ''}`;
}

function destinationsTable(destinations: DestinationReport[]): string {
  const e = escapeHtml;
  return `<h2>Destinations</h2><table><thead><tr><th>destination</th><th>copied</th><th>unchanged</th><th>skipped</th><th>failed</th><th>outstanding</th></tr></thead><tbody>\n` +
    destinations.map((d) => `<tr><td class="name">${e(d.destination)}</td><td>${d.copied}</td><td>${d.unchanged}</td><td>${d.skipped}</td><td>${d.failed}</td><td>${d.outstanding}</td></tr>`).join('\n') +
    '\n</tbody></table>';
}

export function reportHtml(report: RunReport): string {
  const e = escapeHtml;
  const row = (label: string, value: string | number) => `<tr><th>${e(label)}</th><td>${e(String(value))}</td></tr>`;
  const list = (title: string, id: string, items: { name: string; text: string }[]) =>
    items.length === 0
      ? ''
      : `<h2 id="${id}">${e(title)} (${items.length})</h2>\n<table class="blobs"><thead><tr><th>blob</th><th>why</th></tr></thead><tbody>\n` +
        items.map((i) => `<tr><td class="name">${e(i.name)}</td><td>${e(i.text)}</td></tr>`).join('\n') +
        '\n</tbody></table>';
  const s = report.settings;
  const state = report.state === 'stalled' ? `stalled: ${report.stalledReason ?? ''}` : report.state;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>azs3copy run ${e(report.runId)}</title>
<style>body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}td.name{font-family:monospace;white-space:pre-wrap;word-break:break-all}table.blobs td:last-child{min-width:22em}
.state-stalled{color:#a00}.state-complete{color:#060}</style></head>
<body>
<h1>azs3copy run ${e(report.runId)}</h1>
<p class="state-${e(report.state)}"><strong>${e(state)}</strong></p>
<h2>Totals</h2><table>
${row('listed', report.listed)}
${row('copied', `${report.copiedCount} objects, ${formatBytes(report.bytes)}`)}
${row('unchanged (already in S3)', report.unchanged)}
${row('before begindate', report.beforeBeginDate)}
${row('filtered out (include/exclude/size)', report.filtered)}
${row('skipped', countOf(report, 'skipped'))}
${report.verifiedFromSource ? row('verified from the source (among the copied: GLACIER or DEEP_ARCHIVE, the blob read again from Azure)', report.verifiedFromSource) : ''}
${report.rehydrating ? row('rehydrating (among the skipped)', report.rehydrating) : ''}
${report.mirror ? row('mirror', report.mirror.refused ? `refused: ${report.mirror.refused}` : `${report.mirror.deleted.length} deleted of ${report.mirror.planned} whose blob is gone`) : ''}
${row('failed', countOf(report, 'failed'))}
${row('outstanding', countOf(report, 'outstanding'))}
${row('started', report.startedAt)}
${row('finished', report.finishedAt ?? '')}
${row('duration', report.seconds !== undefined ? `${report.seconds.toFixed(1)} s` : '')}
${row('throughput', `${formatBytes(report.throughput.bytesPerSecond)}/s, ${report.throughput.objectsPerSecond} objects/s`)}
</table>
<h2>Settings</h2><table>
${row('source', s.containers ? `${s.account}: ${s.containers} containers` : `${s.account}/${s.container}`)}
${row(report.destinations ? 'destinations' : 'destination', report.destinations ? report.destinations.map((d) => d.destination).join(', ') : `s3://${s.bucket}/${s.prefix}`)}
${row('begindate', s.beginDate ?? '(every blob)')}
${row('large-blob threshold', formatBytes(s.largeBlobBytes))}
${row('part size', formatBytes(s.partBytes))}
${s.filters ? row('filters', filtersText(s.filters)) : ''}
${s.storage ? row('storage class', s.storage) : ''}
${s.archive ? row('archived blobs', s.archive) : ''}
${s.mirror ? row('mirror', 'on: copies whose blob is gone are deleted') : ''}
</table>
${report.destinations ? destinationsTable(report.destinations) : ''}
${report.costs ? costsTable(report.costs) : ''}
${list('Failed', 'failed', report.failed.map((f) => ({ name: f.name, text: f.reason })))}
${list('Outstanding', 'outstanding', report.outstanding.map((o) => ({ name: o.name, text: o.where })))}
${list('Skipped', 'skipped', report.skipped.map((f) => ({ name: f.name, text: f.reason })))}
${report.mirror ? list('Not deleted (mirror)', 'not-deleted', report.mirror.notDeleted.map((f) => ({ name: f.name, text: f.reason }))) : ''}
${report.mirror ? keyList('Deleted (mirror)', 'deleted', report.mirror.deleted) : ''}
<p>The lists are in <code>${e(reportKeys(report.runId).json)}</code> too, with the copied blobs (named up to ${REPORT_COPIED_NAMES.toLocaleString('en-US')}; the failed, outstanding and skipped up to ${REPORT_OUTCOME_NAMES.toLocaleString('en-US')} each).</p>
</body></html>
`;
}

/** The run's requests and costs, beside the plan's when there was one. */
function costsTable(costs: RunCosts): string {
  const e = escapeHtml;
  const predicted = costs.predicted;
  const rows: string[] = [];
  for (const [service, ops] of Object.entries(costs.actual.requests)) {
    for (const [op, n] of Object.entries(ops)) {
      const p = predicted?.requests[service]?.[op];
      rows.push(`<tr><td>${e(service)}</td><td>${e(op)}</td><td>${n}</td>${predicted ? `<td>${p ?? ''}</td>` : ''}</tr>`);
    }
  }
  return `<h2>Requests and cost</h2><table><thead><tr><th>service</th><th>operation</th><th>made</th>${predicted ? `<th>planned (${e(predicted.from)})</th>` : ''}</tr></thead><tbody>
${rows.join('\n')}
<tr><th colspan="2">cost (${e(costs.actual.cost.region)} prices of ${e(costs.actual.cost.pricesDate)})</th><td>${e(usd(costs.actual.cost.totalUsd))}</td>${predicted ? `<td>${e(usd(predicted.cost.totalUsd))}</td>` : ''}</tr>
</tbody></table>`;
}
