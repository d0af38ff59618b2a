/**
 * Completion past 1,000 parts, early exit while parts are missing (an older
 * release's message), a retry when the listing lags the count, and a retried
 * completion whose first attempt succeeded, against a mocked S3 client.
 */
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import {
  CompleteMultipartUploadCommand, DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListPartsCommand, NoSuchUpload, S3Client,
} from '@aws-sdk/client-s3';
import { SOURCE_META } from '../../lambdas/core/attributes';
import { MESSAGE_VERSION, type PartsDoneMessage } from '../../lambdas/core/messages';
import { recombinator } from '../../lambdas/core/stages/recombinator';
import { s3Sink } from '../../lambdas/core/stores/s3-sink';
import { outcomesOf, runSettings, runWithUnit, stageContext, MiB } from '../helpers/context';

const PART = 5 * MiB;
const PARTS = 2500;
const blob = { name: 'huge.bin', etag: '"0xE"', size: PARTS * PART - 100, lastModified: '2024-01-01T00:00:00.000Z' };
const message: PartsDoneMessage = {
  v: MESSAGE_VERSION, kind: 'parts-done', runId: 'run-test', unit: 'u', run: runSettings(), blob, key: 'huge.bin', uploadId: 'up-1',
  partCount: PARTS, partBytes: PART, replans: 0,
};

function partsPage(from: number, to: number, truncated: boolean, missing: number[] = []) {
  const parts = [];
  for (let n = from; n <= to; n++) {
    if (missing.includes(n)) continue;
    parts.push({ PartNumber: n, ETag: `"e${n}"`, Size: n === PARTS ? PART - 100 : PART });
  }
  return { Parts: parts, IsTruncated: truncated, NextPartNumberMarker: truncated ? String(to) : undefined };
}

describe('recombinator', () => {
  const s3 = mockClient(S3Client);
  beforeEach(() => s3.reset());
  // Files may share a worker: S3Client's send goes back to the real one.
  afterAll(() => s3.restore());

  const run = async (sent: PartsDoneMessage = message) => {
    const sink = s3Sink({ bucket: 'dest' }, new S3Client({ region: 'us-east-1' }));
    const { ctx, ledger } = stageContext({ sink });
    await runWithUnit(ledger, 'u', [{ name: blob.name, size: blob.size }]);
    await recombinator(ctx, sent);
    return outcomesOf(ledger);
  };

  it('reads every page of parts and completes an upload of 2,500 parts', async () => {
    s3.on(ListPartsCommand, { PartNumberMarker: undefined }).resolves(partsPage(1, 1000, true));
    s3.on(ListPartsCommand, { PartNumberMarker: '1000' }).resolves(partsPage(1001, 2000, true));
    s3.on(ListPartsCommand, { PartNumberMarker: '2000' }).resolves(partsPage(2001, 2500, false));
    s3.on(CompleteMultipartUploadCommand).resolves({});
    s3.on(DeleteObjectCommand).resolves({});
    s3.on(GetObjectCommand).rejects(Object.assign(new Error('no manifest'), { name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } }));

    const outcomes = await run();

    const completed = s3.commandCalls(CompleteMultipartUploadCommand);
    expect(completed).toHaveLength(1);
    const parts = completed[0].args[0].input.MultipartUpload!.Parts!;
    expect(parts.map((p) => p.PartNumber)).toEqual(Array.from({ length: PARTS }, (_, i) => i + 1));
    // Asked once, when the count said every part was in: three listings of the parts, one completion.
    expect(s3.commandCalls(ListPartsCommand)).toHaveLength(3);
    expect(outcomes).toEqual({ 'huge.bin': 'copied' });
  });

  it('for an older release\'s message (sent after every part), stops reading pages at the first gap and does not complete', async () => {
    s3.on(ListPartsCommand, { PartNumberMarker: undefined }).resolves(partsPage(1, 1001, true, [17]));
    s3.on(ListPartsCommand, { PartNumberMarker: '1001' }).resolves(partsPage(1002, 2500, false));

    const outcomes = await run({ ...message, v: 1 });

    expect(s3.commandCalls(ListPartsCommand)).toHaveLength(1);
    expect(s3.commandCalls(CompleteMultipartUploadCommand)).toHaveLength(0);
    expect(outcomes).toEqual({ 'huge.bin': 'pending' });
  });

  it('asks to be tried again when the listing shows fewer parts than were counted in', async () => {
    s3.on(ListPartsCommand, { PartNumberMarker: undefined }).resolves(partsPage(1, 1000, true));
    s3.on(ListPartsCommand, { PartNumberMarker: '1000' }).resolves(partsPage(1001, 2500, false, [2400]));

    await expect(run()).rejects.toThrow(/lists 2499 of 2500 parts though every part was counted in; trying again/);
    expect(s3.commandCalls(CompleteMultipartUploadCommand)).toHaveLength(0);
  });

  it('refuses to complete when a part has the wrong size, and aborts', async () => {
    const page = partsPage(1, 2500, false);
    page.Parts[41].Size = PART - 1;
    s3.on(ListPartsCommand).resolves(page);
    s3.on(GetObjectCommand).rejects(Object.assign(new Error('no manifest'), { name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } }));

    const outcomes = await run();

    expect(s3.commandCalls(CompleteMultipartUploadCommand)).toHaveLength(0);
    expect(outcomes['huge.bin']).toMatch(/^failed: multipart upload inconsistent: part 42 has 5242879 bytes, planned 5242880/);
  });

  it('treats NoSuchUpload on completion as done when the object is this version', async () => {
    s3.on(ListPartsCommand).resolves(partsPage(1, 2500, false));
    s3.on(CompleteMultipartUploadCommand).rejects(new NoSuchUpload({ message: 'gone', $metadata: { httpStatusCode: 404 } }));
    s3.on(HeadObjectCommand).resolves({
      ContentLength: blob.size,
      Metadata: { [SOURCE_META.etag]: blob.etag, [SOURCE_META.size]: String(blob.size) },
    });
    // The manifest is gone too: whoever completed it also checked and recorded it.
    s3.on(GetObjectCommand).rejects(Object.assign(new Error('no manifest'), { name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } }));

    expect(await run()).toEqual({ 'huge.bin': 'copied' });
  });

  describe('a completion slower than the invocation', () => {
    const slowly = (seconds: number) => () => new Promise((resolve) => setTimeout(() => resolve({}), seconds * 1000));
    const sinkAndContext = (remaining: number) => {
      const sink = s3Sink({ bucket: 'dest' }, new S3Client({ region: 'us-east-1' }));
      const started = Date.now();
      return stageContext({ sink, remainingMs: () => remaining - (Date.now() - started) });
    };

    it('stops waiting in time, hands on, and the next invocation finds the object without asking S3 again', async () => {
      s3.on(ListPartsCommand).resolves(partsPage(1, 2500, false));
      s3.on(CompleteMultipartUploadCommand).callsFake(slowly(3));
      s3.on(GetObjectCommand).rejects(Object.assign(new Error('no manifest'), { name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } }));
      s3.on(DeleteObjectCommand).resolves({});
      const { ctx, ledger, published } = sinkAndContext(2_500);
      await runWithUnit(ledger, 'u', [{ name: blob.name, size: blob.size }]);

      const begun = Date.now();
      await recombinator(ctx, message);

      expect(Date.now() - begun).toBeLessThan(2_500);
      expect(await outcomesOf(ledger)).toEqual({ 'huge.bin': 'pending' });
      expect(published).toHaveLength(1);
      const handedOn = published[0] as PartsDoneMessage;
      expect(handedOn.completingSince).toBeDefined();

      // The object is there now; a duplicate of the first message finds the completion claimed and waits too.
      s3.on(HeadObjectCommand).resolves({ ContentLength: blob.size, Metadata: { [SOURCE_META.etag]: blob.etag, [SOURCE_META.size]: String(blob.size) } });
      const next = stageContext({ sink: ctx.sink, ledger, remainingMs: () => 60_000 });
      await recombinator(next.ctx, message);
      await recombinator(next.ctx, handedOn);

      expect(s3.commandCalls(CompleteMultipartUploadCommand)).toHaveLength(1);
      expect(await outcomesOf(ledger)).toEqual({ 'huge.bin': 'copied' });
    });
  });
});
