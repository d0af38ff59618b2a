/**
 * A read that survives its connection breaking mid-body: it asks again from the
 * byte it reached and carries on, so the reader sees one unbroken stream. The
 * caller pins every request to the blob's ETag, so the bytes after a break are of
 * the same version as those before it: resuming never splices two versions.
 *
 * Why not the Azure SDK's own resume (maxRetryRequests): on Node 20 and later a
 * cut connection surfaces as the response's `aborted` event, which the SDK turns
 * into an AbortError instead of a resume.
 */
import { Readable } from 'node:stream';
import { TransientError } from '../errors';

export interface ResumeOptions {
  /** Bytes the whole read delivers. */
  length: number;
  /** Breaks survived before giving up (with a TransientError, so the stage retries later). */
  maxResumes: number;
  /** What is being read, for the error message. */
  what: string;
}

export function resumableRead(first: Readable, reopen: (offset: number) => Promise<Readable>, options: ResumeOptions): Readable {
  let source = first;
  let received = 0;
  let resumes = 0;
  let reopening = false;

  const out = new Readable({
    read() {
      if (!reopening) source.resume();
    },
    destroy(error, callback) {
      detach(source);
      source.on('error', () => undefined);
      source.destroy();
      callback(error);
    },
  });

  const onData = (chunk: Buffer) => {
    received += chunk.length;
    if (!out.push(chunk)) source.pause();
  };
  const onEnd = () => {
    if (received === options.length) out.push(null);
    else broke(new Error(`the body ended after ${received} of ${options.length} bytes`));
  };
  const attach = (stream: Readable) => {
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('error', broke);
  };
  const detach = (stream: Readable) => {
    stream.off('data', onData);
    stream.off('end', onEnd);
    stream.off('error', broke);
  };

  function broke(error: unknown) {
    detach(source);
    source.on('error', () => undefined);
    source.destroy();
    if (out.destroyed) return;
    if (resumes >= options.maxResumes) {
      out.destroy(new TransientError(`the connection broke ${resumes + 1} times reading ${options.what}`, { cause: error }));
      return;
    }
    resumes++;
    reopening = true;
    reopen(received).then(
      (next) => {
        reopening = false;
        if (out.destroyed) return void next.destroy();
        source = next;
        attach(next);
      },
      // A reopen that fails says why (the blob changed, access was withdrawn): that is the read's error.
      (reopenError: unknown) => out.destroy(reopenError as Error),
    );
  }

  attach(first);
  return out;
}
