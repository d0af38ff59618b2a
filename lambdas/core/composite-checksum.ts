/**
 * The checksum S3 keeps for an object uploaded in parts with CRC32C (a "composite" checksum):
 * the CRC32C of the parts' CRC32Cs (each as its 4 big-endian bytes, in part order), base64,
 * then "-" and the number of parts. S3 computes it from the bytes it stores and gives it on
 * HeadObject with checksum mode, even for an object in an archive class that cannot be read.
 *
 * Computed here from the source's bytes as they are read, a range at a time, over the planned
 * parts (plan.ts): equal values mean S3 holds exactly the bytes read. The running state is two
 * 32-bit registers (the current part's CRC32C, and the CRC32C of the finished parts' values),
 * saved between invocations as 12 characters.
 */
import { crc32cUpdate, digestBytes } from './crc32c';
import { partCount, partRange } from './plan';

/** S3's composite checksum of parts with these CRC32Cs (base64, as S3 reports each part's). */
export function compositeCrc32c(partCrc32cs: readonly string[]): string {
  const joined = Buffer.concat(partCrc32cs.map((crc) => Buffer.from(crc, 'base64')));
  return `${Buffer.from(digestBytes(crc32cUpdate(-1, joined))).toString('base64')}-${partCrc32cs.length}`;
}

/** The composite checksum of a blob's planned parts, fed the blob's bytes in order from `offset`. */
export class CompositeCrc32c {
  private part = -1;
  private parts = -1;

  /** `saved` is what `save()` gave at `offset`; without it, the bytes start at 0. */
  constructor(
    private readonly size: number,
    private readonly partBytes: number,
    private offset = 0,
    saved?: string,
  ) {
    if (saved === undefined) {
      if (offset !== 0) throw new Error(`no saved composite checksum to go on with at byte ${offset}`);
      return;
    }
    const registers = Buffer.from(saved, 'base64');
    if (registers.length !== 8) throw new Error(`a saved composite checksum is 8 bytes, not ${registers.length}`);
    this.part = registers.readInt32BE(0);
    this.parts = registers.readInt32BE(4);
  }

  update(chunk: Uint8Array): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.offset >= this.size) throw new Error(`more than the blob's ${this.size} bytes were read`);
      const { end } = partRange(this.size, this.partBytes, Math.floor(this.offset / this.partBytes) + 1);
      const take = Math.min(chunk.length - at, end + 1 - this.offset);
      this.part = crc32cUpdate(this.part, chunk.subarray(at, at + take));
      at += take;
      this.offset += take;
      if (this.offset === end + 1) {
        this.parts = crc32cUpdate(this.parts, digestBytes(this.part));
        this.part = -1;
      }
    }
  }

  /** The state to go on from where the bytes stopped (with the same offset). */
  save(): string {
    const registers = Buffer.alloc(8);
    registers.writeInt32BE(this.part | 0, 0);
    registers.writeInt32BE(this.parts | 0, 4);
    return registers.toString('base64');
  }

  /** The composite checksum, once every byte was fed. */
  value(): string {
    if (this.offset !== this.size) throw new Error(`the composite checksum needs all ${this.size} bytes; ${this.offset} were read`);
    return `${Buffer.from(digestBytes(this.parts)).toString('base64')}-${partCount(this.size, this.partBytes)}`;
  }
}
