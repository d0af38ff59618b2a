/**
 * The checksum module with S3's CRC32 in place of CRC32C, computed by Node's zlib.crc32 (native, in every
 * Node from 20.15 and 22.2: the Lambda runtime has it with no module to ship). Same exports as
 * lambdas/core/crc32c.ts, so bench/checksum.ts can build the copier with it and measure the CPU a copy
 * spends. Only the computation is swapped (the headers still say CRC32C, which moto does not check):
 * the copier's work per byte is what a CRC32 copier's would be.
 */
import { crc32 } from 'node:zlib';
import { bytes } from './js-crc32c';

export const CRC32C_IMPLEMENTATION = 'CRC32 by zlib.crc32 (experiment)';

/** Kept for the same exports; the state here is the finished CRC32, as zlib.crc32 takes and returns it. */
export const crc32cUpdate = (state: number, data: Uint8Array) => crc32(data, state);
export const crc32cUpdateJs = crc32cUpdate;
/** The 4 big-endian bytes of the (already finished) CRC32. */
export const digestBytes = bytes;

export class Crc32c {
  private value = 0;
  update(data: Uint8Array): void {
    this.value = crc32(data, this.value);
  }
  async digest(): Promise<Uint8Array> {
    return bytes(this.value);
  }
  base64(): string {
    return Buffer.from(bytes(this.value)).toString('base64');
  }
  reset(): void {
    this.value = 0;
  }
}

export function crc32cBase64(data: Uint8Array): string {
  const c = new Crc32c();
  c.update(data);
  return c.base64();
}
