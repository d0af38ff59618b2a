/**
 * The List Blobs reader, on answers Azurite does not give: a percent-encoded name
 * (Encoded="true", for characters XML cannot carry), numeric character references,
 * empty and self-closing elements, a metadata key that is also an element name of the
 * listing, and a broken answer.
 */
import { describe, expect, it } from 'vitest';
import { decodeXmlText, parseListing } from '../../lambdas/core/stores/azure-list';

const blob = (name: string, extra = '') =>
  `<Blob>${name}<Properties><Last-Modified>Mon, 23 Nov 2026 06:07:03 GMT</Last-Modified><Etag>0x8DC1</Etag>` +
  `<Content-Length>12</Content-Length><Content-Type /><Content-MD5 /><BlobType>BlockBlob</BlobType><AccessTier>Hot</AccessTier></Properties>${extra}</Blob>`;

describe('List Blobs reader', () => {
  it('reads names, identity, metadata, tags and the next marker', () => {
    const xml = `<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="https://a.blob.core.windows.net/" ContainerName="c">` +
      `<MaxResults>2</MaxResults><Blobs>` +
      blob('<Name>a &amp; &lt;b&gt; &#x1F600; &#233;</Name>', '<Metadata><Blob>not a blob</Blob><Name>n</Name><hdi_isfolder>true</hdi_isfolder></Metadata>' +
        '<Tags><TagSet><Tag><Key>k 1</Key><Value>v=1</Value></Tag></TagSet></Tags>') +
      blob('<Name Encoded="true">bad%EF%BF%BEchar</Name>', '<Metadata /><OrMetadata />') +
      `</Blobs><NextMarker>2!64!MDAwMDIzIWJsb2ItMDA=</NextMarker></EnumerationResults>`;
    const page = parseListing(xml);
    expect(page.continuation).toBe('2!64!MDAwMDIzIWJsb2ItMDA=');
    expect(page.blobs).toEqual([
      {
        name: 'a & <b> 😀 é', etag: '"0x8DC1"', size: 12, lastModified: '2026-11-23T06:07:03.000Z', contentMd5: undefined,
        tags: { 'k 1': 'v=1' }, kind: 'BlockBlob', accessTier: 'Hot', isDirectoryMarker: false, isArchived: false,
      },
      {
        name: 'bad\uFFFEchar', etag: '"0x8DC1"', size: 12, lastModified: '2026-11-23T06:07:03.000Z', contentMd5: undefined,
        tags: undefined, kind: 'BlockBlob', accessTier: 'Hot', isDirectoryMarker: false, isArchived: false,
      },
    ]);
  });

  it('ends the listing when NextMarker is empty, and reads an empty page', () => {
    expect(parseListing('<EnumerationResults><Blobs /><NextMarker /></EnumerationResults>')).toEqual({ blobs: [], continuation: undefined });
    expect(parseListing('<EnumerationResults><Blobs></Blobs><NextMarker></NextMarker></EnumerationResults>').continuation).toBeUndefined();
  });

  it('refuses a broken answer instead of listing part of it', () => {
    expect(() => parseListing('<EnumerationResults><Blobs><Blob><Name>x</Name></Blobs></EnumerationResults>')).toThrow(/malformed listing/);
    expect(() => parseListing('<EnumerationResults><Blobs>')).toThrow(/malformed listing/);
    expect(() => parseListing('<Error><Code>X</Code></Error>')).toThrow(/no EnumerationResults/);
  });

  it('decodes the five XML entities and character references, and leaves other ampersands alone', () => {
    expect(decodeXmlText('&amp;&lt;&gt;&quot;&apos;&#65;&#x42;&unknown;')).toBe('&<>"\'AB&unknown;');
  });
});
