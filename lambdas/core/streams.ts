/**
 * Stream helpers for the copy path: count (and optionally hash) the bytes that
 * pass, and regroup them into large chunks on the way.
 *
 * Why regroup: a checksummed streaming upload sends each chunk it is given as one
 * aws-chunked frame. Azure hands a body over in 16-64 KiB pieces, and thousands
 * of tiny frames cost the receiving server far more than a few large ones (moto
 * here: 2.4 MiB/s with 64 KiB frames, 72 MiB/s with 8 MiB frames). Memory stays
 * bounded at about two chunks per transfer.
 */
import { createHash, type Hash } from 'node:crypto';
import { PassThrough, Transform, type Readable } from 'node:stream';
import { Crc32c } from './crc32c';

export const UPLOAD_CHUNK_BYTES = 8 * 1024 * 1024;

/**
 * Bodies up to this size are read whole into memory (one buffer, checksummed on the
 * way) and sent with their CRC32C in the request's header; larger ones stream, with
 * the CRC32C in an aws-chunked trailer. A header checksum is what a server checks
 * cheapest: a streamed body comes in HTTP chunked and aws-chunked framing that the
 * server must take apart and search for the trailer. moto here spends about 11 s of
 * CPU per GiB on streamed 64 MiB parts and about 6 s on the same parts sent whole
 * (the same as with no checksum at all), and moto is the bottleneck. Memory stays
 * bounded: a part is at most this size (larger parts, for blobs over about 1.2 TiB, stream).
 */
export const MAX_BUFFERED_BODY_BYTES = 128 * 1024 * 1024;

/** A body read whole, with its CRC32C (base64, as S3 writes it). */
export interface CollectedBody {
  buffer: Buffer;
  crc32c: string;
}

/**
 * Part buffers, kept for the next part once a write has succeeded: a fresh 64 MiB
 * buffer costs a page fault per 4 KiB on first touch, which made filling it five
 * times dearer than copying into one already used (about 1 s of CPU per GiB; on this
 * project's VM, 225 ms against 5 ms for 64 MiB). A body is given the smallest kept
 * buffer that holds it (a blob's shorter last part reuses a full part's buffer), and
 * a full pool keeps its largest buffers. Only buffers of at least POOLED_MIN_BYTES
 * are kept, up to POOL_MAX_BYTES in all.
 */
const POOLED_MIN_BYTES = 4 * 1024 * 1024;
const POOL_MAX_BYTES = 256 * 1024 * 1024;
const pool: Buffer[] = [];
let pooledBytes = 0;
/** The whole pooled buffer behind a body that uses only its start. */
const backing = new WeakMap<Buffer, Buffer>();

function takeBuffer(length: number): Buffer {
  if (length >= POOLED_MIN_BYTES) {
    let best = -1;
    pool.forEach((b, i) => {
      if (b.length >= length && (best < 0 || b.length < pool[best].length)) best = i;
    });
    // A buffer far larger than the body is left for a body of its size.
    if (best >= 0 && pool[best].length <= 2 * length) {
      const [whole] = pool.splice(best, 1);
      pooledBytes -= whole.length;
      if (whole.length === length) return whole;
      const view = whole.subarray(0, length);
      backing.set(view, whole);
      return view;
    }
  }
  return Buffer.allocUnsafe(length);
}

/** Drop every pooled buffer: for a test that needs the pool as it finds it empty (files may share a process). */
export function emptyBodyPool(): void {
  pool.length = 0;
  pooledBytes = 0;
}

/**
 * Give a body's buffer back for reuse. Only once nothing can read it any more: after
 * the write that sent it has succeeded (a failed write may still hold it).
 */
export function releaseBody(body: CollectedBody): void {
  const buffer = backing.get(body.buffer) ?? body.buffer;
  if (buffer.length < POOLED_MIN_BYTES || buffer.length > POOL_MAX_BYTES) return;
  // Room is made by dropping smaller buffers (the sizes a run asks for most are its full parts).
  pool.sort((a, b) => a.length - b.length);
  while (pooledBytes + buffer.length > POOL_MAX_BYTES && pool.length > 0 && pool[0].length <= buffer.length) {
    pooledBytes -= pool.shift()!.length;
  }
  if (pooledBytes + buffer.length > POOL_MAX_BYTES) return;
  pool.push(buffer);
  pooledBytes += buffer.length;
}

/**
 * Read a body of known length into one buffer, computing its CRC32C (and feeding
 * `hash`, when given) as the bytes arrive. Fails if the body is shorter or longer
 * than `length`, or if the source fails; the source is destroyed on failure.
 */
export async function collectBody(source: Readable, length: number, options: { hash?: Hash } = {}): Promise<CollectedBody> {
  const buffer = takeBuffer(length);
  const crc = new Crc32c();
  let offset = 0;
  try {
    for await (const chunk of source) {
      const bytes = chunk as Buffer;
      if (offset + bytes.length > length) throw new Error(`the body holds more than the ${length} bytes expected`);
      bytes.copy(buffer, offset);
      crc.update(bytes);
      options.hash?.update(bytes);
      offset += bytes.length;
    }
  } catch (error) {
    source.destroy();
    throw error;
  }
  if (offset !== length) throw new Error(`the body ended after ${offset} of ${length} bytes`);
  return { buffer, crc32c: crc.base64() };
}

/** The smallest range a part's read is split into (below it a request's round trip costs more than it gains). */
export const RANGE_READ_MIN_BYTES = 8 * 1024 * 1024;

/** How many ranges a body of `length` bytes is read as, at most `most`. */
export function rangeReadsFor(length: number, most: number): number {
  return Math.max(1, Math.min(Math.floor(most), Math.floor(length / RANGE_READ_MIN_BYTES)));
}

/**
 * Read a body of known length whole into one buffer as `pieces` ranges at once, each opened by `open` (its
 * first and last byte, inclusive) and written at its place; then its CRC32C. With one piece, collectBody
 * (the CRC32C computed as the bytes arrive). If any range fails, every other read is stopped and the error
 * thrown: the caller retries the whole body.
 */
export async function collectRanges(length: number, pieces: number, open: (start: number, end: number) => Promise<Readable>): Promise<CollectedBody> {
  if (pieces <= 1) return collectBody(await open(0, length - 1), length);
  const buffer = takeBuffer(length);
  const size = Math.ceil(length / pieces);
  const opened: Readable[] = [];
  let stopped = false;
  const readPiece = async (start: number) => {
    const end = Math.min(length, start + size);
    const body = await open(start, end - 1);
    if (stopped) {
      body.on('error', () => undefined).destroy();
      return;
    }
    opened.push(body);
    let offset = start;
    for await (const chunk of body) {
      const bytes = chunk as Buffer;
      if (offset + bytes.length > end) throw new Error(`a range of the body holds more than the ${end - start} bytes asked for`);
      bytes.copy(buffer, offset);
      offset += bytes.length;
    }
    if (offset !== end) throw new Error(`a range of the body ended after ${offset - start} of ${end - start} bytes`);
  };
  const results = await Promise.allSettled(Array.from({ length: Math.ceil(length / size) }, (_, i) =>
    readPiece(i * size).catch((error: unknown) => {
      stopped = true;
      for (const body of opened) body.on('error', () => undefined).destroy();
      throw error;
    })));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  const crc = new Crc32c();
  crc.update(buffer);
  return { buffer, crc32c: crc.base64() };
}

/** Pass a stream through, counting (and optionally hashing) its bytes; source errors reach the output. */
export function byteCounter(source: Readable, options: { hash?: Hash; chunkBytes?: number } = {}) {
  const chunkBytes = options.chunkBytes ?? UPLOAD_CHUNK_BYTES;
  let bytes = 0;
  let held: Buffer[] = [];
  let heldBytes = 0;
  const flush = (push: (chunk: Buffer) => void) => {
    if (heldBytes === 0) return;
    push(held.length === 1 ? held[0] : Buffer.concat(held, heldBytes));
    held = [];
    heldBytes = 0;
  };
  const stream = new Transform({
    readableHighWaterMark: chunkBytes,
    writableHighWaterMark: chunkBytes,
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      options.hash?.update(chunk);
      held.push(chunk);
      heldBytes += chunk.length;
      if (heldBytes >= chunkBytes) flush((c) => this.push(c));
      done();
    },
    flush(done) {
      flush((c) => this.push(c));
      done();
    },
  });
  let failure: Error | undefined;
  source.on('error', (error) => {
    failure ??= error;
    stream.destroy(error);
  });
  source.pipe(stream);
  return {
    stream,
    bytes: () => bytes,
    /** Why the source broke, when it did: more telling than the writer's view of it. */
    sourceError: () => failure,
    /**
     * Give up on this transfer: close the source (releasing its connection) and the
     * stream. A writer that failed stops reading without closing either; left open,
     * the source would hold its socket and fail later with nobody listening (an
     * uncaught exception that ends the process).
     */
    discard() {
      for (const s of [source, stream]) {
        s.on('error', () => undefined);
        s.destroy();
      }
    },
  };
}

export async function md5OfStream(stream: Readable): Promise<{ md5: string; bytes: number }> {
  const hash = createHash('md5');
  let bytes = 0;
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { md5: hash.digest('base64'), bytes };
}

/**
 * One stream read once, written to several writers (one blob to several destinations): every chunk goes to
 * each branch still wanted, and the source waits for the slowest branch, so at most a chunk per branch is held.
 * A writer that fails is dropped and the rest go on; its branch is ended so nothing waits on it.
 */
function teeStream(source: Readable, count: number) {
  const branches = Array.from({ length: count }, () => new PassThrough({ highWaterMark: UPLOAD_CHUNK_BYTES }));
  const live = new Set(branches);
  const blocked = new Set<PassThrough>();
  const unblock = (branch: PassThrough) => {
    if (!blocked.delete(branch)) return;
    if (blocked.size === 0) source.resume();
  };
  source.on('data', (chunk: Buffer) => {
    for (const branch of live) {
      if (!branch.write(chunk) && !blocked.has(branch)) {
        blocked.add(branch);
        branch.once('drain', () => unblock(branch));
      }
    }
    if (blocked.size > 0) source.pause();
  });
  source.on('end', () => {
    for (const branch of live) branch.end();
  });
  source.on('error', (error) => {
    for (const branch of live) branch.destroy(error);
  });
  return {
    branches,
    /** Stop feeding branch `n` (its writer failed): the others are no longer held back by it. */
    drop(n: number) {
      const branch = branches[n];
      if (!live.delete(branch)) return;
      branch.on('error', () => undefined);
      branch.destroy();
      unblock(branch);
    },
  };
}

/**
 * Write one counted read to `count` writers at once (teeStream): a writer that fails is dropped, so the others
 * go on, and the read is given up (its connection released) once any failed. Each writer's result, in order.
 */
export async function writeEach<T>(
  counted: ReturnType<typeof byteCounter>, count: number, write: (body: Readable, n: number) => Promise<T>,
): Promise<PromiseSettledResult<T>[]> {
  const tee = teeStream(counted.stream, count);
  const settled = await Promise.allSettled(tee.branches.map(async (branch, n) => {
    try {
      return await write(branch, n);
    } catch (error) {
      tee.drop(n);
      throw error;
    }
  }));
  if (settled.some((r) => r.status === 'rejected')) counted.discard();
  return settled;
}
