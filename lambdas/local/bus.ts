/**
 * An in-process stand-in for the deployed shape, SNS topic -> SQS queue -> Lambda
 * (event source mapping): publish returns at once and delivery happens later;
 * each stage's queue feeds at most `concurrency` invocations at a time (the
 * mapping's maximum concurrency), one message each; a message whose invocation
 * fails (throws, reports it in `batchItemFailures`, or runs past the invocation
 * time, as Lambda stops a function at its timeout) becomes visible again after a
 * delay, and after its last receive (the deployed queue's maxReceiveCount) goes to
 * the dead-letter list. It can be told
 * to deliver some messages twice, as SNS and SQS may, to prove the stages
 * idempotent. Per stage it counts invocations and the longest.
 */
import { randomUUID } from 'node:crypto';
import { MAX_RECEIVES } from '../core/retry-policy';

export const SNS_MAX_MESSAGE_BYTES = 256 * 1024;

export interface SqsRecordEvent {
  Records: {
    eventSource: 'aws:sqs';
    messageId: string;
    receiptHandle: string;
    body: string;
    attributes: { ApproximateReceiveCount: string; SentTimestamp: string };
    eventSourceARN: string;
  }[];
}

/** An invocation: the event, and the milliseconds it may run. */
export type Subscriber = (event: SqsRecordEvent, timeoutMs: number) => Promise<unknown>;

export interface DeadLetter {
  topic: string;
  body: string;
  attempts: number;
  error: string;
}

export interface BusOptions {
  /** Receives of a message before it is dead-lettered (the queue's maxReceiveCount). */
  maxReceives?: number;
  /** Delay before the next receive after receive n (n from 1) failed; the deployed queue waits seconds, locally far less. */
  retryDelayMs?: (receive: number) => number;
  /** Fraction of messages delivered twice. */
  duplicateRate?: number;
  /** Seed for the duplicate draw, so a failing run can be replayed. */
  seed?: number;
  /** An invocation running longer than this fails (its message is retried), as Lambda stops a function at its timeout. */
  invocationMs?: number;
  /**
   * The least delay before a message whose invocation timed out is received again: as SQS keeps it invisible
   * for the queue's visibility timeout, which outlasts the claims the stopped invocation took. @default 0
   */
  afterTimeoutMs?: number;
  onError?: (topic: string, error: unknown, attempt: number) => void;
}

/** A small seeded generator (mulberry32): the same seed gives the same duplicates. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Delivery {
  body: string;
  messageId: string;
  /** Receives so far. */
  receives: number;
}

interface Subscription {
  topic: string;
  handler: Subscriber;
  concurrency: number;
  timeoutMs: number;
  running: number;
  queue: Delivery[];
}

export class InvocationTimeout extends Error {
  override name = 'InvocationTimeout';
}

export interface StageInvocations {
  count: number;
  maxSeconds: number;
  timeouts: number;
}

export function createBus(options: BusOptions = {}) {
  const maxReceives = options.maxReceives ?? MAX_RECEIVES;
  const retryDelayMs = options.retryDelayMs ?? ((n: number) => 50 * n);
  const invocationMs = options.invocationMs ?? 15 * 60 * 1000;
  const random = seededRandom(options.seed ?? 1);
  const subscriptions = new Map<string, Subscription[]>();
  const deadLetters: DeadLetter[] = [];
  const stats = { published: 0, delivered: 0, duplicated: 0, retried: 0, failed: 0, timedOut: 0 };
  const invocations: Record<string, StageInvocations> = {};
  let pending = 0;
  let idleWaiters: (() => void)[] = [];
  let roomWaiters: (() => void)[] = [];
  let backlogLimit = Number.POSITIVE_INFINITY;

  const queued = () => [...subscriptions.values()].flat().reduce((n, s) => n + s.queue.length, 0);

  const settle = () => {
    if (--pending === 0) {
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
    if (roomWaiters.length > 0 && queued() < backlogLimit) {
      const waiters = roomWaiters;
      roomWaiters = [];
      for (const resolve of waiters) resolve();
    }
  };

  const pump = (sub: Subscription) => {
    while (sub.running < sub.concurrency && sub.queue.length > 0) {
      const delivery = sub.queue.shift()!;
      sub.running++;
      void invoke(sub, delivery);
    }
  };

  const enqueue = (sub: Subscription, delivery: Delivery) => {
    pending++;
    sub.queue.push(delivery);
    setImmediate(() => pump(sub));
  };

  /** Run the handler, failing it at the invocation's time limit (its work may go on, as a duplicate would). */
  const runWithLimit = async (sub: Subscription, event: SqsRecordEvent): Promise<unknown> => {
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new InvocationTimeout(`the invocation ran past its ${sub.timeoutMs / 1000} s timeout`)), sub.timeoutMs);
    });
    try {
      return await Promise.race([sub.handler(event, sub.timeoutMs), limit]);
    } finally {
      clearTimeout(timer);
    }
  };

  const invoke = async (sub: Subscription, delivery: Delivery) => {
    const receives = delivery.receives + 1;
    const event: SqsRecordEvent = {
      Records: [
        {
          eventSource: 'aws:sqs',
          messageId: delivery.messageId,
          receiptHandle: `${delivery.messageId}:${receives}`,
          body: delivery.body,
          attributes: { ApproximateReceiveCount: String(receives), SentTimestamp: String(Date.now()) },
          eventSourceARN: `arn:aws:sqs:local:000000000000:${sub.topic}`,
        },
      ],
    };
    const started = Date.now();
    let failure: unknown;
    try {
      stats.delivered++;
      const result = await runWithLimit(sub, event);
      const failed = (result as { batchItemFailures?: { itemIdentifier: string }[] } | undefined)?.batchItemFailures ?? [];
      if (failed.some((f) => f.itemIdentifier === delivery.messageId)) failure = new Error('the stage reported the message as failed');
    } catch (error) {
      failure = error;
    }
    const seconds = (Date.now() - started) / 1000;
    const counted = (invocations[sub.topic] ??= { count: 0, maxSeconds: 0, timeouts: 0 });
    counted.count++;
    counted.maxSeconds = Math.max(counted.maxSeconds, seconds);
    if (failure instanceof InvocationTimeout) {
      counted.timeouts++;
      stats.timedOut++;
    }
    try {
      if (failure === undefined) return;
      options.onError?.(sub.topic, failure, receives);
      if (receives < maxReceives) {
        stats.retried++;
        pending++;
        setTimeout(() => {
          enqueue(sub, { ...delivery, receives });
          settle();
        }, failure instanceof InvocationTimeout ? Math.max(retryDelayMs(receives), options.afterTimeoutMs ?? 0) : retryDelayMs(receives));
      } else {
        stats.failed++;
        deadLetters.push({
          topic: sub.topic,
          body: delivery.body,
          attempts: receives,
          error: failure instanceof Error ? failure.message.split('\n')[0] : String(failure),
        });
      }
    } finally {
      sub.running--;
      settle();
      pump(sub);
    }
  };

  return {
    stats,
    deadLetters,
    invocations,
    /** Deliver the topic's messages to `handler`, at most `concurrency` at once, each invocation stopped after `timeoutMs`. */
    subscribe(topic: string, handler: Subscriber, concurrency = 1, timeoutMs = invocationMs) {
      const list = subscriptions.get(topic) ?? [];
      list.push({ topic, handler, concurrency, timeoutMs, running: 0, queue: [] });
      subscriptions.set(topic, list);
    },
    /** Accept a message for later delivery; like SNS, refuse one over 256 KiB at once. */
    publish(topic: string, body: string) {
      const bytes = Buffer.byteLength(body, 'utf8');
      if (bytes > SNS_MAX_MESSAGE_BYTES) throw new Error(`message of ${bytes} bytes exceeds SNS's ${SNS_MAX_MESSAGE_BYTES}`);
      const subs = subscriptions.get(topic);
      if (!subs || subs.length === 0) throw new Error(`no subscriber on topic ${topic}`);
      stats.published++;
      for (const sub of subs) {
        const messageId = randomUUID();
        enqueue(sub, { body, messageId, receives: 0 });
        if (options.duplicateRate && random() < options.duplicateRate) {
          stats.duplicated++;
          enqueue(sub, { body, messageId: randomUUID(), receives: 0 });
        }
      }
    },
    /** Messages waiting in the queues (not running). */
    queued,
    /** Resolves once fewer than `limit` messages wait: a producer that waits here keeps the queues, and memory, bounded. */
    room(limit: number): Promise<void> {
      backlogLimit = limit;
      if (queued() < limit) return Promise.resolve();
      return new Promise((resolve) => roomWaiters.push(resolve));
    },
    /** Resolves when nothing is queued, running or waiting to be retried. */
    idle(): Promise<void> {
      if (pending === 0) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
    inFlight: () => pending,
  };
}
export type Bus = ReturnType<typeof createBus>;
