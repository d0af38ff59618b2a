/**
 * The custom metrics: names shared by the functions (which emit them through
 * Powertools' Metrics) and the dashboard and alarms (which read them), so they
 * cannot drift apart. Blob counts come from the run state's changes, so each blob
 * is counted once, however often its messages are delivered.
 */
import type { CounterDelta } from './run-ledger';

export const METRICS_NAMESPACE = 'Azs3copy';

export const METRIC = {
  objectsCopied: 'ObjectsCopied',
  bytesCopied: 'BytesCopied',
  blobsSkipped: 'BlobsSkipped',
  blobsFailed: 'BlobsFailed',
  blobsListed: 'BlobsListed',
  blobsUnchanged: 'BlobsUnchanged',
  configErrors: 'ConfigErrors',
  runsCompleted: 'RunsCompleted',
  /** Runs that ended with at least one failed blob (an alarm watches it). */
  runsWithFailures: 'RunsWithFailures',
  /** Runs marked stalled (an alarm watches it). */
  runsStalled: 'RunsStalled',
  /** Starts refused because a run of the pipeline was in progress. */
  runsRefused: 'RunsRefused',
} as const;

export type MetricName = (typeof METRIC)[keyof typeof METRIC];

/**
 * Every custom metric carries one dimension naming its deployment (the prefix code), so two
 * deployments in one account keep their numbers apart.
 */
export const PIPELINE_DIMENSION = 'Pipeline';
/** Powertools' Metrics adds a `service` dimension to every metric; the dashboard must name it too. */
export const METRICS_SERVICE = 'azs3copy';

/** Every custom metric's dimensions, as the functions emit them and the dashboard reads them. */
export function metricDimensions(pipeline: string): Record<string, string> {
  return { service: METRICS_SERVICE, [PIPELINE_DIMENSION]: pipeline };
}

/** The metrics a change of the run's counters stands for (zero values left out). */
export function metricsOfDelta(delta: CounterDelta): [MetricName, number][] {
  const pairs: [MetricName, number | undefined][] = [
    [METRIC.objectsCopied, delta.copied],
    [METRIC.bytesCopied, delta.bytesCopied],
    [METRIC.blobsSkipped, delta.skipped],
    [METRIC.blobsFailed, delta.failed],
    [METRIC.blobsListed, delta.listed],
    [METRIC.blobsUnchanged, delta.unchanged],
  ];
  return pairs.filter((p): p is [MetricName, number] => p[1] !== undefined && p[1] !== 0);
}
