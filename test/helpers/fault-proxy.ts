/**
 * A reverse proxy that sits between the chain and one emulator (Azurite or moto)
 * and misbehaves the way the real services do: 503 and 500 answers with each
 * service's own error body, connections cut in the middle of a response body or
 * of a request body, slow answers, and, on request, permission refusals. The
 * chain talks to the proxy's endpoint as if it were the emulator.
 *
 * Faults are drawn from a seeded generator, one draw per request. Requests run
 * concurrently, so which request gets which fault still varies between runs; the
 * rates and the seed do not. Bodies are streamed through, never held whole.
 * Loopback only, and bounded: a capped number of connections, a timeout upstream.
 */
import { Agent, createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { seededRandom } from '../../lambdas/local/bus';

export type Service = 'azure' | 's3';

/** What the proxy can do to one request. */
export type FaultKind = 'busy' | 'internal' | 'resetResponse' | 'resetRequest' | 'slow' | 'denied';

/** Fraction of requests given each fault (drawn in this order; they should add up to less than 1). */
export type FaultRates = Partial<Record<Exclude<FaultKind, 'denied'>, number>>;

export interface ProxiedRequest {
  method: string;
  /** The path as sent, still URL-encoded. */
  path: string;
  /** The path decoded: for S3 `/bucket/key`, for Azure `/account/container/blob`. */
  decodedPath: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
}

export interface FaultProxyOptions {
  /** The emulator's endpoint, e.g. http://127.0.0.1:10000/devstoreaccount1; the proxy keeps its path. */
  target: string;
  service: Service;
  seed?: number;
  rates?: FaultRates;
  /** Delay of a slow answer, drawn between these bounds. @default [200, 1200] */
  slowMs?: [number, number];
  /** Decide a request's fault outright (over the random draw); undefined leaves it to the draw. */
  rule?: (request: ProxiedRequest) => FaultKind | 'pass' | undefined;
  /** Sees every request before anything is done to it (for counting requests by kind). */
  onRequest?: (request: ProxiedRequest) => void;
  /** Connections served at once. @default 256 */
  maxConnections?: number;
}

export type FaultCounts = Record<FaultKind | 'requests', number>;

export interface FaultProxy {
  /** The target's endpoint with the proxy's origin: hand this to the chain. */
  endpoint: string;
  counts: FaultCounts;
  setRates(rates: FaultRates): void;
  setRule(rule: FaultProxyOptions['rule']): void;
  stop(): Promise<void>;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'expect', 'transfer-encoding']);

const ERRORS: Record<Service, Record<'busy' | 'internal' | 'denied', { status: number; code: string; message: string }>> = {
  azure: {
    busy: { status: 503, code: 'ServerBusy', message: 'The server is busy.' },
    internal: { status: 500, code: 'OperationTimedOut', message: 'Operation could not be completed within the specified time.' },
    denied: { status: 403, code: 'AuthorizationPermissionMismatch', message: 'This request is not authorized to perform this operation using this permission.' },
  },
  s3: {
    busy: { status: 503, code: 'SlowDown', message: 'Please reduce your request rate.' },
    internal: { status: 500, code: 'InternalError', message: 'We encountered an internal error. Please try again.' },
    denied: { status: 403, code: 'AccessDenied', message: 'Access Denied' },
  },
};

function errorBody(service: Service, code: string, message: string, requestId: string): string {
  if (service === 'azure') {
    return `<?xml version="1.0" encoding="utf-8"?><Error><Code>${code}</Code><Message>${message}\nRequestId:${requestId}\nTime:${new Date().toISOString()}</Message></Error>`;
  }
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>${requestId}</RequestId></Error>`;
}

function isLoopback(hostname: string): boolean {
  return hostname === '127.0.0.1' || hostname === 'localhost' || hostname === '[::1]';
}

export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const target = new URL(options.target);
  if (!isLoopback(target.hostname) || target.protocol !== 'http:') {
    throw new Error(`the fault proxy only fronts plain HTTP on loopback, not ${target.origin}`);
  }
  const random = seededRandom(options.seed ?? 1);
  let rates: FaultRates = { ...options.rates };
  let rule = options.rule;
  const [slowMin, slowMax] = options.slowMs ?? [200, 1200];
  const counts: FaultCounts = { requests: 0, busy: 0, internal: 0, resetResponse: 0, resetRequest: 0, slow: 0, denied: 0 };
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const sockets = new Set<Socket>();
  let served = 0;

  const draw = (): FaultKind | undefined => {
    let r = random();
    for (const kind of ['busy', 'internal', 'resetResponse', 'resetRequest', 'slow'] as const) {
      const rate = rates[kind] ?? 0;
      if (r < rate) return kind;
      r -= rate;
    }
    return undefined;
  };

  const hasBody = (req: IncomingMessage) =>
    Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;

  /** Answer with the service's error. A client waiting on 100-continue never sent its body: close after. */
  const refuse = (req: IncomingMessage, res: ServerResponse, kind: 'busy' | 'internal' | 'denied', expectsContinue: boolean) => {
    counts[kind]++;
    const { status, code, message } = ERRORS[options.service][kind];
    const requestId = `fault-${++served}`;
    const body = req.method === 'HEAD' ? '' : errorBody(options.service, code, message, requestId);
    const headers: Record<string, string | number> = {
      'content-type': 'application/xml',
      'content-length': Buffer.byteLength(body),
      ...(options.service === 'azure' ? { 'x-ms-error-code': code, 'x-ms-request-id': requestId } : { 'x-amz-request-id': requestId }),
    };
    if (expectsContinue) headers.connection = 'close';
    const send = () => res.writeHead(status, headers).end(body);
    if (expectsContinue || !hasBody(req)) return send();
    // Read the body the client is sending (and drop it), so the answer arrives as an answer, not a broken pipe.
    req.on('end', send).resume();
  };

  const forward = (req: IncomingMessage, res: ServerResponse, kind: FaultKind | undefined, expectsContinue: boolean) => {
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = value;
    }
    const upstream = httpRequest({
      host: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent, timeout: 60_000,
    });
    let cut = false;
    const cutClient = () => {
      cut = true;
      upstream.destroy();
      req.socket.destroy();
    };
    upstream.on('timeout', () => upstream.destroy(new Error('upstream timed out')));
    upstream.on('error', () => {
      if (cut) return;
      if (!res.headersSent) res.writeHead(502, { connection: 'close' }).end();
      else req.socket.destroy();
    });
    // The client went away (its own timeout, or a cut): stop the upstream request too.
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });

    upstream.on('response', (answer) => {
      const out: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(answer.headers)) {
        if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
      }
      if (kind !== 'resetResponse') {
        res.writeHead(answer.statusCode ?? 502, answer.statusMessage, out);
        answer.pipe(res);
        return;
      }
      // The store did the work; the client never hears the whole answer.
      counts.resetResponse++;
      const length = Number(answer.headers['content-length'] ?? 0);
      if (req.method === 'HEAD' || length === 0) {
        answer.resume();
        return cutClient();
      }
      const cutAt = Math.floor(random() * length);
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, out);
      let passed = 0;
      answer.on('data', (chunk: Buffer) => {
        if (passed < 0) return;
        const room = cutAt - passed;
        if (chunk.length < room) {
          passed += chunk.length;
          if (!res.write(chunk)) answer.pause(), res.once('drain', () => answer.resume());
          return;
        }
        passed = -1;
        answer.pause();
        res.write(chunk.subarray(0, room), () => cutClient());
      });
    });

    if (expectsContinue) res.writeContinue();
    if (kind !== 'resetRequest' || !hasBody(req)) {
      req.pipe(upstream);
      return;
    }
    // Cut the connection part way through the body the client is sending.
    counts.resetRequest++;
    const length = Number(req.headers['content-length'] ?? 0);
    const cutAt = length > 0 ? Math.floor(random() * length) : 1;
    let passed = 0;
    req.on('data', (chunk: Buffer) => {
      if (passed < 0) return;
      if (passed + chunk.length >= cutAt) {
        passed = -1;
        return cutClient();
      }
      passed += chunk.length;
      if (!upstream.write(chunk)) req.pause(), upstream.once('drain', () => req.resume());
    });
    req.on('end', () => upstream.end());
  };

  const handle = (req: IncomingMessage, res: ServerResponse, expectsContinue: boolean) => {
    counts.requests++;
    const url = new URL(req.url ?? '/', 'http://proxy');
    const info: ProxiedRequest = {
      method: req.method ?? 'GET', path: url.pathname, decodedPath: safeDecode(url.pathname), query: url.searchParams, headers: req.headers,
    };
    options.onRequest?.(info);
    const ruled = rule?.(info);
    const kind = ruled === 'pass' ? undefined : (ruled ?? draw());
    if (kind === 'busy' || kind === 'internal' || kind === 'denied') return refuse(req, res, kind, expectsContinue);
    if (kind === 'slow') {
      counts.slow++;
      const delay = slowMin + Math.floor(random() * (slowMax - slowMin));
      setTimeout(() => {
        // A client that gave up while we dawdled gets nothing, and the store never hears of it.
        if (!req.socket.destroyed) forward(req, res, undefined, expectsContinue);
      }, delay);
      return;
    }
    forward(req, res, kind, expectsContinue);
  };

  const server = createServer((req, res) => handle(req, res, false));
  server.on('checkContinue', (req, res) => handle(req, res, true));
  server.maxConnections = options.maxConnections ?? 256;
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    // A cut connection is the point, not a problem.
    socket.on('error', () => undefined);
  });
  server.on('clientError', (_error, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as { port: number };
  const path = target.pathname === '/' ? '' : target.pathname.replace(/\/$/, '');

  return {
    endpoint: `http://127.0.0.1:${port}${path}`,
    counts,
    setRates: (next) => void (rates = { ...next }),
    setRule: (next) => void (rule = next),
    async stop() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      agent.destroy();
      await closed;
    },
  };
}

function safeDecode(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

/** The connection string of the same account, reached through the proxy. */
export function proxiedConnectionString(connectionString: string, endpoint: string): string {
  return connectionString.replace(/BlobEndpoint=[^;]*/i, `BlobEndpoint=${endpoint}`);
}
