/**
 * The EventBridge rule that starts a run: it invokes qualify on the schedule from
 * context (daily unless told otherwise). qualify does the same when invoked by
 * hand with any event, so a run can also be started from the console.
 */
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import { Construct } from 'constructs';
import type { Naming } from '../naming';
import type { PipelineFunction } from './pipeline-function';

export interface CopyScheduleProps {
  readonly naming: Naming;
  /** An EventBridge schedule expression: `rate(...)` or `cron(...)`. */
  readonly expression: string;
  /** The qualify function. */
  readonly target: PipelineFunction;
}

export class CopySchedule extends Construct {
  readonly rule: events.Rule;

  constructor(scope: Construct, id: string, props: CopyScheduleProps) {
    super(scope, id);
    this.rule = new events.Rule(this, 'Rule', {
      ruleName: props.naming.name('schedule'),
      description: `Starts an azs3copy run (${props.naming.functionName(props.target.stage)}) ${props.expression}`,
      schedule: events.Schedule.expression(props.expression),
      targets: [new targets.LambdaFunction(props.target.function, { retryAttempts: 2 })],
    });
  }
}
