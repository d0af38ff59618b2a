/**
 * Where a stalled run's outstanding blobs are: a look into the stages' dead-letter
 * queues for messages of the run. Messages are only looked at (received with a
 * short visibility and made visible again at once), never taken, so the redrive
 * still finds them.
 */
import { ChangeMessageVisibilityBatchCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Whereabouts } from './report';
import { safeParseStageMessages } from './redrive';

/** Look at up to `limit` messages of each queue ({queue name: URL}); by unit, the queue its message waits in. */
export async function deadLetterWhereabouts(sqs: SQSClient, queues: Record<string, string>, runId: string, limit = 1000): Promise<Whereabouts> {
  const found: Whereabouts = new Map();
  for (const [name, url] of Object.entries(queues)) {
    let seen = 0;
    while (seen < limit) {
      const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, VisibilityTimeout: 30, WaitTimeSeconds: 0 }));
      const messages = out.Messages ?? [];
      if (messages.length === 0) break;
      seen += messages.length;
      for (const m of messages) {
        for (const message of safeParseStageMessages(m.Body ?? '')) {
          if (message.runId !== runId || !('unit' in message) || !message.unit) continue;
          found.set(message.unit, `its message is in the dead-letter queue ${name}: fix the cause, then redrive that queue`);
        }
      }
      await sqs.send(new ChangeMessageVisibilityBatchCommand({
        QueueUrl: url,
        Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle!, VisibilityTimeout: 0 })),
      }));
    }
  }
  return found;
}
