import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';

/** A Redis for the cluster tests. */
export interface TestRedis {
  url: string;
  /** Stops the redis-server this suite started (not one given by REDIS_URL). */
  stop(): Promise<void>;
}

const HOW_TO_GET_ONE =
  'The cluster tests need Redis: install redis-server (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis), ' +
  'which the tests start on a free loopback port themselves, or set REDIS_URL=redis://host:port to use a running one.';

/** A port nobody listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/** Resolves once something answers a Redis PING at host:port; rejects after `timeoutMs`. */
async function pingRedis(host: string, port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>(resolve => {
      const socket = connect(port, host);
      socket.setTimeout(1000);
      socket.once('connect', () => socket.write('PING\r\n'));
      socket.once('data', d => {
        socket.destroy();
        resolve(d.toString().startsWith('+PONG'));
      });
      socket.once('error', () => resolve(false));
      socket.once('timeout', () => {
        socket.destroy();
        resolve(false);
      });
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`no Redis answered at ${host}:${port} within ${timeoutMs} ms`);
    await new Promise(r => setTimeout(r, 50));
  }
}

/**
 * REDIS_URL when set; otherwise a redis-server of our own on a free loopback
 * port, keeping nothing on disk, so the tests never touch anyone's data.
 * Fails with how to get one when neither is possible.
 */
export async function startTestRedis(): Promise<TestRedis> {
  const given = process.env.REDIS_URL;
  if (given) {
    const u = new URL(given);
    await pingRedis(u.hostname, u.port === '' ? 6379 : Number(u.port)).catch(err => {
      throw new Error(`REDIS_URL=${given} does not answer (${(err as Error).message}). ${HOW_TO_GET_ONE}`);
    });
    return { url: given, stop: async () => undefined };
  }
  if (spawnSync('redis-server', ['--version']).error !== undefined) throw new Error(`redis-server is not installed. ${HOW_TO_GET_ONE}`);
  const port = await freePort();
  const child: ChildProcess = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'],
    { stdio: 'ignore' },
  );
  try {
    await pingRedis('127.0.0.1', port);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`redis-server did not start on port ${port}: ${(err as Error).message}. ${HOW_TO_GET_ONE}`, { cause: err });
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

/** A Redis for the whole suite: started before its first test, stopped after its last. */
export function useTestRedis(): { readonly url: string } {
  let redis: TestRedis | undefined;
  beforeAll(async () => {
    redis = await startTestRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });
  return {
    get url(): string {
      if (redis === undefined) throw new Error('the suite Redis is not started yet (use it inside a test)');
      return redis.url;
    },
  };
}

/**
 * Ties a proxied connection's two sockets together: both are kept in
 * `sockets` while open, errors are ignored, and each closes with the other.
 * Moving the bytes is the caller's.
 */
export function tieSockets(client: Socket, upstream: Socket, sockets: Set<Socket>): void {
  for (const s of [client, upstream]) {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
  }
  client.on('close', () => upstream.destroy());
  upstream.on('close', () => client.destroy());
}

/**
 * A TCP proxy in front of Redis that a test can cut: `cut()` drops every
 * connection and refuses new ones (Redis gone, as the relays see it),
 * `freeze()` keeps connections open but stops moving bytes (a network that
 * stalls without a reset), `restore()` brings it back on the same port and
 * lets stalled bytes through.
 */
export class CutOffProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private frozen = false;

  private constructor(
    private readonly target: { host: string; port: number },
    readonly port: number,
  ) {}

  static async start(targetUrl: string): Promise<CutOffProxy> {
    const u = new URL(targetUrl);
    const proxy = new CutOffProxy({ host: u.hostname, port: u.port === '' ? 6379 : Number(u.port) }, await freePort());
    await proxy.restore();
    return proxy;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async restore(): Promise<void> {
    this.frozen = false;
    for (const s of this.sockets) s.resume();
    if (this.server !== undefined) return;
    const server = createServer(client => {
      const upstream = connect(this.target.port, this.target.host);
      tieSockets(client, upstream, this.sockets);
      client.pipe(upstream);
      upstream.pipe(client);
      if (this.frozen) for (const s of [client, upstream]) s.pause();
    });
    server.listen(this.port, '127.0.0.1');
    await once(server, 'listening');
    this.server = server;
  }

  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server !== undefined) await new Promise(r => server.close(r));
  }

  freeze(): void {
    this.frozen = true;
    for (const s of this.sockets) s.pause();
  }

  async close(): Promise<void> {
    await this.cut();
  }
}
