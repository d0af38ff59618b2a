/**
 * Custom metrics, written as CloudWatch embedded metric format log lines. The
 * namespace and names are shared with the dashboard so they cannot drift apart.
 */

export const METRICS_NAMESPACE = 'Azs3copy';

export const METRIC = {
  objectsCopied: 'ObjectsCopied',
  bytesCopied: 'BytesCopied',
  blobsSkipped: 'BlobsSkipped',
  blobsFailed: 'BlobsFailed',
  blobsListed: 'BlobsListed',
  blobsUnchanged: 'BlobsUnchanged',
  configErrors: 'ConfigErrors',
} as const;

export type MetricName = (typeof METRIC)[keyof typeof METRIC];

/**
 * Every custom metric carries one dimension naming its deployment (the prefix code), so two
 * deployments in one account keep their numbers apart.
 */
export const PIPELINE_DIMENSION = 'Pipeline';

export function metricDimensions(pipeline: string): Record<string, string> {
  return { [PIPELINE_DIMENSION]: pipeline };
}

export function emfRecord(
  metrics: Partial<Record<MetricName, number>>,
  dimensions: Record<string, string>,
  properties: Record<string, unknown> = {},
): Record<string, unknown> {
  const names = Object.keys(metrics) as MetricName[];
  return {
    _aws: {
      Timestamp: Date.now(),
      CloudWatchMetrics: [
        {
          Namespace: METRICS_NAMESPACE,
          Dimensions: [Object.keys(dimensions)],
          Metrics: names.map((Name) => ({ Name, Unit: Name === METRIC.bytesCopied ? 'Bytes' : 'Count' })),
        },
      ],
    },
    ...dimensions,
    ...metrics,
    ...properties,
  };
}
