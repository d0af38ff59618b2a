/**
 * The Lambda face of each stage. A stage's messages come from its SQS queue (each
 * stage topic delivers to one): every record is parsed against the message schema
 * and run with the stage's context, and the records that failed are reported back
 * (partial batch response) after their retry is put off by a growing delay, so the
 * queue retries just those, a few times, then moves them to the dead-letter queue.
 * SNS events (an older release delivered through SNS straight to the function,
 * and such an event may still be in flight after an upgrade) are taken too.
 * The local bus calls these same functions with the same events.
 */
import * as z from 'zod';
import { contextFor, type Runtime } from './context';
import { withDeadline } from './deadline';
import { ConfigError, errorMessage } from './errors';
import { MessageError, parseStageMessage } from './messages';
import { METRIC } from './metrics';
import { retryDelaySeconds } from './retry-policy';
import { applyBlobEvents } from './stages/events';
import { qualify, watch, type QualifyResult } from './stages/qualify';
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

export const SqsEventSchema = z.object({
  Records: z
    .array(
      z.object({
        eventSource: z.literal('aws:sqs'),
        messageId: z.string(),
        receiptHandle: z.string(),
        body: z.string(),
        attributes: z.object({ ApproximateReceiveCount: z.string().optional() }).passthrough().optional(),
        eventSourceARN: z.string().optional(),
      }),
    )
    .min(1),
});
export type SqsEvent = z.infer<typeof SqsEventSchema>;
export type SqsRecord = SqsEvent['Records'][number];

export interface BatchResponse {
  batchItemFailures: { itemIdentifier: string }[];
}

/** The part of Lambda's context a stage uses. */
export interface InvocationContext {
  getRemainingTimeInMillis?(): number;
  awsRequestId?: string;
}

function parse<T>(schema: z.ZodType<T>, event: unknown): T {
  const parsed = schema.safeParse(event);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new MessageError(`event.${issue.path.map(String).join('.')}: ${issue.message}`);
  }
  return parsed.data;
}

export function parseSnsEvent(event: unknown): SnsEvent {
  return parse(SnsEventSchema, event);
}

export function withInvocation(runtime: Runtime, context: InvocationContext | undefined): Runtime {
  const remaining = context?.getRemainingTimeInMillis;
  return remaining ? { ...runtime, remainingMs: () => remaining.call(context) } : runtime;
}

function isSqsEvent(event: unknown): boolean {
  const records = (event as { Records?: { eventSource?: string }[] } | undefined)?.Records;
  return Array.isArray(records) && records[0]?.eventSource === 'aws:sqs';
}

/** Run one message body through its stage. */
async function runMessage(stage: TopicStage, runtime: Runtime, body: string, where: string): Promise<void> {
  const bound = TOPIC_STAGES[stage];
  const message = parseStageMessage(body, where);
  if (message.kind !== bound.spec.kind) {
    throw new MessageError(`${where}.kind: ${stage} takes "${bound.spec.kind}", got "${message.kind}"`);
  }
  const ctx = contextFor(runtime, message, stage);
  try {
    await (bound.run as (c: typeof ctx, m: typeof message) => Promise<unknown>)(ctx, message);
  } catch (error) {
    ctx.log.error('message failed; the queue will retry it, then dead-letter it', { error });
    throw error;
  }
}

export interface TopicHandlerOptions {
  /** Put off a failed record's next try (SQS: ChangeMessageVisibility). */
  retryLater?(record: SqsRecord, delaySeconds: number): Promise<void>;
  /** Told why a record failed (the local bus keeps it with a dead letter). */
  onRecordFailure?(record: SqsRecord, error: unknown): void;
}

export function topicHandler(stage: TopicStage, runtimeOf: () => Runtime, options: TopicHandlerOptions = {}) {
  return async (event: unknown, context?: InvocationContext): Promise<BatchResponse | void> => {
    const runtime = withInvocation(runtimeOf(), context);
    return withDeadline(Date.now() + runtime.remainingMs(), async () => {
      if (isSqsEvent(event)) {
        const { Records } = parse(SqsEventSchema, event);
        const failures: BatchResponse['batchItemFailures'] = [];
        for (const [i, record] of Records.entries()) {
          try {
            await runMessage(stage, runtime, record.body, `Records[${i}].body`);
          } catch (error) {
            failures.push({ itemIdentifier: record.messageId });
            options.onRecordFailure?.(record, error);
            const receives = Number(record.attributes?.ApproximateReceiveCount ?? '1');
            try {
              await options.retryLater?.(record, retryDelaySeconds(receives));
            } catch (visibilityError) {
              runtime.log.warn('could not put off the retry; the queue retries after its visibility timeout', { error: errorMessage(visibilityError) });
            }
          }
        }
        return { batchItemFailures: failures };
      }
      const envelope = parseSnsEvent(event);
      for (const [i, record] of envelope.Records.entries()) {
        await runMessage(stage, runtime, record.Sns.Message, `Records[${i}].Sns.Message`);
      }
    });
  };
}

/**
 * qualify runs from a schedule or by hand with any event (`{}` works); `{"watch": true}` only checks
 * whether the current run has stalled. A configuration problem is logged as one line and counted, not
 * retried: retrying cannot fix a typo in the secret.
 */
export function qualifyHandler(runtimeOf: () => Runtime) {
  return async (event: unknown, context?: InvocationContext): Promise<QualifyResult | { started: false; error: string } | { watched: true; runId?: string; state?: string }> => {
    const runtime = withInvocation(runtimeOf(), context);
    return withDeadline(Date.now() + runtime.remainingMs(), async () => {
      try {
        if ((event as { watch?: unknown } | undefined)?.watch === true) return { watched: true as const, ...(await watch(runtime)) };
        return await qualify(runtime);
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        runtime.metric?.(METRIC.configErrors, 1);
        runtime.log.error(errorMessage(error), { stage: 'qualify' });
        return { started: false as const, error: errorMessage(error) };
      }
    });
  };
}

/** A Lambda function URL's request (payload format 2.0), as much of it as the events endpoint reads. */
export interface FunctionUrlEvent {
  requestContext?: { http?: { method?: string } };
  headers?: Record<string, string | undefined>;
  queryStringParameters?: Record<string, string | undefined>;
  body?: string;
  isBase64Encoded?: boolean;
}

/**
 * events (lambda07) answers Event Grid at its function URL: the handshakes, the shared key, and batches of
 * blob events routed to the copy stages. A failure that retrying can fix answers 500, so Event Grid delivers
 * the batch again (duplicates copy nothing twice); a configuration problem is logged and answered 503.
 */
export function eventsHandler(runtimeOf: () => Runtime) {
  return async (event: FunctionUrlEvent, context?: InvocationContext): Promise<{ statusCode: number; headers?: Record<string, string>; body?: string }> => {
    const runtime = withInvocation(runtimeOf(), context);
    return withDeadline(Date.now() + runtime.remainingMs(), async () => {
      const headers = Object.fromEntries(Object.entries(event.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
      const body = event.body === undefined ? '' : event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
      try {
        // Loaded here, not with the module: it brings @azure/eventgrid, which no other stage (nor a local copy) needs.
        const { handleWebhook } = await import('./events/webhook');
        const handled = await handleWebhook(
          { method: event.requestContext?.http?.method ?? 'POST', headers, query: event.queryStringParameters ?? {}, body },
          {
            key: async () => (await runtime.loadConfig()).webhookKey,
            apply: (events) => applyBlobEvents(runtime, events),
          },
        );
        runtime.log.info('events request', { stage: 'events', status: handled.response.status, summary: handled.summary });
        return { statusCode: handled.response.status, headers: handled.response.headers, body: handled.response.body };
      } catch (error) {
        if (error instanceof ConfigError) {
          runtime.metric?.(METRIC.configErrors, 1);
          runtime.log.error(errorMessage(error), { stage: 'events' });
          return { statusCode: 503, body: JSON.stringify({ error: 'the copy is not configured right; see the function\'s log' }) };
        }
        runtime.log.error('events request failed', { stage: 'events', error: errorMessage(error) });
        return { statusCode: 500, body: JSON.stringify({ error: 'failed; Event Grid will deliver again' }) };
      }
    });
  };
}
