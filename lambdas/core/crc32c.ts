/**
 * CRC32C (Castagnoli), the checksum every put and part carries. Node has none of its
 * own. Where @node-rs/crc32's prebuilt native module loads (it ships binaries for the
 * common platforms, no build step), it is used: about 2.9 GB/s here. Elsewhere (a
 * Lambda bundle, which carries no native module) a plain JavaScript one does it at
 * about 0.6-1 GB/s: slicing-by-16 over 32-bit words. The AWS SDK's own is a
 * byte-at-a-time loop (about 300 MB/s here), which made checksumming the largest
 * single cost of copying a large blob (3.5 s of CPU per GiB; 1.9 s with the
 * JavaScript one, 0.4 s native).
 *
 * `Crc32c` implements the SDK's Checksum interface, so the S3 client uses it too
 * (for the bodies it streams), and the copy path uses it to checksum a body while
 * reading it, to send the value in the request's header.
 */
import { createRequire } from 'node:module';
import { endianness } from 'node:os';

/** The native CRC32C, when its module loads here; `state` and the result are finished (non-inverted) values. */
const native: ((input: Buffer, state: number) => number) | undefined = (() => {
  try {
    return (createRequire(import.meta.url)('@node-rs/crc32') as { crc32c: (input: Buffer, state: number) => number }).crc32c;
  } catch {
    return undefined;
  }
})();
/** Below this many bytes the call into native code costs more than it saves. */
const NATIVE_MIN_BYTES = 512;

/** Which implementation runs here (for the bench's report). */
export const CRC32C_IMPLEMENTATION = native ? 'native (@node-rs/crc32)' : 'JavaScript';

const SLICES = 16;
const T = new Int32Array(256 * SLICES);
for (let i = 0; i < 256; i++) {
  let c = i;
  for (let j = 0; j < 8; j++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
  T[i] = c;
}
for (let k = 1; k < SLICES; k++) {
  for (let i = 0; i < 256; i++) {
    const p = T[(k - 1) * 256 + i];
    T[k * 256 + i] = (p >>> 8) ^ T[p & 0xff];
  }
}
const LITTLE_ENDIAN = endianness() === 'LE';

/** Continue a CRC32C (in its inverted, running form: start from ~0) over `data`. */
export function crc32cUpdate(crc: number, data: Uint8Array): number {
  if (native && data.length >= NATIVE_MIN_BYTES) {
    const bytes = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.length);
    return ~native(bytes, ~crc >>> 0);
  }
  return crc32cUpdateJs(crc, data);
}

/** The JavaScript CRC32C, whatever else is available (exported for the tests that hold both to the same answers). */
export function crc32cUpdateJs(crc: number, data: Uint8Array): number {
  const n = data.length;
  let i = 0;
  // Bytes up to a 4-byte boundary, so that the middle can be read as 32-bit words.
  while (i < n && ((data.byteOffset + i) & 3) !== 0) crc = (crc >>> 8) ^ T[(crc ^ data[i++]) & 0xff];
  const blocks = LITTLE_ENDIAN ? (n - i) >>> 4 : 0;
  if (blocks > 0) {
    const w = new Int32Array(data.buffer, data.byteOffset + i, blocks * 4);
    for (let j = 0; j < w.length; j += 4) {
      const a = w[j] ^ crc;
      const b = w[j + 1];
      const c = w[j + 2];
      const d = w[j + 3];
      crc =
        T[3840 + (a & 0xff)] ^ T[3584 + ((a >>> 8) & 0xff)] ^ T[3328 + ((a >>> 16) & 0xff)] ^ T[3072 + (a >>> 24)] ^
        T[2816 + (b & 0xff)] ^ T[2560 + ((b >>> 8) & 0xff)] ^ T[2304 + ((b >>> 16) & 0xff)] ^ T[2048 + (b >>> 24)] ^
        T[1792 + (c & 0xff)] ^ T[1536 + ((c >>> 8) & 0xff)] ^ T[1280 + ((c >>> 16) & 0xff)] ^ T[1024 + (c >>> 24)] ^
        T[768 + (d & 0xff)] ^ T[512 + ((d >>> 8) & 0xff)] ^ T[256 + ((d >>> 16) & 0xff)] ^ T[d >>> 24];
    }
    i += blocks * 16;
  }
  while (i < n) crc = (crc >>> 8) ^ T[(crc ^ data[i++]) & 0xff];
  return crc;
}

/** The 4 big-endian bytes of a CRC32C from its running form (as `crc32cUpdate` returns it). */
export function digestBytes(crc: number): Uint8Array {
  const value = (crc ^ -1) >>> 0;
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value, false);
  return out;
}

/** Incremental CRC32C with the SDK's Checksum interface (update, digest, reset). */
export class Crc32c {
  private crc = -1;

  update(data: Uint8Array): void {
    this.crc = crc32cUpdate(this.crc, data);
  }

  async digest(): Promise<Uint8Array> {
    return digestBytes(this.crc);
  }

  /** The checksum as S3 writes it in x-amz-checksum-crc32c: base64 of the 4 big-endian bytes. */
  base64(): string {
    return Buffer.from(digestBytes(this.crc)).toString('base64');
  }

  reset(): void {
    this.crc = -1;
  }
}

/** CRC32C of whole bytes, base64 as S3 writes it. */
export function crc32cBase64(data: Uint8Array): string {
  const c = new Crc32c();
  c.update(data);
  return c.base64();
}
