/**
 * The store contracts, against the real emulators: what the stages rely on from a
 * BlobSource and an ObjectSink.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { ContainerSASPermissions, StorageSharedKeyCredential, generateBlobSASQueryParameters, type BlobItem } from '@azure/storage-blob';
import { describe, expect, it } from 'vitest';
import { BlobFailure, SourceChangedError } from '../../lambdas/core/errors';
import { quotedEtag } from '../../lambdas/core/stores/azure-list';
import { azureSource } from '../../lambdas/core/stores/azure-source';
import type { BlobKind, ListedBlob } from '../../lambdas/core/stores/types';
import { s3Sink } from '../../lambdas/core/stores/s3-sink';
import { AZURITE_KEY } from '../../lambdas/local/emulators';
import { digestOf, patternBytes, uploadBlob, uploadDirectoryMarker, type BlobSpec } from '../../lambdas/local/seed';
import { emulators, newBucket, newContainer, s3, sourceOf } from '../helpers/stores';

const MiB = 1024 * 1024;

/** The SDK's listing entry as a ListedBlob: the reference the copier's own listing is held to. */
function sdkListedBlob(item: BlobItem): ListedBlob {
  const p = item.properties;
  const metadata = item.metadata ?? {};
  const isFolder = Object.entries(metadata).some(([k, v]) => k.toLowerCase() === 'hdi_isfolder' && v.toLowerCase() === 'true');
  return {
    name: item.name,
    etag: quotedEtag(p.etag),
    size: p.contentLength ?? 0,
    lastModified: p.lastModified.toISOString(),
    contentMd5: p.contentMD5 && p.contentMD5.length > 0 ? Buffer.from(p.contentMD5).toString('base64') : undefined,
    tags: item.tags && Object.keys(item.tags).length > 0 ? item.tags : undefined,
    kind: p.blobType as BlobKind | undefined,
    accessTier: p.accessTier,
    isDirectoryMarker: isFolder && (p.contentLength ?? 0) === 0,
    isArchived: p.accessTier === 'Archive',
    archiveStatus: p.archiveStatus,
  };
}

describe('Azure source', () => {
  it('lists page by page with continuation, every blob once, with its identity', async () => {
    const container = await newContainer();
    for (let i = 0; i < 7; i++) await uploadBlob(container, { name: `b${i}`, size: i });
    const source = azureSource(sourceOf(container));
    const names: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await source.listPage(token, 3);
      names.push(...page.blobs.map((b) => b.name));
      token = page.continuation;
      pages++;
    } while (token);
    expect(pages).toBe(3);
    expect(names).toEqual(['b0', 'b1', 'b2', 'b3', 'b4', 'b5', 'b6']);
    const first = (await source.listPage(undefined, 1)).blobs[0];
    expect(first).toMatchObject({ name: 'b0', size: 0, etag: expect.stringMatching(/^".+"$/), kind: 'BlockBlob', isArchived: false, isDirectoryMarker: false });
  });

  it('lists exactly what the SDK lists: odd names, kinds, tiers, metadata, tags, markers, page after page', async () => {
    const container = await newContainer();
    const specs: BlobSpec[] = [
      { name: 'a & b <c> "d" \'e\'.txt', size: 10, metadata: { Owner: 'R&D <team>', costCentre: '42' }, tags: { project: 'x + y: z=1', 'cost/centre': '7' } },
      { name: 'ünïcødé/日本語/😀 file.bin', size: 0 },
      { name: ' leading space/+%#?.bin', size: 1, singleShot: false },
      { name: 'page.vhd', size: 1024, kind: 'page' },
      { name: 'log.append', size: 100, kind: 'append', metadata: { Empty: '' } },
      { name: 'cold/archived.bin', size: 5, tier: 'Archive' },
      { name: 'cool.bin', size: 5, tier: 'Cool' },
    ];
    for (const spec of specs) await uploadBlob(container, spec);
    await uploadDirectoryMarker(container, 'a-folder');
    const source = azureSource(sourceOf(container));
    const lean: ListedBlob[] = [];
    let token: string | undefined;
    do {
      const page = await source.listPage(token, 3);
      lean.push(...page.blobs);
      token = page.continuation;
    } while (token);
    const sdk: ListedBlob[] = [];
    for await (const item of container.listBlobsFlat({ includeMetadata: true, includeTags: true })) sdk.push(sdkListedBlob(item));
    expect(sdk).toHaveLength(specs.length + 1);
    expect(lean).toEqual(sdk);
    expect(lean.find((b) => b.name === specs[0].name)).toMatchObject({ tags: specs[0].tags, size: 10, kind: 'BlockBlob' });
    expect(lean.find((b) => b.name === 'a-folder')).toMatchObject({ isDirectoryMarker: true });
    expect(lean.find((b) => b.name === 'cold/archived.bin')).toMatchObject({ isArchived: true, accessTier: 'Archive' });
  });

  it('reads exactly a range, pinned to the ETag', async () => {
    const container = await newContainer();
    await uploadBlob(container, { name: 'r', size: 3 * MiB });
    const source = azureSource(sourceOf(container));
    const [listed] = (await source.listPage(undefined, 10)).blobs;
    const read = await source.read('r', listed.etag, { start: MiB - 1, end: 2 * MiB });
    const want = (await patternBytes('r', 3 * MiB)).subarray(MiB - 1, 2 * MiB + 1);
    expect(read.length).toBe(MiB + 2);
    expect(read.size).toBe(3 * MiB);
    expect(await digestOf(read.body)).toEqual(await digestOf(Readable.from([want])));
  });

  it('reads the whole blob with its headers, metadata (keys as given) and Content-MD5, by shared key and by SAS', async () => {
    const container = await newContainer();
    const headers = {
      blobContentType: 'text/csv; charset=utf-8', blobContentEncoding: 'identity', blobContentLanguage: 'de-CH',
      blobContentDisposition: 'attachment; filename="x y.csv"', blobCacheControl: 'no-cache',
    };
    const name = "dir/odd name +%#?'(1)~ünï.csv";
    await uploadBlob(container, { name, size: 1000, singleShot: true, headers, metadata: { Owner: 'Data Team', costCentre: '42' } });
    const sas = generateBlobSASQueryParameters(
      { containerName: container.containerName, permissions: ContainerSASPermissions.parse('rl'), expiresOn: new Date(Date.now() + 3_600_000) },
      new StorageSharedKeyCredential(emulators().azurite.account, AZURITE_KEY),
    ).toString();
    const bySas = { ...sourceOf(container), credentials: { kind: 'connection-string' as const, connectionString: `BlobEndpoint=${emulators().azurite.endpoint};SharedAccessSignature=${sas}` } };
    const want = await patternBytes(name, 1000);
    for (const source of [azureSource(sourceOf(container)), azureSource(bySas)]) {
      const [listed] = (await source.listPage(undefined, 10)).blobs;
      const read = await source.read(name, listed.etag);
      expect(read).toMatchObject({
        length: 1000, size: 1000, etag: listed.etag, lastModified: listed.lastModified,
        contentMd5: createHash('md5').update(want).digest('base64'),
        metadata: { Owner: 'Data Team', costCentre: '42' },
        contentType: headers.blobContentType, contentEncoding: headers.blobContentEncoding, contentLanguage: headers.blobContentLanguage,
        contentDisposition: headers.blobContentDisposition, cacheControl: headers.blobCacheControl,
      });
      expect(await digestOf(read.body)).toEqual(await digestOf(Readable.from([want])));
    }
    // A SAS without "r" lists but cannot read: a failure of this blob, with the fix.
    const listOnly = generateBlobSASQueryParameters(
      { containerName: container.containerName, permissions: ContainerSASPermissions.parse('l'), expiresOn: new Date(Date.now() + 3_600_000) },
      new StorageSharedKeyCredential(emulators().azurite.account, AZURITE_KEY),
    ).toString();
    const denied = azureSource({ ...bySas, credentials: { kind: 'connection-string', connectionString: `BlobEndpoint=${emulators().azurite.endpoint};SharedAccessSignature=${listOnly}` } });
    const [listed] = (await denied.listPage(undefined, 10)).blobs;
    await expect(denied.read(name, listed.etag)).rejects.toThrow(/Azure refused to read the blob \(403 AuthorizationPermissionMismatch\)/);
  });

  it('says the blob changed when its ETag moved, and archived when it is archived', async () => {
    const container = await newContainer();
    await uploadBlob(container, { name: 'c', size: 10 });
    const source = azureSource(sourceOf(container));
    const [listed] = (await source.listPage(undefined, 10)).blobs;
    await uploadBlob(container, { name: 'c', size: 11 });
    await expect(source.read('c', listed.etag)).rejects.toBeInstanceOf(SourceChangedError);
    await expect(source.properties('c', listed.etag)).rejects.toBeInstanceOf(SourceChangedError);
    await uploadBlob(container, { name: 'a', size: 10, tier: 'Archive' });
    const archived = (await source.listPage(undefined, 10)).blobs.find((b) => b.name === 'a')!;
    expect(archived.isArchived).toBe(true);
    await expect(source.read('a', archived.etag)).rejects.toBeInstanceOf(BlobFailure);
  });

  it('turns a missing container into a one-line configuration error', async () => {
    const container = await newContainer();
    await container.delete();
    await expect(azureSource(sourceOf(container)).check()).rejects.toThrow(/^Azure container ".+" in storage account "devstoreaccount1" does not exist: check the container name, or create it$/);
  });
});

describe('S3 sink', () => {
  const client = s3();
  const sinkFor = (bucket: string) => s3Sink({ bucket, endpoint: emulators().s3Endpoint }, client);

  it('writes atomically with a checksum, and lists after a key in byte order', async () => {
    const bucket = await newBucket(client);
    const sink = sinkFor(bucket);
    for (const key of ['b', 'a', 'c/d', 'c/e']) {
      const body = Readable.from([Buffer.from(key)]);
      const out = await sink.put(key, body, { metadata: { k: 'v' } }, { length: key.length });
      expect(out.checksumCrc32c).toMatch(/^[A-Za-z0-9+/]+=*$/);
    }
    const listed = await sink.list('', 'a', 2);
    expect(listed.objects.map((o) => o.key)).toEqual(['b', 'c/d']);
    expect(listed.truncated).toBe(true);
    // Keys with characters XML cannot carry (a control character) or that URL encoding changes come back exactly.
    const odd = ['x/ctl\u0001char', 'x/a b+c%20d', 'x/ünï', 'x/amp&lt;'];
    for (const key of odd) await sink.put(key, Buffer.from('1'), { metadata: {} }, { length: 1 });
    expect((await sink.list('x/', undefined, 10)).objects.map((o) => o.key).sort()).toEqual([...odd].sort());
    expect(await sink.head('c/e')).toMatchObject({ key: 'c/e', size: 3, metadata: { k: 'v' } });
    expect(await sink.head('nope')).toBeUndefined();
  });

  it('runs a multipart upload: parts, listing, completion, and answers for a vanished upload', async () => {
    const bucket = await newBucket(client);
    const sink = sinkFor(bucket);
    const uploadId = await sink.createUpload('m', { metadata: {} });
    expect(await sink.listUploads('m')).toEqual([{ uploadId, initiated: expect.any(String) }]);
    const one = await patternBytes('p1', 5 * MiB);
    await sink.uploadPart('m', uploadId, 2, Readable.from([Buffer.from('tail')]), 4);
    await sink.uploadPart('m', uploadId, 1, Readable.from([one]), one.length);
    const parts = await sink.listParts('m', uploadId);
    expect(parts?.map((p) => [p.partNumber, p.size])).toEqual([[1, 5 * MiB], [2, 4]]);
    expect(await sink.complete('m', uploadId, parts!)).toBe('completed');
    expect(await sink.head('m')).toMatchObject({ size: 5 * MiB + 4 });
    expect(await sink.listParts('m', uploadId)).toBeUndefined();
    // Completing it again is answered as done (moto answers 200 here; S3 may answer NoSuchUpload, which the sink
    // reports as 'missing' and the recombinator then looks at the object).
    expect(await sink.complete('m', uploadId, parts!)).toBe('completed');
    await expect(sink.uploadPart('m', uploadId, 3, Readable.from([Buffer.from('late')]), 4)).rejects.toMatchObject({ name: 'NoSuchUpload' });
  });

  it('aborts an upload, and abort is idempotent', async () => {
    const bucket = await newBucket(client);
    const sink = sinkFor(bucket);
    const uploadId = await sink.createUpload('z', { metadata: {} });
    await sink.abort('z', uploadId);
    await sink.abort('z', uploadId);
    expect(await sink.listUploads('z')).toEqual([]);
  });

  it('claims a state object only once', async () => {
    const bucket = await newBucket(client);
    const sink = sinkFor(bucket);
    expect(await sink.putJson('.azs3copy-state/x.json', { a: 1 }, { ifAbsent: true })).toBe(true);
    expect(await sink.putJson('.azs3copy-state/x.json', { a: 2 }, { ifAbsent: true })).toBe(false);
    expect(await sink.getJson('.azs3copy-state/x.json')).toEqual({ a: 1 });
    expect(await sink.getJson('.azs3copy-state/missing.json')).toBeUndefined();
  });

  it('turns a missing bucket into a one-line configuration error', async () => {
    await expect(sinkFor('no-such-bucket-here').check()).rejects.toThrow(/^S3 bucket "no-such-bucket-here" does not exist: create it, or check the bucket name$/);
  });
});
