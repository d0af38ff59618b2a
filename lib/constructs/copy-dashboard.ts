/**
 * One CloudWatch dashboard for a deployment: what was copied (the handlers'
 * embedded metrics), how each function is doing (invocations, errors, throttles,
 * duration, concurrency), what waits in the dead-letter queues, and the latest
 * failures from the logs.
 */
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { Construct } from 'constructs';
import { METRIC, type MetricName } from '../../lambdas/core/metrics';
import type { StageName } from '../../lambdas/core/stages/specs';
import { functionMetric, pipelineMetric, type LambdaMetricName } from '../metrics';
import type { Naming } from '../naming';
import type { DeadLetterQueue } from './dead-letter-queue';
import type { PipelineFunction } from './pipeline-function';

export interface CopyDashboardProps {
  readonly naming: Naming;
  readonly functions: PipelineFunction[];
  readonly deadLetterQueues: DeadLetterQueue[];
  /** Alarms on how runs end (failed blobs, stalls). @default - none */
  readonly runAlarms?: cloudwatch.Alarm[];
  /** Rows of the latest-failures query. @default 50 */
  readonly failureRows?: number;
}

/**
 * Log lines of failures: the handlers' structured lines at level "error", and the
 * runtime's own lines for an invocation that crashed or timed out. The widget
 * joins the lines with ` | `.
 */
export function latestFailuresQuery(rows: number): string[] {
  return [
    'fields @timestamp, stage, level, message, runId, name, reason, @message',
    'filter level in ["ERROR", "error"] or @message like /Invoke Error|Task timed out|Runtime\\.\\w+Error/',
    'sort @timestamp desc',
    `limit ${rows}`,
  ];
}

/** How each custom metric reads on the dashboard. */
const LABEL: Record<MetricName, string> = {
  [METRIC.objectsCopied]: 'objects copied',
  [METRIC.bytesCopied]: 'bytes copied',
  [METRIC.blobsSkipped]: 'blobs skipped',
  [METRIC.blobsFailed]: 'blobs failed',
  [METRIC.blobsListed]: 'blobs listed',
  [METRIC.blobsUnchanged]: 'blobs unchanged',
  [METRIC.configErrors]: 'configuration errors',
  [METRIC.runsCompleted]: 'runs completed',
  [METRIC.runsWithFailures]: 'runs ended with failed blobs',
  [METRIC.runsStalled]: 'runs stalled',
  [METRIC.runsRefused]: 'starts refused (a run was in progress)',
};
/** How runs ended, graphed together. */
const RUN_COUNTS: MetricName[] = [METRIC.runsCompleted, METRIC.runsWithFailures, METRIC.runsStalled, METRIC.runsRefused];
/** The per-blob counts, graphed together. */
const BLOB_COUNTS: MetricName[] = [METRIC.objectsCopied, METRIC.blobsSkipped, METRIC.blobsFailed, METRIC.blobsUnchanged, METRIC.blobsListed];

export class CopyDashboard extends Construct {
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: CopyDashboardProps) {
    super(scope, id);
    const { naming } = props;
    const names = props.functions.map((f) => naming.functionName(f.stage as StageName));
    const perFunction = (metric: LambdaMetricName, title: string) =>
      new cloudwatch.GraphWidget({ title, width: 8, height: 6, left: names.map((n) => functionMetric(n, metric)) });

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: naming.stackName,
    });
    this.dashboard.addWidgets(
      new cloudwatch.TextWidget({
        width: 24,
        height: 3,
        markdown:
          `# azs3copy \`${naming.prefix}\`\n` +
          `Runs start at \`${naming.functionName('qualify')}\` (schedule or by hand). ` +
          'Copies, skips and failures are counted below; any message in a dead-letter queue raises an alarm. ' +
          'The last widget lists the latest failure lines with their reason.\n\n' +
          `Once a failure's cause is fixed, send a dead-letter queue's messages back to their stage: invoke \`${naming.redriveFunctionName}\` ` +
          'with `{"queueUrl": "https://sqs..."}` (the queue\'s URL, from the SQS console).',
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.SingleValueWidget({
        title: 'Totals over the selected time range',
        width: 24,
        height: 4,
        setPeriodToTimeRange: true,
        metrics: [...BLOB_COUNTS, METRIC.bytesCopied, METRIC.configErrors].map((name) => pipelineMetric(naming.prefix, name, LABEL[name])),
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Blobs',
        width: 12,
        height: 6,
        left: BLOB_COUNTS.map((name) => pipelineMetric(naming.prefix, name, LABEL[name])),
        right: [pipelineMetric(naming.prefix, METRIC.configErrors, LABEL[METRIC.configErrors])],
      }),
      new cloudwatch.GraphWidget({
        title: 'Bytes copied',
        width: 12,
        height: 6,
        left: [pipelineMetric(naming.prefix, METRIC.bytesCopied, LABEL[METRIC.bytesCopied])],
      }),
    );
    this.dashboard.addWidgets(
      perFunction('Invocations', 'Invocations'),
      perFunction('Errors', 'Errors'),
      perFunction('Throttles', 'Throttles'),
    );
    this.dashboard.addWidgets(
      perFunction('Duration', 'Duration (maximum, ms)'),
      perFunction('ConcurrentExecutions', 'Concurrent executions (maximum)'),
      new cloudwatch.GraphWidget({
        title: 'Dead-letter queues (messages waiting)',
        width: 8,
        height: 6,
        left: props.deadLetterQueues.map((q) => q.depth),
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Runs',
        width: 12,
        height: 6,
        left: RUN_COUNTS.map((name) => pipelineMetric(naming.prefix, name, LABEL[name])),
      }),
      new cloudwatch.AlarmStatusWidget({
        title: 'Alarms: runs, dead letters',
        width: 12,
        height: 6,
        alarms: [...(props.runAlarms ?? []), ...props.deadLetterQueues.map((q) => q.alarm)],
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.LogQueryWidget({
        title: 'Latest failures',
        width: 24,
        height: 8,
        logGroupNames: props.functions.map((f) => f.logGroup.logGroupName),
        queryLines: latestFailuresQuery(props.failureRows ?? 50),
        view: cloudwatch.LogQueryVisualizationType.TABLE,
      }),
    );
  }
}
