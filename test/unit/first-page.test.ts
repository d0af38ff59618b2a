/**
 * The local runner's source asks for the listing's first page while the run's start
 * is checked: the listing then takes that page instead of asking Azure again, once,
 * while it is fresh; a page that failed is asked for again, so the listing meets the
 * error itself; every other request passes through.
 */
import { describe, expect, it } from 'vitest';
import { FRESH_MS, firstPageAhead } from '../../lambdas/core/stores/first-page';
import type { BlobSource, ListPage } from '../../lambdas/core/stores/types';

const page = (name: string): ListPage => ({
  blobs: [{ name, etag: `"${name}"`, size: 1, lastModified: '2026-01-01T00:00:00.000Z', isDirectoryMarker: false, isArchived: false }],
  continuation: 'next',
});

function recording(fail: (n: number) => boolean = () => false) {
  const calls: string[] = [];
  let lists = 0;
  let release!: () => void;
  const checked = new Promise<void>((r) => (release = r));
  const source = {
    check: async () => {
      calls.push('check');
      await checked;
    },
    listPage: async (continuation: string | undefined, size: number) => {
      const n = ++lists;
      calls.push(`list ${continuation ?? '-'} ${size}`);
      if (fail(n)) throw new Error(`503 ServerBusy (listing ${n})`);
      return page(`listing-${n}`);
    },
    blob: async () => undefined,
  } as unknown as BlobSource;
  return { source, calls, release };
}

describe('firstPageAhead', () => {
  it('asks for the first page while the check goes on, and the listing takes it instead of asking again, once', async () => {
    const { source, calls, release } = recording();
    const ahead = firstPageAhead(source, 20);
    const check = ahead.check();
    await Promise.resolve();
    // The page is asked for before the check has answered.
    expect(calls).toEqual(['list - 20', 'check']);
    release();
    await check;
    expect(await ahead.listPage(undefined, 20)).toEqual(page('listing-1'));
    expect(calls).toEqual(['list - 20', 'check']);
    // A second first page (another run's listing, say) is a listing of its own.
    expect(await ahead.listPage(undefined, 20)).toEqual(page('listing-2'));
    expect(calls).toEqual(['list - 20', 'check', 'list - 20']);
  });

  it('passes every other page through: a continuation, another size', async () => {
    const { source, calls, release } = recording();
    const ahead = firstPageAhead(source, 20);
    release();
    await ahead.check();
    expect(await ahead.listPage('token', 20)).toEqual(page('listing-2'));
    expect(await ahead.listPage(undefined, 5000)).toEqual(page('listing-3'));
    expect(calls).toEqual(['list - 20', 'check', 'list token 20', 'list - 5000']);
    expect(await ahead.listPage(undefined, 20)).toEqual(page('listing-1'));
  });

  it('asks again for a page that failed, so the listing meets the error (or its cure) itself', async () => {
    const { source, calls, release } = recording((n) => n === 1);
    const ahead = firstPageAhead(source, 20);
    release();
    await ahead.check();
    expect(await ahead.listPage(undefined, 20)).toEqual(page('listing-2'));
    expect(calls).toEqual(['list - 20', 'check', 'list - 20']);
  });

  it('drops a page older than FRESH_MS and lists again', async () => {
    const { source, calls, release } = recording();
    let now = 1_000;
    const ahead = firstPageAhead(source, 20, () => now);
    release();
    await ahead.check();
    now += FRESH_MS + 1;
    expect(await ahead.listPage(undefined, 20)).toEqual(page('listing-2'));
    expect(calls).toEqual(['list - 20', 'check', 'list - 20']);
  });

  it('lists nothing ahead without a check (a resumed run goes straight to its listing)', async () => {
    const { source, calls } = recording();
    const ahead = firstPageAhead(source, 20);
    expect(await ahead.listPage(undefined, 20)).toEqual(page('listing-1'));
    expect(calls).toEqual(['list - 20']);
  });
});
