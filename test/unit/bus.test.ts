import { describe, expect, it } from 'vitest';
import { MAX_RECEIVES } from '../../lambdas/core/retry-policy';
import { createBus, SNS_MAX_MESSAGE_BYTES, type SqsRecordEvent } from '../../lambdas/local/bus';

const fast = { retryDelayMs: () => 1 };
const bodyOf = (event: SqsRecordEvent) => event.Records[0].body;

describe('the local bus, as SNS to an SQS queue feeding Lambda', () => {
  it('delivers asynchronously: publish returns before the handler runs', async () => {
    const bus = createBus(fast);
    const seen: string[] = [];
    bus.subscribe('t', async (event) => void seen.push(bodyOf(event)));
    bus.publish('t', 'hello');
    expect(seen).toEqual([]);
    await bus.idle();
    expect(seen).toEqual(['hello']);
  });

  it('tries a failing message as often as the queue receives it, counting the receives, then dead-letters it with the last error', async () => {
    const bus = createBus(fast);
    const receives: string[] = [];
    bus.subscribe('t', async (event) => {
      receives.push(event.Records[0].attributes.ApproximateReceiveCount);
      throw new Error(`boom ${receives.length}`);
    });
    bus.publish('t', 'doomed');
    await bus.idle();
    expect(receives).toEqual(Array.from({ length: MAX_RECEIVES }, (_, i) => String(i + 1)));
    expect(bus.deadLetters).toEqual([{ topic: 't', body: 'doomed', attempts: MAX_RECEIVES, error: `boom ${MAX_RECEIVES}` }]);
  });

  it('takes a message reported in batchItemFailures as failed, and the others as done', async () => {
    const bus = createBus(fast);
    let tries = 0;
    bus.subscribe('t', async (event) => {
      tries++;
      return { batchItemFailures: tries < 2 ? [{ itemIdentifier: event.Records[0].messageId }] : [] };
    });
    bus.publish('t', 'twice');
    await bus.idle();
    expect(tries).toBe(2);
    expect(bus.deadLetters).toEqual([]);
  });

  it('fails an invocation that runs past its timeout, as Lambda stops it, and counts each stage\'s invocations and the longest', async () => {
    const bus = createBus({ ...fast, invocationMs: 50 });
    let tries = 0;
    bus.subscribe('t', async () => {
      tries++;
      await new Promise((r) => setTimeout(r, tries === 1 ? 200 : 5));
    });
    bus.publish('t', 'slow at first');
    await bus.idle();
    expect(tries).toBe(2);
    expect(bus.deadLetters).toEqual([]);
    expect(bus.invocations.t).toMatchObject({ count: 2, timeouts: 1 });
    expect(bus.invocations.t.maxSeconds).toBeGreaterThanOrEqual(0.05);
    expect(bus.invocations.t.maxSeconds).toBeLessThan(0.19);
  });

  it('succeeds on a retry without dead-lettering', async () => {
    const bus = createBus(fast);
    let attempts = 0;
    bus.subscribe('t', async () => {
      if (++attempts < 3) throw new Error('not yet');
    });
    bus.publish('t', 'eventually');
    await bus.idle();
    expect(bus.deadLetters).toEqual([]);
    expect(bus.stats.retried).toBe(2);
    expect(bus.invocations.t.count).toBe(3);
  });

  it('delivers duplicates at the rate asked, the same ones for the same seed', async () => {
    const run = async (seed: number) => {
      const bus = createBus({ ...fast, duplicateRate: 0.5, seed });
      const seen: string[] = [];
      bus.subscribe('t', async (event) => void seen.push(bodyOf(event)));
      for (let i = 0; i < 200; i++) bus.publish('t', String(i));
      await bus.idle();
      return seen.sort();
    };
    const first = await run(7);
    expect(first.length).toBeGreaterThan(250);
    expect(first.length).toBeLessThan(350);
    expect(await run(7)).toEqual(first);
  });

  it('never runs more invocations at once than the subscription allows', async () => {
    const bus = createBus(fast);
    let running = 0;
    let most = 0;
    bus.subscribe('t', async () => {
      most = Math.max(most, ++running);
      await new Promise((r) => setTimeout(r, 2));
      running--;
    }, 3);
    for (let i = 0; i < 30; i++) bus.publish('t', String(i));
    await bus.idle();
    expect(most).toBe(3);
  });

  it('refuses, as SNS does, a message over 256 KiB, and a topic nobody subscribes to', () => {
    const bus = createBus(fast);
    bus.subscribe('t', async () => undefined);
    expect(() => bus.publish('t', 'x'.repeat(SNS_MAX_MESSAGE_BYTES + 1))).toThrow(/exceeds SNS/);
    expect(() => bus.publish('nobody', 'x')).toThrow(/no subscriber/);
  });
});
