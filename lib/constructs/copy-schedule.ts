/**
 * The EventBridge rule that starts a run: it invokes qualify on the schedule from
 * context (daily unless told otherwise). qualify does the same when invoked by
 * hand with any event, so a run can also be started from the console.
 */
import { Duration } from 'aws-cdk-lib';
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

/**
 * Every few minutes, qualify looks at the pipeline's current run (`{"watch": true}`): one that has made no
 * progress for its stall time is marked stalled and gets its report. Cheap: one small invocation and one
 * read of the run's state each time.
 */
export class RunWatch extends Construct {
  readonly rule: events.Rule;

  constructor(scope: Construct, id: string, props: Omit<CopyScheduleProps, 'expression'> & { readonly everyMinutes?: number }) {
    super(scope, id);
    const minutes = props.everyMinutes ?? 5;
    this.rule = new events.Rule(this, 'Rule', {
      ruleName: props.naming.name('watch'),
      description: `Checks the current azs3copy run for a stall (${props.naming.functionName(props.target.stage)}) every ${minutes} minutes`,
      schedule: events.Schedule.rate(Duration.minutes(minutes)),
      targets: [new targets.LambdaFunction(props.target.function, { event: events.RuleTargetInput.fromObject({ watch: true }), retryAttempts: 0 })],
    });
  }
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
