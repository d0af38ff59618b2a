import { describe, expect, it } from 'vitest';
import { createBus, SNS_MAX_MESSAGE_BYTES, type SnsRecordEvent } from '../../lambdas/local/bus';

const fast = { retryDelayMs: () => 1 };
const bodyOf = (event: SnsRecordEvent) => event.Records[0].Sns.Message;

describe('the local bus, as SNS delivering to Lambda', () => {
  it('delivers asynchronously: publish returns before the handler runs', async () => {
    const bus = createBus(fast);
    const seen: string[] = [];
    bus.subscribe('t', async (event) => void seen.push(bodyOf(event)));
    bus.publish('t', 'hello');
    expect(seen).toEqual([]);
    await bus.idle();
    expect(seen).toEqual(['hello']);
  });

  it('retries a failing invocation twice, then dead-letters the message with the last error', async () => {
    const bus = createBus(fast);
    let attempts = 0;
    bus.subscribe('t', async () => {
      attempts++;
      throw new Error(`boom ${attempts}`);
    });
    bus.publish('t', 'doomed');
    await bus.idle();
    expect(attempts).toBe(3);
    expect(bus.deadLetters).toEqual([{ topic: 't', body: 'doomed', attempts: 3, error: 'boom 3' }]);
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
