/**
 * List Blobs as one HTTP request per page, read by a small parser made for this one
 * answer. find-blobs lists every blob of the container on every run (millions, for
 * a migration); through the SDK a page of 5,000 costs about 0.9 s of CPU in its XML
 * parser and deserializer, most of a listing's time. The answer's XML is regular:
 * elements and text, with attributes only on Name (Encoded="true").
 */
import { textOf } from './http-exchange';
import type { ContainerRequester } from './azure-get';
import type { BlobKind, ListPage, ListedBlob } from './types';

interface Element {
  name: string;
  attributes: string;
  children: Element[];
  text: string;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

export function decodeXmlText(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);/g, (whole, entity: string) => {
    if (entity[0] === '#') {
      const code = entity[1] === 'x' ? parseInt(entity.slice(2), 16) : parseInt(entity.slice(1), 10);
      return String.fromCodePoint(code);
    }
    return ENTITIES[entity] ?? whole;
  });
}

/**
 * Elements and their text; a declaration, comment or CDATA-free document as Azure writes it. An element
 * that `take` takes as it closes is handed over and left out of the tree.
 */
export function parseXmlTree(xml: string, take?: (element: Element, parent: Element) => boolean): Element {
  const root: Element = { name: '', attributes: '', children: [], text: '' };
  const stack: Element[] = [root];
  const token = /<(\/?)([^\s/>?!]+)([^>]*?)(\/?)>|<[?!][^>]*>|([^<]+)/g;
  for (let m = token.exec(xml); m !== null; m = token.exec(xml)) {
    const [, closing, name, attributes, selfClosing, text] = m;
    const top = stack[stack.length - 1];
    if (text !== undefined) {
      top.text += text;
    } else if (name === undefined) {
      continue; // <?xml ...?>
    } else if (closing) {
      if (top.name !== name) throw new Error(`malformed listing: </${name}> closes <${top.name}>`);
      stack.pop();
      const parent = stack[stack.length - 1];
      if (take?.(top, parent)) parent.children.pop();
    } else {
      const element: Element = { name, attributes, children: [], text: '' };
      top.children.push(element);
      if (!selfClosing) stack.push(element);
    }
  }
  if (stack.length !== 1) throw new Error('malformed listing: the answer ends inside an element');
  return root;
}

/** Listings give an ETag bare, reads give it quoted; one form, so copies of a version can be recognised. */
export function quotedEtag(etag: string): string {
  return etag.startsWith('"') ? etag : `"${etag}"`;
}

const child = (element: Element | undefined, name: string) => element?.children.find((c) => c.name === name);
const textIn = (element: Element | undefined, name: string) => {
  const c = child(element, name);
  return c ? decodeXmlText(c.text) : undefined;
};

/** A blob's name; one holding characters XML cannot carry comes percent-encoded, marked Encoded="true". */
function nameOf(element: Element): string {
  const name = child(element, 'Name')!;
  const text = decodeXmlText(name.text);
  return /Encoded\s*=\s*"true"/i.test(name.attributes) ? decodeURIComponent(text) : text;
}

export function listedBlobOf(element: Element): ListedBlob {
  const properties = child(element, 'Properties');
  const metadata: Record<string, string> = {};
  for (const m of child(element, 'Metadata')?.children ?? []) metadata[m.name] = decodeXmlText(m.text);
  const tags: Record<string, string> = {};
  for (const tag of child(child(element, 'Tags'), 'TagSet')?.children ?? []) tags[textIn(tag, 'Key') ?? ''] = textIn(tag, 'Value') ?? '';
  const size = Number(textIn(properties, 'Content-Length') ?? 0);
  const accessTier = textIn(properties, 'AccessTier');
  const isFolder = Object.entries(metadata).some(([k, v]) => k.toLowerCase() === 'hdi_isfolder' && v.toLowerCase() === 'true');
  return {
    name: nameOf(element),
    etag: quotedEtag(textIn(properties, 'Etag') ?? ''),
    size,
    lastModified: new Date(textIn(properties, 'Last-Modified') ?? 0).toISOString(),
    contentMd5: textIn(properties, 'Content-MD5') || undefined,
    tags: Object.keys(tags).length > 0 ? tags : undefined,
    kind: textIn(properties, 'BlobType') as BlobKind | undefined,
    accessTier,
    isDirectoryMarker: isFolder && size === 0,
    isArchived: accessTier === 'Archive',
    archiveStatus: textIn(properties, 'ArchiveStatus') || undefined,
  };
}

/**
 * The blobs of one List Blobs answer, and the marker of the next page (none after the last). Each blob
 * is read as its element closes: the tree of a whole page of 5,000 holds about 12 MiB at once, long
 * enough to reach V8's old generation; a blob's is a few KiB, garbage at once.
 */
export function parseListing(xml: string): ListPage {
  const blobs: ListedBlob[] = [];
  const tree = parseXmlTree(xml, (element, parent) => {
    if (element.name !== 'Blob' || parent.name !== 'Blobs') return false;
    blobs.push(listedBlobOf(element));
    return true;
  });
  const results = child(tree, 'EnumerationResults');
  if (!results) throw new Error('malformed listing: no EnumerationResults');
  return { blobs, continuation: textIn(results, 'NextMarker') || undefined };
}

/** One page of the container's blobs, with metadata (and index tags when asked). */
export async function listBlobsPage(
  requester: ContainerRequester,
  page: { continuation?: string; maxPageSize: number; includeTags: boolean; prefix?: string },
): Promise<ListPage> {
  const query: Record<string, string> = {
    restype: 'container',
    comp: 'list',
    include: page.includeTags ? 'metadata,tags' : 'metadata',
    maxresults: String(page.maxPageSize),
  };
  if (page.continuation) query.marker = page.continuation;
  if (page.prefix !== undefined) query.prefix = page.prefix;
  const answer = await requester.get('List Blobs', '', query);
  return parseListing(await textOf(answer, Number.POSITIVE_INFINITY));
}
