/**
 * When the box has nothing left to do: no invocation running, no asynchronous
 * event queued or waiting for a retry, no poller holding messages, and every
 * queue the box polls empty (none visible, in flight or delayed). A failed batch
 * waiting out its visibility timeout is work still to do, so idle waits for it.
 * Two quiet looks in a row, so that a message in transit between them is seen.
 */
import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { LambdaService } from './lambda/service';

export interface IdleOptions {
  /** Give up (and reject with what is still busy) after this long. @default 120000 */
  timeoutMs?: number;
}

async function queueDepths(lambda: LambdaService, sqs: SQSClient): Promise<Record<string, number>> {
  const depths = await Promise.all(
    lambda.sources.map(async (source) => {
      const { Attributes = {} } = await sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: source.queueUrl,
          AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'],
        }),
      );
      const n = Number(Attributes.ApproximateNumberOfMessages ?? 0) + Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0) + Number(Attributes.ApproximateNumberOfMessagesDelayed ?? 0);
      return [source.queueUrl, n] as const;
    }),
  );
  return Object.fromEntries(depths.filter(([, n]) => n > 0));
}

function busyParts(lambda: LambdaService): string[] {
  const parts: string[] = [];
  for (const [name, f] of lambda.functions) if (f.busy) parts.push(`${name}: ${f.busy} running`);
  for (const [name, i] of lambda.invokers) if (i.pending) parts.push(`${name}: ${i.pending} asynchronous events pending`);
  for (const s of lambda.sources) if (s.busy) parts.push(`poller of ${s.queueUrl} holds messages`);
  return parts;
}

export async function waitForIdle(lambda: LambdaService, sqs: SQSClient, options: IdleOptions = {}, report?: () => string): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  let quiet = 0;
  let last: { busy: string[]; queues: Record<string, number> } = { busy: [], queues: {} };
  while (Date.now() < deadline) {
    const busy = busyParts(lambda);
    const queues = busy.length ? {} : await queueDepths(lambda, sqs);
    last = { busy, queues };
    if (busy.length === 0 && Object.keys(queues).length === 0 && !lambda.busy) {
      if (++quiet >= 2) return;
    } else {
      quiet = 0;
    }
    // Messages waiting out a visibility timeout or a delay take seconds: asking every queue again each 60 ms meanwhile
    // kept the box's moto (every request signature-checked and authorized in Python) at a fifth of a core.
    await new Promise((r) => setTimeout(r, busy.length ? 25 : Object.keys(queues).length ? 250 : 60));
  }
  const waiting = [...last.busy, ...Object.entries(last.queues).map(([url, n]) => `${n} messages in ${url}`)];
  throw new Error(`the box did not become idle within ${options.timeoutMs ?? 120_000} ms: ${waiting.join('; ')}${report ? `\n${report()}` : ''}`);
}
