/**
 * The composite checksum S3 keeps for a multipart object uploaded with CRC32C: the
 * CRC32C of the parts' CRC32Cs, base64, "-<parts>". The expected values come from a
 * second CRC32C (hash-wasm's WebAssembly one, with the Castagnoli polynomial), not
 * from the code under test; the running form gives the same value however the bytes
 * arrive (chunks across part boundaries, saved and taken up again mid-part).
 */
import { randomBytes } from 'node:crypto';
import { crc32 } from 'hash-wasm';
import { describe, expect, it } from 'vitest';
import { CompositeCrc32c, compositeCrc32c } from '../../lambdas/core/composite-checksum';
import { planParts } from '../../lambdas/core/plan';

const CASTAGNOLI = 0x82f63b78;

/** CRC32C as S3 gives it (base64 of the 4 big-endian bytes), by hash-wasm. */
async function crc32cOf(data: Uint8Array): Promise<string> {
  return Buffer.from(await crc32(data, CASTAGNOLI), 'hex').toString('base64');
}

/** S3's composite checksum of `data` cut into the planned parts, by hash-wasm alone. */
async function expectedComposite(data: Buffer, partBytes: number): Promise<string> {
  const parts = planParts(data.length, partBytes);
  const crcs = await Promise.all(parts.map((p) => crc32(data.subarray(p.start, p.end + 1), CASTAGNOLI)));
  return `${Buffer.from(await crc32(Buffer.from(crcs.join(''), 'hex'), CASTAGNOLI), 'hex').toString('base64')}-${parts.length}`;
}

describe('composite CRC32C', () => {
  it('is the CRC32C of the parts\' CRC32Cs with the part count, as S3 reports it', async () => {
    // hash-wasm agrees with the published check value of CRC32C ("123456789" -> e3069283).
    expect(await crc32(Buffer.from('123456789'), CASTAGNOLI)).toBe('e3069283');
    const parts = [Buffer.from('123456789'), Buffer.alloc(32, 0), Buffer.alloc(32, 0xff)];
    // The three parts' CRC32Cs are the RFC 3720 B.4 and check values: e3069283, 8a9136aa, 62a8ab43.
    const joined = Buffer.from('e30692838a9136aa62a8ab43', 'hex');
    expect(compositeCrc32c(await Promise.all(parts.map(crc32cOf)))).toBe(`${await crc32cOf(joined)}-3`);
    // The same value as a literal (0xa689b469, by a third CRC32C, the moto wrapper's table-driven Python one).
    expect(compositeCrc32c(await Promise.all(parts.map(crc32cOf)))).toBe('pom0aQ==-3');
  });

  it('from the bytes as read, in chunks of any size across part boundaries, equals the planned parts\' composite', async () => {
    const partBytes = 64 * 1024;
    for (const size of [partBytes, partBytes + 1, 3 * partBytes - 7, 5 * partBytes]) {
      const data = randomBytes(size);
      for (const chunk of [1000, 4096, partBytes, 3 * partBytes + 5]) {
        const composite = new CompositeCrc32c(size, partBytes);
        for (let at = 0; at < size; at += chunk) composite.update(data.subarray(at, at + chunk));
        expect(composite.value(), `size ${size}, chunks of ${chunk}`).toBe(await expectedComposite(data, partBytes));
      }
    }
  });

  it('goes on from a saved state, mid-part or at a boundary, to the same value', async () => {
    const partBytes = 64 * 1024;
    const size = 4 * partBytes + 123;
    const data = randomBytes(size);
    for (const stop of [1, partBytes - 1, partBytes, 2 * partBytes + 77, size - 1]) {
      const first = new CompositeCrc32c(size, partBytes);
      first.update(data.subarray(0, stop));
      const saved = first.save();
      expect(saved).toMatch(/^[A-Za-z0-9+/]{11}=$/);
      const second = new CompositeCrc32c(size, partBytes, stop, saved);
      second.update(data.subarray(stop));
      expect(second.value(), `stopped at ${stop}`).toBe(await expectedComposite(data, partBytes));
    }
  });

  it('has no value before every byte is read, and takes no byte past the blob', () => {
    const composite = new CompositeCrc32c(10, 5);
    composite.update(Buffer.alloc(9));
    expect(() => composite.value()).toThrow(/needs all 10 bytes; 9 were read/);
    expect(() => composite.update(Buffer.alloc(2))).toThrow(/more than the blob's 10 bytes/);
    expect(() => new CompositeCrc32c(10, 5, 3)).toThrow(/no saved composite checksum to go on with at byte 3/);
  });
});
