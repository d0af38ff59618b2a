/**
 * An in-process stand-in for SNS delivering to Lambda: publish returns at once and
 * delivery happens later; each subscriber runs at most `concurrency` invocations
 * at a time (its reserved concurrency); a failed invocation is retried twice after
 * a delay, then its message goes to a dead-letter list. It can be told to deliver
 * some messages twice, as SNS may, to prove the stages idempotent.
 */
import { randomUUID } from 'node:crypto';

export const SNS_MAX_MESSAGE_BYTES = 256 * 1024;

export interface SnsRecordEvent {
  Records: { EventSource: 'aws:sns'; Sns: { Message: string; MessageId: string; TopicArn: string; Timestamp: string } }[];
}

export type Subscriber = (event: SnsRecordEvent) => Promise<unknown>;

export interface DeadLetter {
  topic: string;
  body: string;
  attempts: number;
  error: string;
}

export interface BusOptions {
  /** Retries after the first attempt fails (Lambda's asynchronous default is 2). */
  retries?: number;
  /** Delay before retry n (n from 1); Lambda waits about a minute, locally far less. */
  retryDelayMs?: (retry: number) => number;
  /** Fraction of messages delivered twice. */
  duplicateRate?: number;
  /** Seed for the duplicate draw, so a failing run can be replayed. */
  seed?: number;
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
  attempt: number;
}

interface Subscription {
  topic: string;
  handler: Subscriber;
  concurrency: number;
  running: number;
  queue: Delivery[];
}

export function createBus(options: BusOptions = {}) {
  const retries = options.retries ?? 2;
  const retryDelayMs = options.retryDelayMs ?? ((n: number) => 50 * n);
  const random = seededRandom(options.seed ?? 1);
  const subscriptions = new Map<string, Subscription[]>();
  const deadLetters: DeadLetter[] = [];
  const stats = { published: 0, delivered: 0, duplicated: 0, retried: 0, failed: 0 };
  let pending = 0;
  let idleWaiters: (() => void)[] = [];

  const settle = () => {
    if (--pending === 0) {
      const waiters = idleWaiters;
      idleWaiters = [];
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

  const invoke = async (sub: Subscription, delivery: Delivery) => {
    const event: SnsRecordEvent = {
      Records: [
        {
          EventSource: 'aws:sns',
          Sns: { Message: delivery.body, MessageId: delivery.messageId, TopicArn: `local:${sub.topic}`, Timestamp: new Date().toISOString() },
        },
      ],
    };
    try {
      stats.delivered++;
      await sub.handler(event);
    } catch (error) {
      options.onError?.(sub.topic, error, delivery.attempt);
      if (delivery.attempt <= retries) {
        stats.retried++;
        pending++;
        setTimeout(() => {
          enqueue(sub, { ...delivery, attempt: delivery.attempt + 1 });
          settle();
        }, retryDelayMs(delivery.attempt));
      } else {
        stats.failed++;
        deadLetters.push({
          topic: sub.topic,
          body: delivery.body,
          attempts: delivery.attempt,
          error: error instanceof Error ? error.message.split('\n')[0] : String(error),
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
    subscribe(topic: string, handler: Subscriber, concurrency = 1) {
      const list = subscriptions.get(topic) ?? [];
      list.push({ topic, handler, concurrency, running: 0, queue: [] });
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
        enqueue(sub, { body, messageId, attempt: 1 });
        if (options.duplicateRate && random() < options.duplicateRate) {
          stats.duplicated++;
          enqueue(sub, { body, messageId, attempt: 1 });
        }
      }
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
