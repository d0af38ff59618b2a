/**
 * Resources with no local meaning: nothing is created, but they answer Ref and
 * Fn::GetAtt with the values AWS would give, so what refers to them (a
 * function's LoggingConfig, an alarm action) still resolves. Each is listed in
 * the box's report with the reason.
 */
import type { ResourceContext } from './types';

export interface Ignored {
  reason: string;
  ref(ctx: ResourceContext): string;
  attrs?(ctx: ResourceContext, ref: string): Record<string, string>;
}

const arn = (ctx: ResourceContext, service: string, resource: string) => `arn:aws:${service}:${ctx.region}:${ctx.account}:${resource}`;

export const IGNORED: Record<string, Ignored> = {
  'AWS::Logs::LogGroup': {
    reason: 'functions log to the box (Box.logs), not to CloudWatch Logs',
    ref: (ctx) => ctx.props.LogGroupName ?? ctx.generatedName(512),
    attrs: (ctx, ref) => ({ Arn: arn(ctx, 'logs', `log-group:${ref}:*`) }),
  },
  'AWS::CloudWatch::Alarm': {
    reason: 'no metrics in the box',
    ref: (ctx) => ctx.props.AlarmName ?? ctx.generatedName(255),
    attrs: (ctx, ref) => ({ Arn: arn(ctx, 'cloudwatch', `alarm:${ref}`) }),
  },
  'AWS::CloudWatch::CompositeAlarm': {
    reason: 'no metrics in the box',
    ref: (ctx) => ctx.props.AlarmName ?? ctx.generatedName(255),
    attrs: (ctx, ref) => ({ Arn: arn(ctx, 'cloudwatch', `alarm:${ref}`) }),
  },
  'AWS::CloudWatch::Dashboard': {
    reason: 'no metrics in the box',
    ref: (ctx) => ctx.props.DashboardName ?? ctx.generatedName(255),
  },
  'AWS::Events::Rule': {
    reason: 'schedules and event patterns do not fire in the box: invoke the target yourself',
    ref: (ctx) => ctx.props.Name ?? ctx.generatedName(64),
    attrs: (ctx, ref) => ({ Arn: arn(ctx, 'events', `rule/${ref}`) }),
  },
  'AWS::Scheduler::Schedule': {
    reason: 'schedules do not fire in the box: invoke the target yourself',
    ref: (ctx) => ctx.props.Name ?? ctx.generatedName(64),
    attrs: (ctx, ref) => ({ Arn: arn(ctx, 'scheduler', `schedule/default/${ref}`) }),
  },
  'AWS::CDK::Metadata': { reason: 'CDK bookkeeping', ref: (ctx) => ctx.logicalId },
};
