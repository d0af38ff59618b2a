/**
 * One HTTP request and its answer, with nothing else on the way: the small-blob
 * path's GET from Azure and PUT to S3 go through here rather than through the two
 * SDKs, whose layers (middleware, policies, serializers, endpoint rules) cost about
 * 4 ms of CPU per blob, several times the work of the requests themselves, on a
 * path that makes two requests per blob and millions of blobs per migration.
 *
 * Connections are kept alive and shared per origin. A request that gets no answer,
 * or whose answer stalls, in `idleTimeoutMs` fails with ETIMEDOUT (transient).
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

export interface Origin {
  protocol: 'http:' | 'https:';
  hostname: string;
  port?: number;
  /** The Host header: hostname, with the port when it is not the protocol's default. */
  host: string;
}

export function originOf(url: URL): Origin {
  const protocol = url.protocol === 'https:' ? 'https:' : 'http:';
  return { protocol, hostname: url.hostname, port: url.port ? Number(url.port) : undefined, host: url.host };
}

export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  /** Header names as the server wrote them, alternating with their values (metadata keeps its case here). */
  rawHeaders: string[];
  body: IncomingMessage;
}

export interface ExchangeOptions {
  maxSockets?: number;
  idleTimeoutMs?: number;
}

/** An error with the shape the rest of the code reads (statusOf, codeOf, isTransient). */
export function httpError(message: string, fields: { status?: number; code?: string; cause?: unknown }): Error {
  return Object.assign(new Error(message, { cause: fields.cause }), {
    name: fields.code ?? 'HttpError',
    code: fields.code,
    statusCode: fields.status,
  });
}

export function httpExchange(options: ExchangeOptions = {}) {
  const idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
  const agents = {
    'http:': new HttpAgent({ keepAlive: true, maxSockets: options.maxSockets ?? 64 }),
    'https:': new HttpsAgent({ keepAlive: true, maxSockets: options.maxSockets ?? 64 }),
  };

  function send(origin: Origin, method: string, path: string, headers: Record<string, string>, body?: Buffer): Promise<Answer> {
    return new Promise<Answer>((resolve, reject) => {
      const request = (origin.protocol === 'https:' ? httpsRequest : httpRequest)(
        { agent: agents[origin.protocol], method, hostname: origin.hostname, port: origin.port, path, headers },
        (response) =>
          resolve({ status: response.statusCode ?? 0, headers: response.headers, rawHeaders: response.rawHeaders, body: response }),
      );
      // Idle time on the socket, before the answer or in the middle of its body: either way the request (and
      // with it a body being read, which then fails as cut) is given up as a transient failure.
      request.setTimeout(idleTimeoutMs, () => request.destroy(httpError(`no data for ${idleTimeoutMs} ms`, { code: 'ETIMEDOUT' })));
      request.on('error', reject);
      request.end(body);
    });
  }

  return {
    send,
    destroy() {
      agents['http:'].destroy();
      agents['https:'].destroy();
    },
  };
}

export type HttpExchange = ReturnType<typeof httpExchange>;

/** The whole (small) body of an answer, as text: an error's XML. */
export async function textOf(answer: Answer, limit = 64 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of answer.body) {
    if (size < limit) chunks.push(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return Buffer.concat(chunks).toString('utf8').slice(0, limit);
}

/** `<Code>X</Code>` and `<Message>Y</Message>` of an S3 or Azure XML error body. */
export function xmlErrorFields(xml: string): { code?: string; message?: string } {
  const field = (name: string) => new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml)?.[1];
  return { code: field('Code'), message: field('Message')?.split('\n')[0] };
}
