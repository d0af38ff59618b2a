/**
 * A read whose connection breaks goes on from the byte it reached, gives up after
 * a bounded number of breaks with an error the stages retry, and reports a reopen
 * that fails (the blob changed) as the read's own error.
 */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { SourceChangedError, TransientError } from '../../lambdas/core/errors';
import { isTransient } from '../../lambdas/core/retry';
import { resumableRead } from '../../lambdas/core/stores/resumable-read';

const DATA = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));

/** The bytes from `offset`, broken off with ECONNRESET after `breakAfter` of them. */
function breaking(offset: number, breakAfter = Infinity): Readable {
  const bytes = DATA.subarray(offset);
  const cut = Math.min(breakAfter, bytes.length);
  let sent = false;
  return new Readable({
    read() {
      if (sent) return;
      sent = true;
      this.push(bytes.subarray(0, cut));
      if (cut < bytes.length) setImmediate(() => this.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' })));
      else this.push(null);
    },
  });
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('resumableRead', () => {
  it('resumes from the byte it reached, so the bytes arrive whole and in order', async () => {
    const offsets: number[] = [];
    const body = resumableRead(breaking(0, 300), async (offset) => {
      offsets.push(offset);
      return breaking(offset, offsets.length === 1 ? 250 : Infinity);
    }, { length: DATA.length, maxResumes: 5, what: 'blob "a"' });

    expect((await collect(body)).equals(DATA)).toBe(true);
    expect(offsets).toEqual([300, 550]);
  });

  it('gives up after maxResumes breaks with a transient error', async () => {
    const body = resumableRead(breaking(0, 10), async (offset) => breaking(offset, 10), { length: DATA.length, maxResumes: 2, what: 'blob "a"' });

    const error = await collect(body).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(TransientError);
    expect((error as Error).message).toBe('the connection broke 3 times reading blob "a"');
    expect(isTransient(error)).toBe(true);
  });

  it('fails with the reopen\'s own error when the blob changed in between', async () => {
    const body = resumableRead(breaking(0, 10), async () => {
      throw new SourceChangedError('blob "a" changed after it was listed');
    }, { length: DATA.length, maxResumes: 2, what: 'blob "a"' });

    await expect(collect(body)).rejects.toBeInstanceOf(SourceChangedError);
  });

  it('treats a body that ends short as a break', async () => {
    const short = Readable.from([DATA.subarray(0, 100)]);
    const body = resumableRead(short, async (offset) => breaking(offset), { length: DATA.length, maxResumes: 1, what: 'blob "a"' });

    expect((await collect(body)).equals(DATA)).toBe(true);
  });
});
