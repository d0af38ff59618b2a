/**
 * A plan, as `azs3copy plan` prints it and a dry run writes it to the run's report
 * location: what would be copied (names, objects and bytes by path), what is
 * unchanged, skipped and failing with reasons, the requests the copy would make,
 * what they cost (deployed, and with the local CLI), the Azure egress and
 * operations, and how long it would take.
 */
import { escapeHtml, filtersText, formatBytes, reportKeys, storageOf, type NamedReason } from '../report';
import type { RunSettings } from '../messages';
import { deleteLimit } from '../selection';
import { costOf, usd, type CostEstimate } from './cost';
import { predictDeployed, predictLocal, RATES, type Timing } from './predict';
import type { PriceList } from './prices';
import { tidyCounts, type RequestCounts } from './requests';
import type { PlanEntry, PlanTally } from './tally';

export interface PlanEstimate {
  requests: RequestCounts;
  cost: CostEstimate;
  seconds: number;
}

export interface PlanReport {
  kind: 'plan';
  /** The dry run's id (a plan made by `azs3copy plan` has one too, never written anywhere). */
  runId: string;
  createdAt: string;
  source: { account: string; containers: string[] };
  destination: { bucket: string; prefix: string };
  /**
   * Names of the blobs a copy would copy, in name order; like `skip`, `fail` and the mirror's `delete`, up to
   * PLAN_NAMES (the first the listing found), with every one counted in `counts`: a dry run of ten million blobs
   * would otherwise hold every name in the memory of the invocation that writes its plan.
   */
  copy: string[];
  unchanged: number;
  skip: NamedReason[];
  fail: NamedReason[];
  /** How many blobs each list stands for (absent in a plan of an older release: its lists were whole). */
  counts?: { copy: number; skip: number; fail: number; delete: number };
  /** Skipped and failing blobs by reason, every one counted (up to PLAN_REASONS reasons, the rest together). */
  skipReasons?: Record<string, number>;
  failReasons?: Record<string, number>;
  beforeBeginDate: number;
  filtered: number;
  listed: number;
  /** Archived blobs whose rehydration a copy would start (among the skipped), and their bytes. */
  rehydrate: { objects: number; bytes: number };
  /**
   * Mirror: the copies whose blob is gone (keys, in key order), which a copy would delete unless its guard
   * refuses them all (then it deletes none and says why). A plan deletes nothing.
   */
  mirror?: { delete: string[]; bytes: number; guard: number; refused?: string };
  objects: { copy: number; single: number; multipart: number; parts: number };
  bytes: { copy: number; single: number; multipart: number; unchanged: number };
  /** Deployed: the requests by service and operation, their cost, the time. */
  requests: RequestCounts;
  cost: CostEstimate;
  seconds: number;
  stages: Timing['stages'];
  /** The same copy with the local CLI (run state in the bucket). */
  local: PlanEstimate;
  azure: { egressGiB: number; egressUsd: number; freeAllowance: string; operationsUsd: number; region: string };
  prices: { region: string; date: string; sources: Record<string, string>; note?: string };
  assumptions: string[];
  settings: Pick<RunSettings, 'largeBlobBytes' | 'partBytes' | 'beginDate' | 'filters' | 'archive' | 'mirror' | 'maxDeletes'> & {
    blobsPerMessage: number;
    /** The storage class asked for, as the report shows it. */
    storage?: string;
  };
  location?: { bucket: string; json: string; html: string };
}

export interface PlanInput {
  runId: string;
  settings: RunSettings;
  containers: string[];
  tally: PlanTally;
  names: PlanNames;
  prices: PriceList;
  pricesNote?: string;
  blobsPerMessage: number;
  /** Where a dry run's plan is kept. */
  location?: boolean;
}

const GiB = 1024 ** 3;
const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** Names a plan keeps in each of its lists. */
export const PLAN_NAMES = 10_000;
/** Distinct reasons a plan counts on their own, for skipped and for failing blobs; the rest are counted together. */
export const PLAN_REASONS = 100;
const OTHER_REASONS = '(other reasons)';

/** The plan's lists, bounded, and what they stand for, counted in full. */
export interface PlanNames {
  copy: string[];
  skip: NamedReason[];
  fail: NamedReason[];
  deletes: string[];
  counts: { copy: number; skip: number; fail: number; delete: number };
  skipReasons: Record<string, number>;
  failReasons: Record<string, number>;
}

/** Gather a plan's entries as they are read, page by page, keeping at most PLAN_NAMES names of each kind. */
export function planNamesCollector(): { add(entry: PlanEntry): void; names: PlanNames } {
  const names: PlanNames = { copy: [], skip: [], fail: [], deletes: [], counts: { copy: 0, skip: 0, fail: 0, delete: 0 }, skipReasons: {}, failReasons: {} };
  const countReason = (by: Record<string, number>, reason: string) => {
    const key = reason in by || Object.keys(by).length < PLAN_REASONS ? reason : OTHER_REASONS;
    by[key] = (by[key] ?? 0) + 1;
  };
  return {
    names,
    add(e) {
      if (e.k === 'c' || e.k === 'm') {
        if (names.counts.copy++ < PLAN_NAMES) names.copy.push(e.n);
      } else if (e.k === 'd') {
        if (names.counts.delete++ < PLAN_NAMES) names.deletes.push(e.n);
      } else if (e.k === 's') {
        countReason(names.skipReasons, e.r ?? '');
        if (names.counts.skip++ < PLAN_NAMES) names.skip.push({ name: e.n, reason: e.r ?? '' });
      } else {
        countReason(names.failReasons, e.r ?? '');
        if (names.counts.fail++ < PLAN_NAMES) names.fail.push({ name: e.n, reason: e.r ?? '' });
      }
    },
  };
}

export function planReport(input: PlanInput): PlanReport {
  const { tally: t, prices, settings } = input;
  const guard = deleteLimit(settings.maxDeletes, t.destinationSeen);
  const refused = settings.mirror && t.deletes > guard
    ? `mirror would delete ${t.deletes} objects, more than the guard allows (${guard}): a copy would delete nothing and fail; ` +
      'check the source, then raise the guard (--max-deletes, "maxdeletes") if these deletions are meant'
    : undefined;
  const shape = { tally: t, containers: input.containers.length, deletionsRefused: refused !== undefined };
  const deployed = predictDeployed(shape);
  const local = predictLocal(shape);
  const usage = { readsByTier: t.readsByTier, bytesByTier: t.bytesByTier, writesByClass: t.writesByClass, rehydrateBytes: t.rehydrateBytes };
  const deployedCost = costOf(deployed.requests, prices, { ...usage, mode: 'deployed' });
  const localCost = costOf(local.requests, prices, { ...usage, mode: 'local', kms: false });
  const egress = deployedCost.lines.find((l) => l.service === 'Azure bandwidth');
  const { copy, skip, fail, deletes } = input.names;
  const inOrder = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  copy.sort(inOrder);
  deletes.sort(inOrder);
  skip.sort(byName);
  fail.sort(byName);
  const keys = reportKeys(input.runId);
  return {
    kind: 'plan',
    runId: input.runId,
    createdAt: new Date().toISOString(),
    source: { account: settings.account, containers: input.containers },
    destination: { bucket: settings.bucket, prefix: settings.prefix },
    copy,
    unchanged: t.unchanged,
    skip,
    fail,
    counts: input.names.counts,
    skipReasons: input.names.skipReasons,
    failReasons: input.names.failReasons,
    beforeBeginDate: t.beforeBeginDate,
    filtered: t.filtered,
    listed: t.listed,
    rehydrate: { objects: t.rehydrations, bytes: t.rehydrateBytes },
    ...(settings.mirror ? { mirror: { delete: deletes, bytes: t.deleteBytes, guard, ...(refused ? { refused } : {}) } } : {}),
    objects: { copy: t.small + t.large, single: t.small, multipart: t.large, parts: t.parts },
    bytes: { copy: t.smallBytes + t.largeBytes, single: t.smallBytes, multipart: t.largeBytes, unchanged: t.unchangedBytes },
    requests: tidyCounts(deployed.requests),
    cost: deployedCost,
    seconds: deployed.timing.seconds,
    stages: deployed.timing.stages,
    local: { requests: tidyCounts(local.requests), cost: localCost, seconds: local.timing.seconds },
    azure: {
      egressGiB: Number(((t.smallBytes + t.largeBytes) / GiB).toFixed(3)),
      egressUsd: egress?.usd ?? 0,
      freeAllowance: prices.azure.egressFree,
      operationsUsd: Number((deployedCost.azureUsd - (egress?.usd ?? 0)).toFixed(6)),
      region: prices.azureRegion,
    },
    prices: { region: prices.region, date: prices.date, sources: prices.sources, note: input.pricesNote },
    assumptions: assumptions(settings, input.blobsPerMessage),
    settings: {
      largeBlobBytes: settings.largeBlobBytes, partBytes: settings.partBytes, beginDate: settings.beginDate, blobsPerMessage: input.blobsPerMessage,
      ...(settings.filters ? { filters: settings.filters } : {}),
      ...(storageOf(settings) ? { storage: storageOf(settings) } : {}),
      ...(settings.archive ? { archive: settings.archive } : {}),
      ...(settings.mirror ? { mirror: true, maxDeletes: settings.maxDeletes } : {}),
    },
    location: input.location ? { bucket: settings.bucket, json: keys.json, html: keys.html } : undefined,
  };
}

function assumptions(settings: RunSettings, blobsPerMessage: number): string[] {
  const mib = (n: number) => `${(n / 1024 / 1024).toFixed(0)} MiB`;
  return [
    `blobs of ${mib(settings.largeBlobBytes)} or more are copied in parts of ${mib(settings.partBytes)} (grown so no blob needs more than 10,000); smaller ones in one PUT, up to ${blobsPerMessage} to a message`,
    'deployed: the default function sizes and ceilings (lib/stage-sizing.ts), arm64; Lambda duration from the rates below; 2 KiB of logs per invocation',
    `rates: a part copies at ${mib(RATES.partBytesPerSecond)}/s, a small blob takes ${0.12} s plus its bytes at 40 MiB/s (16 at once per invocation), a List Blobs page of 5,000 takes ${RATES.listPageSeconds} s`,
    `local: ${mib(RATES.localLinkBytesPerSecond)}/s through the machine's link, at most ${RATES.localSmallBlobsPerSecond} small blobs a second`,
    'KMS: the secret read and each PublishBatch ask KMS once; without an S3 bucket key every PUT, part, completion and GET of an object asks once, with one about 1% of that',
    'SQS: each message is delivered by SNS, received and deleted (64 KB chunks), plus the mapping\'s long polls while the run goes',
    'free tiers are stated, not subtracted',
  ];
}

/** The plan as the CLI prints it. */
export function planText(plan: PlanReport): string {
  const out: string[] = [];
  const count = (n: number) => n.toLocaleString('en-US');
  out.push(`plan for ${plan.source.account}/${plan.source.containers.join(',')} -> s3://${plan.destination.bucket}/${plan.destination.prefix}`);
  const s = plan.settings;
  const selection = [
    ...(s.filters ? [filtersText(s.filters)] : []),
    ...(s.storage ? [`storage class ${s.storage}`] : []),
    ...(s.archive ? [`archived blobs: ${s.archive}`] : []),
    ...(s.mirror ? ['mirror'] : []),
  ];
  if (selection.length) out.push(`  selection     ${selection.join('; ')}`);
  out.push(`  listed        ${count(plan.listed)} blobs` +
    (plan.beforeBeginDate ? `; ${count(plan.beforeBeginDate)} before begindate` : '') + (plan.filtered ? `; ${count(plan.filtered)} left out by filters` : ''));
  out.push(`  to copy       ${count(plan.objects.copy)} objects, ${formatBytes(plan.bytes.copy)}`);
  out.push(`    one PUT     ${count(plan.objects.single)} objects, ${formatBytes(plan.bytes.single)}`);
  out.push(`    multipart   ${count(plan.objects.multipart)} objects, ${formatBytes(plan.bytes.multipart)} in ${count(plan.objects.parts)} parts`);
  out.push(`  unchanged     ${count(plan.unchanged)} objects, ${formatBytes(plan.bytes.unchanged)} (already in S3)`);
  // Counted over every blob (a plan of an older release: over its lists, which were whole).
  const reasons = (items: NamedReason[], counted?: Record<string, number>) => {
    const by = new Map<string, number>(counted ? Object.entries(counted) : []);
    if (!counted) for (const i of items) by.set(i.reason, (by.get(i.reason) ?? 0) + 1);
    return [...by].sort((a, b) => b[1] - a[1]);
  };
  out.push(`  skipped       ${count(plan.counts?.skip ?? plan.skip.length)}`);
  for (const [reason, n] of reasons(plan.skip, plan.skipReasons)) out.push(`    ${String(n).padStart(8)}  ${reason}`);
  if (plan.rehydrate?.objects) out.push(`    (of which ${count(plan.rehydrate.objects)} archived, ${formatBytes(plan.rehydrate.bytes)}, whose rehydration to Cool a copy starts)`);
  out.push(`  will fail     ${count(plan.counts?.fail ?? plan.fail.length)}`);
  for (const [reason, n] of reasons(plan.fail, plan.failReasons)) out.push(`    ${String(n).padStart(8)}  ${reason}`);
  if (plan.mirror) {
    const m = plan.mirror;
    out.push(`  to delete     ${count(plan.counts?.delete ?? m.delete.length)} copies whose blob is gone (mirror), ${formatBytes(m.bytes)}; the guard allows ${count(m.guard)}`);
    if (m.refused) out.push(`    REFUSED: ${m.refused}`);
  }
  out.push('');
  out.push(`estimated cost, deployed (${plan.prices.region} prices of ${plan.prices.date}${plan.prices.note ? `; ${plan.prices.note}` : ''}):`);
  out.push(...costLines(plan.cost));
  out.push(`  total         ${usd(plan.cost.totalUsd)} (AWS ${usd(plan.cost.awsUsd)}, Azure ${usd(plan.cost.azureUsd)})`);
  out.push('');
  out.push(`Azure (${plan.azure.region}): egress ${plan.azure.egressGiB.toFixed(3)} GiB, ${usd(plan.azure.egressUsd)} at the published rate; operations ${usd(plan.azure.operationsUsd)}`);
  out.push(`  ${plan.azure.freeAllowance}`);
  out.push('');
  out.push(`with the local CLI instead (run state in the bucket, no Lambda, SNS or SQS): ${usd(plan.local.cost.totalUsd)} ` +
    `(AWS ${usd(plan.local.cost.awsUsd)}, Azure ${usd(plan.local.cost.azureUsd)})`);
  out.push('');
  out.push(`estimated time: deployed ${duration(plan.seconds)}; local CLI ${duration(plan.local.seconds)}`);
  out.push('');
  out.push('assumptions:');
  for (const a of plan.assumptions) out.push(`  - ${a}`);
  return out.join('\n') + '\n';
}

function costLines(cost: CostEstimate): string[] {
  const width = Math.max(...cost.lines.map((l) => `${l.service}: ${l.item}`.length), 20);
  return cost.lines.map((l) => {
    const label = `${l.service}: ${l.item}`.padEnd(width);
    const amount = l.quantity < 1 ? l.quantity.toPrecision(2) : l.quantity.toLocaleString('en-US', { maximumFractionDigits: 1 });
    const qty = `${amount} ${l.unit}`.padStart(22);
    return `  ${label} ${qty}  ${usd(l.usd).padStart(9)}${l.inTotal ? '' : '  (not in total)'}`;
  });
}

export function duration(seconds: number): string {
  if (seconds < 90) return `${seconds.toFixed(0)} s`;
  if (seconds < 5400) return `${(seconds / 60).toFixed(0)} min`;
  if (seconds < 2 * 86400) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} days`;
}

export function planHtml(plan: PlanReport): string {
  const e = escapeHtml;
  const named = (listed: number, counted?: number) => (counted !== undefined && counted > listed ? `, the first ${listed.toLocaleString('en-US')} named` : '');
  const rows = (items: NamedReason[]) => items.map((i) => `<tr><td class="name">${e(i.name)}</td><td>${e(i.reason)}</td></tr>`).join('\n');
  const costRows = plan.cost.lines.map((l) =>
    `<tr><td>${e(l.service)}</td><td>${e(l.item)}</td><td>${e(l.quantity.toLocaleString('en-US'))} ${e(l.unit)}</td><td>${e(usd(l.usd))}${l.inTotal ? '' : ' (not in total)'}</td></tr>`).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>azs3copy plan ${e(plan.runId)}</title>
<style>body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}td.name{font-family:monospace;white-space:pre-wrap;word-break:break-all}</style></head>
<body>
<h1>azs3copy plan ${e(plan.runId)}</h1>
<pre>${e(planText(plan))}</pre>
<h2>Cost, deployed</h2><table><thead><tr><th>service</th><th>item</th><th>quantity</th><th>cost</th></tr></thead><tbody>
${costRows}
</tbody></table>
${plan.fail.length ? `<h2>Will fail (${plan.counts?.fail ?? plan.fail.length}${named(plan.fail.length, plan.counts?.fail)})</h2><table><tbody>\n${rows(plan.fail)}\n</tbody></table>` : ''}
${plan.skip.length ? `<h2>Skipped (${plan.counts?.skip ?? plan.skip.length}${named(plan.skip.length, plan.counts?.skip)})</h2><table><tbody>\n${rows(plan.skip)}\n</tbody></table>` : ''}
${plan.mirror?.delete.length ? `<h2>To delete, mirror (${plan.counts?.delete ?? plan.mirror.delete.length}${named(plan.mirror.delete.length, plan.counts?.delete)})</h2><table><tbody>\n${plan.mirror.delete.map((k) => `<tr><td class="name">${e(k)}</td></tr>`).join('\n')}\n</tbody></table>` : ''}
<p>The names to copy are in <code>${e(reportKeys(plan.runId).json)}</code> (<code>copy</code>; each list names up to ${PLAN_NAMES.toLocaleString('en-US')}).</p>
</body></html>
`;
}
