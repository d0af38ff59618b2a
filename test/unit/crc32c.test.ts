/**
 * The fast CRC32C gives the checksum S3 checks: the published test vectors, the
 * same value as a plain bitwise implementation for any length, alignment and
 * chunking, and the SDK's Checksum interface. collectBody reads a body whole with
 * its CRC32C, and refuses a body of the wrong length.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { CRC32C_IMPLEMENTATION, Crc32c, crc32cBase64, crc32cUpdate, crc32cUpdateJs } from '../../lambdas/core/crc32c';
import { collectBody } from '../../lambdas/core/streams';

/** The definition, one bit at a time: slow and obviously right. */
function reference(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

const finish = (crc: number) => (crc ^ -1) >>> 0;

function pseudoRandom(n: number, seed = 7): Buffer {
  const out = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

describe('crc32c', () => {
  it('matches the published test vectors (RFC 3720 B.4 and "123456789")', () => {
    expect(finish(crc32cUpdate(-1, Buffer.from('123456789')))).toBe(0xe3069283);
    expect(finish(crc32cUpdate(-1, Buffer.alloc(32, 0)))).toBe(0x8a9136aa);
    expect(finish(crc32cUpdate(-1, Buffer.alloc(32, 0xff)))).toBe(0x62a8ab43);
    expect(finish(crc32cUpdate(-1, Buffer.from(Array.from({ length: 32 }, (_, i) => i))))).toBe(0x46dd794e);
    expect(finish(crc32cUpdate(-1, Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i))))).toBe(0x113fdb5c);
    expect(finish(crc32cUpdate(-1, Buffer.alloc(0)))).toBe(0);
  });

  it('agrees with the bitwise definition for every length and alignment', () => {
    const data = pseudoRandom(4096 + 64);
    for (const offset of [0, 1, 2, 3, 5]) {
      for (const length of [0, 1, 3, 4, 15, 16, 17, 31, 33, 64, 100, 511, 512, 513, 1023, 4096]) {
        const view = data.subarray(offset, offset + length);
        expect(finish(crc32cUpdate(-1, view)), `offset ${offset} length ${length}`).toBe(reference(view));
      }
    }
  });

  it('the JavaScript one (used where the native module is absent, as in a Lambda bundle) agrees too, native here', () => {
    // npm ci installs the native module on this platform; losing it would silently slow every copy.
    expect(CRC32C_IMPLEMENTATION).toBe('native (@node-rs/crc32)');
    expect(finish(crc32cUpdateJs(-1, Buffer.from('123456789')))).toBe(0xe3069283);
    const data = pseudoRandom(70_000 + 5, 5);
    for (const offset of [0, 1, 3]) {
      for (const length of [511, 512, 513, 4096, 70_000]) {
        const view = data.subarray(offset, offset + length);
        expect(finish(crc32cUpdateJs(-1, view)), `offset ${offset} length ${length}`).toBe(reference(view));
        expect(crc32cUpdate(crc32cUpdateJs(-1, view.subarray(0, 100)), view.subarray(100))).toBe(crc32cUpdateJs(-1, view));
      }
    }
  });

  it('gives the same value however the bytes are split', () => {
    const data = pseudoRandom(100_003, 3);
    const whole = reference(data);
    for (const piece of [1, 7, 16, 1000, 65_536]) {
      const c = new Crc32c();
      for (let i = 0; i < data.length; i += piece) c.update(data.subarray(i, i + piece));
      expect(Buffer.from(c.base64(), 'base64').readUInt32BE(0), `pieces of ${piece}`).toBe(whole);
    }
  });

  it('has the SDK Checksum interface: digest is the 4 big-endian bytes; reset starts again', async () => {
    const c = new Crc32c();
    c.update(Buffer.from('123456789'));
    expect(Buffer.from(await c.digest()).toString('hex')).toBe('e3069283');
    c.reset();
    c.update(Buffer.from('123456789'));
    expect(c.base64()).toBe(Buffer.from('e3069283', 'hex').toString('base64'));
    expect(crc32cBase64(Buffer.from('123456789'))).toBe('4waSgw==');
  });
});

describe('collectBody', () => {
  const data = pseudoRandom(300_000, 11);
  const chunked = (bytes: Buffer, piece = 65_536) =>
    Readable.from(Array.from({ length: Math.ceil(bytes.length / piece) }, (_, i) => bytes.subarray(i * piece, (i + 1) * piece)));

  it('reads the whole body with its CRC32C and feeds another hash on the way', async () => {
    const md5 = createHash('md5');
    const body = await collectBody(chunked(data), data.length, { hash: md5 });
    expect(body.buffer.equals(data)).toBe(true);
    expect(Buffer.from(body.crc32c, 'base64').readUInt32BE(0)).toBe(reference(data));
    expect(md5.digest('hex')).toBe(createHash('md5').update(data).digest('hex'));
  });

  it('refuses a body shorter or longer than announced', async () => {
    await expect(collectBody(chunked(data), data.length + 1)).rejects.toThrow(/ended after 300000 of 300001 bytes/);
    await expect(collectBody(chunked(data), data.length - 1)).rejects.toThrow(/more than the 299999 bytes/);
  });

  it('passes on the source error', async () => {
    const failing = new Readable({
      read() {
        this.destroy(Object.assign(new Error('connection reset'), { code: 'ECONNRESET' }));
      },
    });
    await expect(collectBody(failing, 10)).rejects.toThrow('connection reset');
  });
});
