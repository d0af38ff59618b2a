/**
 * A TCP proxy that puts a wide-area network between a copier and a store on this
 * machine: every byte is delivered in order, `latencyMs` later than it was sent
 * (one way, so a round trip costs twice that), and no faster than
 * `bytesPerSecond` per connection and direction (a connection's share of a
 * long link). A new connection costs one round trip before its first byte
 * goes through, as TCP's handshake does across a real network.
 *
 * Back-pressure is kept: a direction holding more than about a bandwidth-delay
 * product of bytes stops reading from its sender until it has delivered them, so
 * a fast sender is paced as a real network paces it, and memory stays bounded.
 *
 * Run in a process of its own (so that the timers' accuracy does not depend on
 * the bench's work):
 *   node --import tsx bench/proxy.ts '[{"target":"127.0.0.1:10000","latencyMs":20,"mibPerSecond":25}, ...]'
 * prints one JSON line, the listening port of each route in order, then serves
 * until killed; each line "stats" on its stdin is answered with one JSON line of
 * each route's counters (connections, bytes each way). startProxy does all that.
 */
import { spawn } from 'node:child_process';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export interface Route {
  /** host:port of the store. */
  target: string;
  /** Added one-way delay, in milliseconds. */
  latencyMs: number;
  /** Cap per connection and direction, in MiB/s; none when absent or 0. */
  mibPerSecond?: number;
}

export interface RouteStats {
  connections: number;
  bytesUp: number;
  bytesDown: number;
}

/** One direction of one connection: delays and paces what `from` sends, then writes it to `to`. */
function shape(from: Socket, to: Socket, route: Route, startAt: number, count: (n: number) => void) {
  const bytesPerMs = route.mibPerSecond ? (route.mibPerSecond * 1024 * 1024) / 1000 : Number.POSITIVE_INFINITY;
  // What is on the wire (a bandwidth-delay product), plus half a MiB waiting for the link: enough to keep it full.
  const onTheWire = Number.isFinite(bytesPerMs) ? bytesPerMs * route.latencyMs : 4 * 1024 * 1024;
  const highWater = onTheWire + 512 * 1024;
  const lowWater = onTheWire + 256 * 1024;
  const queue: { chunk: Buffer; at: number }[] = [];
  let queued = 0;
  let lastSent = startAt;
  let timer: NodeJS.Timeout | undefined;
  let ended = false;

  const flush = () => {
    timer = undefined;
    const now = performance.now();
    while (queue.length > 0 && queue[0].at <= now + 0.5) {
      const { chunk } = queue.shift()!;
      queued -= chunk.length;
      count(chunk.length);
      if (!to.destroyed && !to.writableEnded) to.write(chunk);
    }
    if (queue.length > 0) timer = setTimeout(flush, Math.max(0, queue[0].at - now));
    else if (ended) to.end();
    if (queued < lowWater && from.isPaused() && to.writableLength < highWater) from.resume();
  };

  from.on('data', (chunk: Buffer) => {
    const now = performance.now();
    // The last byte leaves once the link has carried everything before it, and arrives `latencyMs` after that.
    lastSent = Math.max(now, lastSent) + chunk.length / bytesPerMs;
    queue.push({ chunk, at: lastSent + route.latencyMs });
    queued += chunk.length;
    if (queued > highWater || to.writableLength > highWater) from.pause();
    timer ??= setTimeout(flush, Math.max(0, queue[0].at - now));
  });
  to.on('drain', () => {
    if (queued < lowWater && from.isPaused()) from.resume();
  });
  from.on('end', () => {
    ended = true;
    if (queue.length === 0 && !timer) to.end();
  });
}

export function startRoute(route: Route): Promise<{ port: number; server: Server; stats: RouteStats }> {
  const stats: RouteStats = { connections: 0, bytesUp: 0, bytesDown: 0 };
  const [host, port] = route.target.split(':');
  // Half-open both ways: an end is passed on once what came before it has been delivered.
  const server = createServer({ noDelay: true, allowHalfOpen: true }, (client) => {
    stats.connections++;
    const upstream = connect({ host, port: Number(port), noDelay: true, allowHalfOpen: true });
    const now = performance.now();
    // The handshake's round trip comes before the first byte either way.
    shape(client, upstream, route, now + 2 * route.latencyMs, (n) => (stats.bytesUp += n));
    shape(upstream, client, route, now, (n) => (stats.bytesDown += n));
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ port: (server.address() as { port: number }).port, server, stats })));
}

export interface Proxy {
  /** Each route's listening port, in order. */
  ports: number[];
  pid: number;
  stats(): Promise<RouteStats[]>;
  stop(): void;
}

/** The proxy in a process of its own, with these routes. */
export async function startProxy(routes: Route[]): Promise<Proxy> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'proxy.ts'), JSON.stringify(routes)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! });
  const next = () => new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`bench/proxy.ts exited ${code}`)));
  });
  const ports = JSON.parse(await next()) as number[];
  const kill = () => child.kill('SIGKILL');
  process.once('exit', kill);
  let asking = Promise.resolve<RouteStats[]>([]);
  return {
    ports,
    pid: child.pid!,
    stats() {
      asking = asking.then(() => {
        const answer = next();
        child.stdin!.write('stats\n');
        return answer.then((l) => JSON.parse(l) as RouteStats[]);
      });
      return asking;
    },
    stop() {
      process.removeListener('exit', kill);
      kill();
    },
  };
}

if (process.argv[1]?.endsWith('proxy.ts')) {
  const routes = JSON.parse(process.argv[2]) as Route[];
  const started = await Promise.all(routes.map(startRoute));
  createInterface({ input: process.stdin }).on('line', () => process.stdout.write(JSON.stringify(started.map((s) => s.stats)) + '\n'));
  process.stdout.write(JSON.stringify(started.map((s) => s.port)) + '\n');
}
