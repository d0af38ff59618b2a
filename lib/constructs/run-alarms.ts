/**
 * The alarms that say how runs end: one when a run ends with blobs it could not
 * copy, one when a run stalls (blobs outstanding and no progress for the stall
 * time). Both count the metrics the run state emits when a run ends
 * (lambdas/core/run-end.ts), so each run counts once.
 */
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { Construct } from 'constructs';
import { METRIC } from '../../lambdas/core/metrics';
import { pipelineMetric } from '../metrics';
import type { Naming } from '../naming';

export interface RunAlarmsProps {
  readonly naming: Naming;
}

export class RunAlarms extends Construct {
  readonly withFailures: cloudwatch.Alarm;
  readonly stalled: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: RunAlarmsProps) {
    super(scope, id);
    const { naming } = props;
    const alarm = (id: string, name: string, metric: cloudwatch.Metric, description: string) =>
      new cloudwatch.Alarm(this, id, {
        alarmName: naming.name(name),
        alarmDescription: description,
        metric: metric.with({ period: Duration.minutes(5), statistic: 'Sum' }),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    this.withFailures = alarm(
      'WithFailures', 'run-ended-with-failures', pipelineMetric(naming.prefix, METRIC.runsWithFailures),
      'A run ended with blobs it could not copy. Its report (.azs3copy-state/runs/<runId>/report.html in the bucket; `azs3copy status --stack ...`) names each with the reason.',
    );
    this.stalled = alarm(
      'Stalled', 'run-stalled', pipelineMetric(naming.prefix, METRIC.runsStalled),
      'A run stalled: blobs outstanding and no progress for the stall time. Its report names them and the dead-letter queue their messages wait in; fix the cause, then redrive.',
    );
  }

  all(): cloudwatch.Alarm[] {
    return [this.withFailures, this.stalled];
  }
}
