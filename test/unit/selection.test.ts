/**
 * The selection's small rules: the mirror's guard default, class names as users
 * type them, and the tier map's forms. Each refusal names the key and the fix.
 */
import { describe, expect, it } from 'vitest';
import { deleteLimit, storageClassFrom, storageClassOf, tierMapFrom, sizeFrom, archiveFrom } from '../../lambdas/core/selection';

describe('the mirror guard', () => {
  it('allows 1,000 deletions for a small destination and 1% of a large one; an explicit limit wins', () => {
    expect(deleteLimit(undefined, 0)).toBe(1000);
    expect(deleteLimit(undefined, 99_999)).toBe(1000);
    expect(deleteLimit(undefined, 250_000)).toBe(2500);
    expect(deleteLimit(undefined, 10_000_099)).toBe(100_000);
    expect(deleteLimit(3, 10_000_000)).toBe(3);
    expect(deleteLimit(0, 500)).toBe(0);
  });
});

describe('storage classes', () => {
  it('takes a class in any case, with dashes for underscores, and refuses one S3 does not know', () => {
    expect(storageClassFrom('standard-ia', 'storageclass')).toBe('STANDARD_IA');
    expect(() => storageClassFrom('COLDLINE', 'storageclass')).toThrow(/storageclass is "COLDLINE", a class S3 does not know/);
  });

  it('maps tiers from the flag form and the secret form, the map winning over the one class', () => {
    const fromFlag = tierMapFrom('hot=STANDARD, Cool=glacier_ir', '--tier-map');
    expect(fromFlag).toEqual({ Hot: 'STANDARD', Cool: 'GLACIER_IR' });
    expect(tierMapFrom({ Cold: 'DEEP_ARCHIVE' }, 'tiermap')).toEqual({ Cold: 'DEEP_ARCHIVE' });
    expect(() => tierMapFrom('Hot', '--tier-map')).toThrow(/write TIER=CLASS pairs/);
    expect(() => tierMapFrom('Frozen=STANDARD', '--tier-map')).toThrow(/names the tier "Frozen"/);
    const writing = { storageClass: 'STANDARD_IA' as const, tierMap: fromFlag };
    expect(storageClassOf(writing, 'Cool')).toBe('GLACIER_IR');
    expect(storageClassOf(writing, 'Cold')).toBe('STANDARD_IA');
    expect(storageClassOf(writing, undefined)).toBe('STANDARD_IA');
    expect(storageClassOf(undefined, 'Hot')).toBeUndefined();
  });
});

describe('sizes and the archive policy', () => {
  it('reads sizes with 1024-based suffixes and refuses anything else in one line', () => {
    expect(sizeFrom('10M', 'minsize')).toBe(10 * 1024 * 1024);
    expect(sizeFrom(512, 'minsize')).toBe(512);
    expect(() => sizeFrom('ten', 'maxsize')).toThrow(/maxsize is "ten": give bytes/);
    expect(() => sizeFrom(-1, 'maxsize')).toThrow(/maxsize is -1/);
  });

  it('knows skip and rehydrate only', () => {
    expect(archiveFrom(' Rehydrate ', 'archive')).toBe('rehydrate');
    expect(() => archiveFrom('thaw', 'archive')).toThrow(/archive is "thaw": use "skip"/);
  });
});
