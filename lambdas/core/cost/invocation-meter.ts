/**
 * A deployed invocation's own share of a run's requests: what it counted (its
 * stores' and clients' requests), its Lambda request and GB-seconds, and the SQS
 * requests its message took (received, then deleted once it succeeded), added
 * to the run's item with one update at the invocation's end.
 *
 * Counted once per invocation, not once per message: a retried or duplicate
 * delivery really makes its requests again, and is billed for them again, so it
 * is counted again. The one count that could be doubled is the update itself
 * (an answer lost and the SDK's retry applied too): one invocation's requests,
 * rarely; a transaction to prevent it would cost twice the write units on every
 * invocation. An invocation that Lambda stops at its timeout never reaches its
 * end: its requests are missing from the count.
 */
import { addCounts, countsToAttributes, SNS_CHUNK_BYTES, type Meter, type RequestCounts } from './requests';

interface Records {
  Records?: { body?: string; Sns?: { Message?: string } }[];
}

/** The runs an event's messages belong to (a qualify's run comes from its result). */
export function runIdsOf(event: unknown, result: unknown): string[] {
  const ids = new Set<string>();
  for (const record of (event as Records | undefined)?.Records ?? []) {
    const body = record.body ?? record.Sns?.Message;
    try {
      const runId = (JSON.parse(body ?? '') as { runId?: unknown }).runId;
      if (typeof runId === 'string') ids.add(runId);
    } catch {
      // Not a stage message: nothing to count it against.
    }
  }
  const started = (result as { runId?: unknown } | undefined)?.runId;
  if (typeof started === 'string') ids.add(started);
  return [...ids];
}

/** Lambda's request and duration for this invocation, and the SQS receive and delete of its messages. */
export function invocationCounts(event: unknown, ms: number, memoryMiB: number, failed: number): RequestCounts {
  const counts: RequestCounts = { lambda: { Invocations: 1, GBSeconds: (ms / 1000) * (memoryMiB / 1024) } };
  const records = (event as Records | undefined)?.Records ?? [];
  const fromQueue = records.filter((r) => r.body !== undefined);
  if (fromQueue.length > 0) {
    const chunks = fromQueue.reduce((n, r) => n + Math.max(1, Math.ceil(Buffer.byteLength(r.body!, 'utf8') / SNS_CHUNK_BYTES)), 0);
    addCounts(counts, { sqs: { ReceiveMessage: chunks, DeleteMessage: Math.max(0, fromQueue.length - failed) } });
  }
  return counts;
}

/** What one update adds to the run's item; the update itself is counted in it. */
export function invocationAttributes(meter: Meter, extra: RequestCounts): Record<string, number> {
  const counts = addCounts(meter.take(), extra);
  addCounts(counts, { dynamodb: { UpdateItem: 1, WriteRequestUnits: 3 } });
  return countsToAttributes(counts);
}
