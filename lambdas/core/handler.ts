/**
 * The Lambda face of each stage: parse the SNS envelope against a schema, validate
 * the message, build the stage's context, run it. Errors are rethrown so that the
 * platform retries and, after that, dead-letters the message for a later redrive.
 * The local bus calls these same functions with the same envelopes.
 */
import * as z from 'zod';
import { contextFor, type Runtime } from './context';
import { ConfigError, errorMessage } from './errors';
import { parseStageMessage, MessageError } from './messages';
import { METRIC, emfRecord } from './metrics';
import { qualify, type QualifyResult } from './stages/qualify';
import { TOPIC_STAGES, type TopicStage } from './stages';

export const SnsEventSchema = z.object({
  Records: z
    .array(
      z.object({
        Sns: z.object({
          Message: z.string(),
          MessageId: z.string().optional(),
          TopicArn: z.string().optional(),
        }),
      }),
    )
    .min(1),
});
export type SnsEvent = z.infer<typeof SnsEventSchema>;

/** The part of Lambda's context a stage uses. */
export interface InvocationContext {
  getRemainingTimeInMillis?(): number;
  awsRequestId?: string;
}

export function parseSnsEvent(event: unknown): SnsEvent {
  const parsed = SnsEventSchema.safeParse(event);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new MessageError(`event.${issue.path.map(String).join('.')}: ${issue.message}`);
  }
  return parsed.data;
}

export function withInvocation(runtime: Runtime, context: InvocationContext | undefined): Runtime {
  const remaining = context?.getRemainingTimeInMillis;
  return remaining ? { ...runtime, remainingMs: () => remaining.call(context) } : runtime;
}

export function topicHandler(stage: TopicStage, runtimeOf: () => Runtime) {
  const spec = TOPIC_STAGES[stage];
  return async (event: unknown, context?: InvocationContext): Promise<void> => {
    const runtime = withInvocation(runtimeOf(), context);
    const envelope = parseSnsEvent(event);
    for (const [i, record] of envelope.Records.entries()) {
      const message = parseStageMessage(record.Sns.Message, `Records[${i}].Sns.Message`);
      if (message.kind !== spec.kind) {
        throw new MessageError(`Records[${i}].Sns.Message.kind: ${stage} takes "${spec.kind}", got "${message.kind}"`);
      }
      const ctx = await contextFor(runtime, message, stage);
      try {
        await (spec.run as (c: typeof ctx, m: typeof message) => Promise<unknown>)(ctx, message);
      } catch (error) {
        ctx.log.error('stage failed; the message will be retried, then dead-lettered', { error });
        throw error;
      }
    }
  };
}

/**
 * qualify runs from a schedule or by hand with any event (`{}` works). A
 * configuration problem is logged as one line and counted, not retried: retrying
 * cannot fix a typo in the secret.
 */
export function qualifyHandler(runtimeOf: () => Runtime) {
  return async (_event: unknown, context?: InvocationContext): Promise<QualifyResult | { started: false; error: string }> => {
    const runtime = withInvocation(runtimeOf(), context);
    try {
      return await qualify(runtime);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      const dimensions = runtime.metricDimensions ?? {};
      runtime.log.error(errorMessage(error), { stage: 'qualify', ...emfRecord({ [METRIC.configErrors]: 1 }, dimensions) });
      return { started: false, error: errorMessage(error) };
    }
  };
}
