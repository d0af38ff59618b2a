/**
 * Small pure factories for the metrics the dashboard shows: the handlers' custom
 * metrics (embedded metric format, namespace and names from lambdas/core/metrics.ts)
 * and the Lambda metrics of each function.
 */
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { METRICS_NAMESPACE, metricDimensions, type MetricName } from '../lambdas/core/metrics';

const PERIOD = Duration.minutes(5);

/** One of the handlers' custom metrics, summed over the period. */
export function pipelineMetric(pipeline: string, name: MetricName, label?: string): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: METRICS_NAMESPACE,
    metricName: name,
    dimensionsMap: metricDimensions(pipeline),
    statistic: 'Sum',
    period: PERIOD,
    ...(label ? { label } : {}),
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
