/**
 * `azs3copy watch --listen PORT <the copy's options> [--webhook-key KEY]`: the
 * events endpoint (the deployed lambda07's handler, the same code) served at `/` on
 * 127.0.0.1, feeding the local pipeline, until stopped (Ctrl-C). Each batch Event
 * Grid delivers is routed as the deployed function routes it and gets one line on
 * stdout; the key is never printed. On stop, the copies under way are finished first.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { webhookKeyOf } from '../core/config';
import { checkDestinations } from '../core/destinations';
import type { RunSettings } from '../core/messages';
import { ConfigError, errorMessage } from '../core/errors';
import type { Handled } from '../core/events/webhook';
import { type CliValues, copyOptionsFromFlags, str } from './commands';

/** Event Grid delivers at most 1 MB a batch; anything much larger is not Event Grid. */
const MAX_BODY_BYTES = 4 * 1024 * 1024;

export function listenPort(values: CliValues): number {
  const text = str(values, 'listen');
  if (text === undefined) throw new ConfigError('--listen is missing: give the local port to serve the events endpoint on, like --listen 8080');
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535) throw new ConfigError(`--listen is "${text}": give a port number from 0 to 65535 (0 picks a free one)`);
  return port;
}

export async function watchCommand(values: CliValues, env: NodeJS.ProcessEnv, signal?: AbortSignal): Promise<number> {
  const port = listenPort(values);
  const given = str(values, 'webhook-key');
  const key = webhookKeyOf(given ?? env.AZS3COPY_WEBHOOK_KEY, given ? '--webhook-key' : 'AZS3COPY_WEBHOOK_KEY');
  if (!key) throw new ConfigError('no webhook key: give --webhook-key KEY or set AZS3COPY_WEBHOOK_KEY (at least 16 characters; Event Grid sends it as ?code=KEY)');
  const options = copyOptionsFromFlags(values, env);
  // Destinations that cannot work together are refused now, not at the first event.
  checkDestinations({ bucket: options.bucket, prefix: options.prefix ?? '', also: options.also, mirror: options.selection?.mirror } as RunSettings);
  const [{ localPipeline }, { handleWebhook }, { applyBlobEvents }] = await Promise.all([
    import('./pipeline'), import('../core/events/webhook'), import('../core/stages/events'),
  ]);
  const pipeline = localPipeline(options);
  // The source and the bucket are checked once, before any event is taken, as a run's start checks them.
  const containers = options.selection?.containers ?? [options.source.container];
  if (containers !== 'all') for (const container of containers) await (await pipeline.sourceOf(container)).check();
  await pipeline.sink.check();
  for (const destination of options.also ?? []) await pipeline.sinkOf(destination).check();

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    let handled: Handled | undefined;
    try {
      if (url.pathname !== '/') {
        res.writeHead(404).end();
        return;
      }
      const body = await readBody(req);
      if (body === undefined) {
        res.writeHead(413).end();
        return;
      }
      handled = await handleWebhook(
        { method: req.method ?? 'GET', headers: req.headers as Record<string, string | undefined>, query: Object.fromEntries(url.searchParams), body },
        { key: async () => key, apply: (events) => applyBlobEvents(pipeline.runtime, events) },
      );
      process.stdout.write(`${new Date().toISOString()} ${handled.response.status} ${handled.summary}\n`);
      res.writeHead(handled.response.status, handled.response.headers).end(handled.response.body);
    } catch (error) {
      // Event Grid delivers a batch again after a 500: duplicates copy nothing twice.
      res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'failed; deliver again' }));
      process.stdout.write(`${new Date().toISOString()} 500 failed: ${errorMessage(error)}\n`);
    }
  };
  const server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'EADDRINUSE' ? new ConfigError(`--listen ${port}: the port is in use; pick another`) : error));
    server.listen(port, '127.0.0.1', resolve);
  });
  const address = server.address();
  const actual = typeof address === 'object' && address ? address.port : port;
  process.stdout.write(`azs3copy watch: serving the events endpoint at http://127.0.0.1:${actual}/ (Event Grid and CloudEvents 1.0; subscribe with ?code=KEY); Ctrl-C stops\n`);

  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    signal?.addEventListener('abort', stop, { once: true });
  });
  process.stdout.write('stopping: no more events are taken; finishing the copies under way...\n');
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await pipeline.bus.idle();
  pipeline.stopHeartbeat();
  const letters = pipeline.bus.deadLetters.length;
  process.stdout.write(letters > 0
    ? `stopped; ${letters} message${letters === 1 ? ' was' : 's were'} dead-lettered: see "azs3copy status" for the hour's run\n`
    : 'stopped; every copy under way finished (see "azs3copy status" for the hour\'s run)\n');
  return letters > 0 ? 1 : 0;
}

async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
