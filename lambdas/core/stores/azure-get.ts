/**
 * Signed GETs to a container, without the SDK's pipeline: Get Blob (every read of
 * the copy: a whole small blob, a part's range, a resumed remainder) and, through
 * azure-list.ts, List Blobs. Through the SDK each read costs about 1.5 ms of CPU in
 * its pipeline and serializers, more than the request itself. The answer's headers
 * are read directly; its body is the socket's stream.
 *
 * Authorization is whatever the BlobServiceClient was built with: a shared key
 * (signed here exactly as the SDK's own policy signs), a SAS (already in its URL),
 * or a token credential (a bearer token, fetched through the credential and kept
 * until shortly before it expires). Retries as the SDK's pipeline was set to:
 * throttling, 5xx and dropped connections, with capped backoff.
 */
import { StorageSharedKeyCredential, type BlobServiceClient } from '@azure/storage-blob';
import type { AccessToken, TokenCredential } from '@azure/core-auth';
import { isTransient, withRetry } from '../retry';
import { httpError, originOf, textOf, xmlErrorFields, type Answer, type HttpExchange } from './http-exchange';

/** A REST version every Azure region and Azurite (with --skipApiVersionCheck) serve, with all the fields read here. */
export const AZURE_API_VERSION = '2024-11-04';
const STORAGE_SCOPE = 'https://storage.azure.com/.default';
/** A token is fetched again when less than this is left of it. */
const TOKEN_REFRESH_MARGIN_MS = 5 * 60_000;

export interface GetOptions {
  /** First and last byte, inclusive; `end` undefined reads to the end. */
  range?: { start: number; end?: number };
  /** The read fails with 412 if the blob's ETag is no longer this. */
  ifMatch?: string;
}

/** The SDK's own blob-name escaping: each path segment URI-encoded, slashes kept. */
export function escapeBlobName(name: string): string {
  return name.split('/').map(encodeURIComponent).join('/');
}

function isTokenCredential(credential: unknown): credential is TokenCredential {
  return typeof (credential as TokenCredential | undefined)?.getToken === 'function';
}

/** The string Azure's Shared Key scheme signs (https://learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key). */
export function sharedKeyStringToSign(
  method: string, account: string, path: string, headers: Record<string, string>, query: Record<string, string> = {},
): string {
  const h = (name: string) => headers[name] ?? '';
  const msHeaders = Object.keys(headers)
    .filter((name) => name.startsWith('x-ms-'))
    .sort()
    .map((name) => `${name}:${headers[name].trimStart()}\n`)
    .join('');
  const length = h('content-length') === '0' ? '' : h('content-length');
  return [
    method, h('content-language'), h('content-encoding'), length, h('content-md5'), h('content-type'), h('date'),
    h('if-modified-since'), h('if-match'), h('if-none-match'), h('if-unmodified-since'), h('range'),
  ].join('\n') + `\n${msHeaders}/${account}${path}` + Object.keys(query)
    .map((key) => [key.toLowerCase(), query[key]] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, value]) => `\n${key}:${value}`)
    .join('');
}

/**
 * One token for everything that talks to the account: the SDK's pipeline (listing) and
 * the reads here each cache tokens their own way; in front of both, this asks the
 * credential once, again only when less than TOKEN_REFRESH_MARGIN_MS of it is left,
 * and never twice at once.
 */
export function sharedTokenCredential(credential: TokenCredential): TokenCredential {
  const tokens = new Map<string, Promise<AccessToken>>();
  return {
    async getToken(scopes, options) {
      const key = [scopes].flat().join(' ');
      const cached = tokens.get(key);
      const current = cached && (await cached.catch(() => undefined));
      if (current && current.expiresOnTimestamp - Date.now() >= TOKEN_REFRESH_MARGIN_MS) return current;
      // Another caller may have started the next fetch while this one waited: share it.
      const replaced = tokens.get(key);
      if (replaced && replaced !== cached) return replaced;
      const fetching = credential.getToken(scopes, options).then((token) => {
        if (!token) throw httpError('the credential returned no token for Azure Storage', { code: 'CredentialUnavailableError' });
        return token;
      });
      tokens.set(key, fetching);
      fetching.catch(() => tokens.get(key) === fetching && tokens.delete(key));
      return fetching;
    },
  };
}

/**
 * Signed GETs to one container, each retried as the SDK's pipeline was set to
 * (throttling, 5xx, dropped connections, with capped backoff). A failure carries the
 * status and the service's error code where the rest of the code reads them.
 */
export function containerRequester(service: BlobServiceClient, container: string, exchange: HttpExchange, options: { maxTries?: number } = {}) {
  const url = new URL(service.url);
  const origin = originOf(url);
  const basePath = url.pathname.replace(/\/$/, '');
  // A SAS rides in the service URL's query; every request carries it.
  const sas = url.search.slice(1);
  const credential = service.credential;

  async function once(what: string, resource: string, query: Record<string, string>, extraHeaders: Record<string, string>): Promise<Answer> {
    const path = `${basePath}/${container}${resource}`;
    const headers: Record<string, string> = { ...extraHeaders, 'x-ms-version': AZURE_API_VERSION, 'x-ms-date': new Date().toUTCString() };
    if (credential instanceof StorageSharedKeyCredential) {
      const signature = credential.computeHMACSHA256(sharedKeyStringToSign('GET', credential.accountName, path, headers, query));
      headers.authorization = `SharedKey ${credential.accountName}:${signature}`;
    } else if (isTokenCredential(credential)) {
      const token = await credential.getToken(STORAGE_SCOPE);
      if (!token) throw httpError('the credential returned no token for Azure Storage', { code: 'CredentialUnavailableError' });
      headers.authorization = `Bearer ${token.token}`;
    }
    const search = [new URLSearchParams(query).toString().replace(/\+/g, '%20'), sas].filter(Boolean).join('&');
    const answer = await exchange.send(origin, 'GET', search ? `${path}?${search}` : path, headers);
    if (answer.status === 200 || answer.status === 206) return answer;
    const headerCode = answer.headers['x-ms-error-code'];
    const fields = xmlErrorFields(await textOf(answer));
    const code = (typeof headerCode === 'string' ? headerCode : undefined) ?? fields.code;
    throw Object.assign(httpError(fields.message ?? `Azure answered ${answer.status}${code ? ` ${code}` : ''} to ${what}`, { status: answer.status, code }), {
      name: 'RestError',
      details: { errorCode: code },
    });
  }

  return {
    /** GET `resource` (after the container: '' or '/' + escaped blob name); the answer's body is unread. */
    get(what: string, resource: string, query: Record<string, string> = {}, headers: Record<string, string> = {}): Promise<Answer> {
      return withRetry(() => once(what, resource, query, headers), {
        attempts: options.maxTries ?? 6, baseDelayMs: 500, maxDelayMs: 30_000, isRetryable: isTransient,
      });
    },
  };
}

export type ContainerRequester = ReturnType<typeof containerRequester>;

/** Open a read of a blob (or a range of it), pinned to an ETag when given. */
export function getBlob(requester: ContainerRequester, name: string, get: GetOptions = {}): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (get.ifMatch) headers['if-match'] = get.ifMatch;
  if (get.range) headers['x-ms-range'] = `bytes=${get.range.start}-${get.range.end ?? ''}`;
  return requester.get('Get Blob', `/${escapeBlobName(name)}`, {}, headers);
}

/** A header of the answer as one string (or undefined). */
export function headerOf(answer: Answer, name: string): string | undefined {
  const value = answer.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** x-ms-meta-* headers as metadata, keys in the case the blob's owner gave them. */
export function metadataOf(answer: Answer): Record<string, string> {
  const metadata: Record<string, string> = {};
  const raw = answer.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (raw[i].length > 10 && raw[i].toLowerCase().startsWith('x-ms-meta-')) metadata[raw[i].slice(10)] = raw[i + 1];
  }
  return metadata;
}
