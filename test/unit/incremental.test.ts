import { describe, expect, it } from 'vitest';
import { COPY_WINDOW_MS, freshness } from '../../lambdas/core/incremental';
import type { BlobRef } from '../../lambdas/core/messages';

const blob: BlobRef = { name: 'a', etag: '"0x1"', size: 10, lastModified: '2024-01-01T00:00:00.000Z' };
const at = (ms: number) => new Date(Date.parse(blob.lastModified) + ms).toISOString();

describe('whether the destination already holds a blob', () => {
  it('copies what is missing or of another size', () => {
    expect(freshness(blob, undefined)).toBe('changed');
    expect(freshness(blob, { key: 'a', size: 11, lastModified: at(COPY_WINDOW_MS * 2) })).toBe('changed');
  });

  it('copies what was written before the blob last changed', () => {
    expect(freshness(blob, { key: 'a', size: 10, lastModified: at(-1000) })).toBe('changed');
  });

  it('trusts a same-size object written well after the change', () => {
    expect(freshness(blob, { key: 'a', size: 10, lastModified: at(COPY_WINDOW_MS + 1000) })).toBe('unchanged');
  });

  it('asks for a HEAD when the write was close to the change', () => {
    expect(freshness(blob, { key: 'a', size: 10, lastModified: at(0) })).toBe('verify');
    expect(freshness(blob, { key: 'a', size: 10, lastModified: at(COPY_WINDOW_MS - 1) })).toBe('verify');
  });

  it('settles it by MD5 when the blob has one and S3 ETag is that MD5', () => {
    const md5 = Buffer.from('00112233445566778899aabbccddeeff', 'hex').toString('base64');
    const withMd5 = { ...blob, contentMd5: md5 };
    expect(freshness(withMd5, { key: 'a', size: 10, lastModified: at(0), etag: '"00112233445566778899aabbccddeeff"' })).toBe('unchanged');
    expect(freshness(withMd5, { key: 'a', size: 10, lastModified: at(0), etag: '"ffffffffffffffffffffffffffffffff"' })).toBe('verify');
  });
});
