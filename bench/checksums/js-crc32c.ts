/**
 * The checksum module as a Lambda bundle has it: CRC32C in JavaScript only (the bundles carry no native
 * module, so @node-rs/crc32 does not load there). bench/checksum.ts builds the copier with this in place of
 * lambdas/core/crc32c.ts, to measure that copier here.
 */
import { crc32cUpdateJs, digestBytes } from '../../lambdas/core/crc32c.js';

export { crc32cUpdateJs, digestBytes };
export const CRC32C_IMPLEMENTATION = 'JavaScript (as in the Lambda bundles)';
export const crc32cUpdate = crc32cUpdateJs;

export class Crc32c {
  private crc = -1;
  update(data: Uint8Array): void {
    this.crc = crc32cUpdateJs(this.crc, data);
  }
  async digest(): Promise<Uint8Array> {
    return bytes((this.crc ^ -1) >>> 0);
  }
  base64(): string {
    return Buffer.from(bytes((this.crc ^ -1) >>> 0)).toString('base64');
  }
  reset(): void {
    this.crc = -1;
  }
}

export function bytes(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value, false);
  return out;
}

export function crc32cBase64(data: Uint8Array): string {
  const c = new Crc32c();
  c.update(data);
  return c.base64();
}
