/**
 * Function URLs as Lambda serves them: an HTTPS request at the URL becomes a
 * payload format 2.0 event for the function, invoked synchronously, and the
 * handler's answer becomes the HTTP response (a `statusCode` object as given;
 * any other value as a 200 with the value as JSON; a function error as a 502).
 * Only auth NONE is emulated: the box signs no request, and a URL with AWS_IAM
 * auth refuses every one with 403, as it would an unsigned request.
 */
import { randomUUID } from 'node:crypto';

/** A function URL of the template, as the deployment collected it. */
export interface FunctionUrlSpec {
  logicalId: string;
  /** `https://<id>.lambda-url.<region>.on.aws/` */
  url: string;
  functionArn: string;
  authType: 'NONE' | 'AWS_IAM';
}

/** A request to a function URL, as a caller such as Event Grid sends it. */
export interface UrlRequest {
  /** @default 'POST' */
  method?: string;
  headers?: Record<string, string>;
  /** A string is sent as it is; anything else as JSON (with content-type application/json). */
  body?: unknown;
}

export interface UrlResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
  /** The body as JSON, when it is JSON. */
  json?: unknown;
}

/** The payload format 2.0 event Lambda hands the function for a request at its URL. */
export function functionUrlEvent(spec: FunctionUrlSpec, target: URL, request: UrlRequest, account: string): Record<string, unknown> {
  const method = (request.method ?? 'POST').toUpperCase();
  const json = request.body !== undefined && typeof request.body !== 'string';
  const body = request.body === undefined ? undefined : json ? JSON.stringify(request.body) : (request.body as string);
  const headers: Record<string, string> = {
    host: target.host,
    'user-agent': 'box',
    'x-forwarded-proto': 'https',
    ...(json ? { 'content-type': 'application/json' } : {}),
    ...Object.fromEntries(Object.entries(request.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v])),
  };
  const query: Record<string, string> = {};
  // Lambda joins repeated parameters with commas.
  for (const [k, v] of target.searchParams) query[k] = k in query ? `${query[k]},${v}` : v;
  const now = new Date();
  const apiId = target.hostname.split('.')[0];
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: target.pathname,
    rawQueryString: target.search.replace(/^\?/, ''),
    headers,
    ...(Object.keys(query).length ? { queryStringParameters: query } : {}),
    requestContext: {
      accountId: spec.authType === 'NONE' ? 'anonymous' : account,
      apiId,
      domainName: target.hostname,
      domainPrefix: apiId,
      http: { method, path: target.pathname, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: headers['user-agent'] },
      requestId: randomUUID(),
      routeKey: '$default',
      stage: '$default',
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    ...(body !== undefined ? { body, isBase64Encoded: false } : { isBase64Encoded: false }),
  };
}

/** The HTTP response Lambda makes of the handler's answer (payload format 2.0). */
export function urlResponse(outcome: { ok: true; payload: unknown } | { ok: false }): UrlResponse {
  if (!outcome.ok) return withJson({ statusCode: 502, headers: { 'content-type': 'application/json' }, body: '{"Message":"Internal Server Error"}' });
  const payload = outcome.payload as { statusCode?: unknown; headers?: Record<string, string>; body?: unknown; isBase64Encoded?: boolean } | null;
  if (payload && typeof payload === 'object' && typeof payload.statusCode === 'number') {
    const raw = payload.body === undefined ? '' : String(payload.body);
    const body = payload.isBase64Encoded ? Buffer.from(raw, 'base64').toString('utf8') : raw;
    const headers = Object.fromEntries(Object.entries(payload.headers ?? {}).map(([k, v]) => [k.toLowerCase(), String(v)]));
    return withJson({ statusCode: payload.statusCode, headers, body });
  }
  return withJson({ statusCode: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload ?? null) });
}

function withJson(response: UrlResponse): UrlResponse {
  try {
    return response.body ? { ...response, json: JSON.parse(response.body) } : response;
  } catch {
    return response;
  }
}

/** A URL as AWS makes one: 32 lowercase letters and digits, then the region's domain. */
export function functionUrlOf(region: string): string {
  const id = randomUUID().replace(/-/g, '');
  return `https://${id}.lambda-url.${region}.on.aws/`;
}
