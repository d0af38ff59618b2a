/**
 * Small pure factories for the metrics the dashboard shows: the handlers' custom
 * metrics (embedded metric format, namespace and names from lambdas/core/metrics.ts)
 * and the Lambda metrics of each function.
 */
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { METRIC, METRICS_NAMESPACE, type MetricName } from '../lambdas/core/metrics';

/**
 * The dimension the handlers put on outcome and listing metrics (lambdas/core/aws-runtime.ts
 * writes `{ Pipeline: 'azs3copy' }`); configuration errors carry `{ Stage: 'qualify' }` instead.
 */
export const PIPELINE_DIMENSIONS = { Pipeline: 'azs3copy' } as const;
export const CONFIG_ERROR_DIMENSIONS = { Stage: 'qualify' } as const;

const PERIOD = Duration.minutes(5);

/** One of the handlers' custom metrics, summed over the period. */
export function pipelineMetric(name: MetricName, label?: string): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: METRICS_NAMESPACE,
    metricName: name,
    dimensionsMap: name === METRIC.configErrors ? { ...CONFIG_ERROR_DIMENSIONS } : { ...PIPELINE_DIMENSIONS },
    statistic: 'Sum',
    period: PERIOD,
    label: label ?? name,
  });
}

export type LambdaMetricName = 'Invocations' | 'Errors' | 'Throttles' | 'Duration' | 'ConcurrentExecutions';

const STATISTIC: Record<LambdaMetricName, string> = {
  Invocations: 'Sum',
  Errors: 'Sum',
  Throttles: 'Sum',
  Duration: 'Maximum',
  ConcurrentExecutions: 'Maximum',
};

/** A Lambda metric of one function, labelled with its name. */
export function functionMetric(functionName: string, name: LambdaMetricName): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: 'AWS/Lambda',
    metricName: name,
    dimensionsMap: { FunctionName: functionName },
    statistic: STATISTIC[name],
    period: PERIOD,
    label: functionName,
  });
}
