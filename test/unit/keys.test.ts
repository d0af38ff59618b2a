import { describe, expect, it } from 'vitest';
import { compareKeys, keyProblem, STATE_PREFIX } from '../../lambdas/core/keys';

describe('destination keys', () => {
  it('accepts a key of exactly 1,024 bytes and refuses 1,025, counting UTF-8 bytes', () => {
    expect(keyProblem('', 'a'.repeat(1024))).toBeUndefined();
    expect(keyProblem('', 'a'.repeat(1025))).toMatch(/1025 bytes of UTF-8; S3 allows at most 1024/);
    // 512 two-byte characters: 512 characters, 1,024 bytes.
    expect(keyProblem('', 'é'.repeat(512))).toBeUndefined();
    expect(keyProblem('p/', 'é'.repeat(512))).toMatch(/1026 bytes/);
  });

  it('keeps odd names exactly as they are', () => {
    for (const name of [' lead', 'trail ', '.dot', 'a//b', 'q?#%+&=', '"\'', '😀/日本']) expect(keyProblem('', name)).toBeUndefined();
  });

  it('refuses a name that has no UTF-8 form', () => {
    expect(keyProblem('', 'bad\ud800name')).toMatch(/unpaired UTF-16 surrogate/);
  });

  it('refuses keys under the state prefix', () => {
    expect(keyProblem('', `${STATE_PREFIX}uploads/x`)).toMatch(/reserves for its own state/);
    expect(keyProblem('copy/', `${STATE_PREFIX}uploads/x`)).toBeUndefined();
  });

  it('orders keys as S3 does, by UTF-8 bytes', () => {
    // U+FF5E sorts before U+1F600 in UTF-8, but after it in UTF-16 code units.
    expect('\u{1F600}' < '\uFF5E').toBe(true);
    expect(compareKeys('\uFF5E', '\u{1F600}')).toBeLessThan(0);
  });
});
