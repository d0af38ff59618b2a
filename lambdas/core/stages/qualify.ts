/**
 * Stage 1: decide whether a run starts, fix its settings, and start the listing.
 * A start while a run of the same pipeline is in progress starts nothing (and says
 * so); a run that has stopped making progress is marked stalled first, with its
 * report. Called with `{ "watch": true }` (a frequent schedule) it only does the
 * latter: that is how a deployed run that stalls gets its report.
 */
import { randomBytes } from 'node:crypto';
import { SwitchedOffError, checkPrefix, type CopyConfig } from '../config';
import type { Selection } from '../selection';
import type { Runtime } from '../context';
import { ConfigError } from '../errors';
import { MESSAGE_VERSION, stamped, type ListPageMessage, type RunSettings } from '../messages';
import { METRIC } from '../metrics';
import { checkDestinations, destinationsOf, forContainer } from '../destinations';
import { maxPartBytesFor } from '../plan';
import { rollingPipeline, rollingRunId } from '../run-ledger';
import { runPointerKey, type RunPointer } from '../run-pointer';
import { hostname } from 'node:os';
import { mapLimit } from '../batching';

/** Source containers and destinations checked at once when a run starts (an account's every container may be many). */
const CHECKS_AT_ONCE = 8;

export type QualifyResult =
  | { started: true; runId: string; settings: RunSettings }
  | { started: false; reason: string; runId?: string };

export function newRunId(now = new Date()): string {
  return `${now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`;
}

export async function qualify(runtime: Runtime, options: { runId?: string } = {}): Promise<QualifyResult> {
  let config;
  try {
    config = await runtime.loadConfig();
  } catch (error) {
    if (!(error instanceof SwitchedOffError)) throw error;
    const reason = `the copy is switched off ("isactive" is false in the configuration); the rest of it is not ready yet either: ${error.message}`;
    runtime.log.info('run not started', { reason });
    return { started: false, reason };
  }
  if (!config.isActive) {
    const reason = 'the copy is switched off ("isactive" is false in the configuration)';
    runtime.log.info('run not started', { reason });
    return { started: false, reason };
  }
  const { settings, selection } = runSettingsFrom(runtime, config);
  const { bucket, prefix } = settings;
  const runId = options.runId ?? newRunId();
  const log = runtime.log.child({ runId, stage: 'qualify' });
  // Fail the run at its start, with one clear line, rather than in every blob.
  const names = selection.containers === 'all'
    ? await runtime.listContainers(settings)
    : (selection.containers ?? [config.source.container]);
  if (names.length === 0) throw new ConfigError(`storage account "${settings.account}" has no containers to copy`);
  // With several containers, each lands under its own name: equal blob names in two containers stay apart.
  const byContainer = names.length > 1 || selection.containers === 'all';
  const perContainer: RunSettings[] = names.map((container) => forContainer(settings, container, byContainer));
  // Every source container and every destination, each in its own words: a bucket the functions may not write
  // fails the run here. Checked at once (a source across an ocean answers in round trips of tens of
  // milliseconds, a few each), and the first failure in this order is the one reported, as when checked in turn.
  const checks: (() => Promise<void>)[] = [
    ...perContainer.map((one) => async () => (await runtime.sourceFor(one)).check()),
    ...destinationsOf(settings).map((destination, d) => () => (d === 0 ? runtime.sinkFor(settings) : runtime.sinkFor(settings, destination)).check()),
  ];
  const failures = await mapLimit(checks, CHECKS_AT_ONCE, (check) => check().then(() => undefined, (error: unknown) => ({ error })));
  const failure = failures.find((f) => f !== undefined);
  if (failure) throw failure.error;
  const begun = await runtime.ledger.begin({
    runId,
    pipeline: runtime.pipeline,
    settings,
    stallAfterSeconds: runtime.stallAfterSeconds,
    containers: perContainer.length,
    byContainer,
    owner: runtime.owner === 'local'
      ? { kind: 'local', host: hostname(), pid: process.pid, heartbeatAt: new Date().toISOString() }
      : { kind: 'pipeline' },
  });
  if (!begun.started) {
    const reason = `${begun.reason}: not starting another`;
    runtime.metric?.(METRIC.runsRefused, 1);
    log.warn('run not started', { reason, current: begun.current.runId });
    return { started: false, reason, runId: begun.current.runId };
  }
  await writeRunPointer(runtime, runId, settings);
  // Each container is listed by a listing of its own, continuing itself.
  await runtime.publish(perContainer.map((run) => stamped<ListPageMessage>({ v: MESSAGE_VERSION, kind: 'list-page', runId, run, invocation: 0 })));
  log.info('run started', { containers: names, account: settings.account, bucket, prefix, beginDate: settings.beginDate, dryRun: settings.dryRun });
  return { started: true, runId, settings };
}

/** A run's settings from the configuration and the deployment's defaults: the same for a listing and for events. */
export function runSettingsFrom(runtime: Pick<Runtime, 'defaults'>, config: CopyConfig): { settings: RunSettings; selection: Partial<Selection> } {
  const bucket = config.bucket ?? runtime.defaults.bucket;
  if (!bucket) throw new ConfigError('no destination bucket: set "bucket" in the secret, or deploy with a bucket');
  const prefix = config.prefix ?? runtime.defaults.prefix;
  checkPrefix(prefix, 'the destination prefix');
  const selection = config.selection ?? {};
  const settings: RunSettings = {
    account: config.source.account,
    container: config.source.container,
    blobEndpoint: config.source.blobEndpoint,
    bucket,
    prefix,
    beginDate: config.beginDate,
    largeBlobBytes: runtime.defaults.largeBlobBytes,
    partBytes: runtime.defaults.partBytes,
    maxPartBytes: maxPartBytesFor(runtime.defaults.partTimeoutSeconds),
    filters: selection.filters,
    writing: selection.writing?.storageClass || selection.writing?.tierMap ? selection.writing : undefined,
    archive: selection.archive,
    mirror: selection.mirror || undefined,
    maxDeletes: selection.maxDeletes,
    dryRun: config.dryRun || undefined,
    also: (config.also ?? runtime.defaults.also)?.length ? (config.also ?? runtime.defaults.also) : undefined,
  };
  checkDestinations(settings);
  return { settings, selection };
}

/** Where the run's state is, in the bucket: how `azs3copy status --bucket` finds it. */
export async function writeRunPointer(runtime: Runtime, runId: string, settings: RunSettings): Promise<void> {
  const where = runtime.ledger.table.description;
  if (where.kind === 'memory') return;
  const pointer: RunPointer = { v: 1, runId, state: where.kind === 'bucket' ? { kind: 'bucket', bucket: where.bucket } : where };
  await runtime.sinkFor(settings).putJson(runPointerKey(runId), pointer);
}

/** The schedule's frequent check: mark the pipeline's current run stalled (with its report) if it has stopped moving. */
export async function watch(runtime: Runtime): Promise<{ runId?: string; state?: string }> {
  await watchRolling(runtime);
  const current = await runtime.ledger.currentRun(runtime.pipeline);
  if (!current) return {};
  const stalled = current.state === 'running' ? await runtime.ledger.checkStalled(current.runId) : undefined;
  if (stalled) runtime.log.warn('run stalled', { runId: stalled.runId, reason: stalled.stalledReason });
  return { runId: current.runId, state: stalled?.state ?? current.state };
}

/**
 * The event-driven run: once its hour is over it is closed even if no event comes to close it (so its report
 * comes), and one with blobs outstanding and no progress for the stall time is marked stalled.
 */
async function watchRolling(runtime: Runtime, now = new Date()): Promise<void> {
  let rolling = await runtime.ledger.currentRun(rollingPipeline(runtime.pipeline));
  if (!rolling) return;
  if (!rolling.listingDone && rolling.runId < rollingRunId(now)) rolling = await runtime.ledger.closeRolling(rolling.runId);
  if (rolling?.state === 'running' && rolling.settled < rolling.routed) await runtime.ledger.checkStalled(rolling.runId);
}
