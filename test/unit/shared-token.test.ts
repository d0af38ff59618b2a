/**
 * One token for the SDK's pipeline and the copy path's own requests: fetched once,
 * shared while fresh, fetched again near expiry, and a failed fetch is not kept.
 */
import { describe, expect, it } from 'vitest';
import type { AccessToken, TokenCredential } from '@azure/core-auth';
import { sharedTokenCredential } from '../../lambdas/core/stores/azure-get';

function credential(answers: (() => Promise<AccessToken>)[]) {
  let calls = 0;
  const inner: TokenCredential = { getToken: () => answers[Math.min(calls++, answers.length - 1)]() };
  return { inner, calls: () => calls };
}
const token = (name: string, minutes: number): AccessToken => ({ token: name, expiresOnTimestamp: Date.now() + minutes * 60_000 });

describe('sharedTokenCredential', () => {
  it('asks once for callers at the same time and while the token is fresh, again when it is near expiry', async () => {
    const c = credential([async () => token('a', 60)]);
    const shared = sharedTokenCredential(c.inner);
    const [x, y] = await Promise.all([shared.getToken('scope'), shared.getToken('scope')]);
    expect([x?.token, y?.token, (await shared.getToken('scope'))?.token, c.calls()]).toEqual(['a', 'a', 'a', 1]);
    const near = credential([async () => token('old', 2), async () => token('new', 60)]);
    const refreshing = sharedTokenCredential(near.inner);
    expect((await refreshing.getToken('scope'))?.token).toBe('old');
    expect((await refreshing.getToken('scope'))?.token).toBe('new');
  });

  it('a caller waiting on a fetch that fails gets the next token, not none', async () => {
    const c = credential([() => new Promise((_, reject) => setTimeout(() => reject(new Error('authority down')), 5)), async () => token('b', 60)]);
    const shared = sharedTokenCredential(c.inner);
    const first = shared.getToken('scope');
    const second = shared.getToken('scope');
    await expect(first).rejects.toThrow('authority down');
    expect((await second)?.token).toBe('b');
    expect(c.calls()).toBe(2);
  });
});
