import { InMemoryBackplane, InMemoryHub, type RelayModuleOptions, RelayCore, type RelayStatus } from '@wsrelay/relay';
import type { WsRelayClient } from '@wsrelay/transport';
import { randomBytes } from 'node:crypto';
import { type RunningRelay, startRelay, until } from './harness.js';
import { type RelayProcess, spawnRelay } from './relay-process.js';
import { CutOffProxy, startTestRedis } from './redis.js';
import { AUDIENCE, ISSUER, SECRET } from './tokens.js';

/** Relays of one cluster, as the shared routing suite sees them: three positions (the same relay with one). */
export interface TestCluster {
  readonly name: string;
  /** Relay URLs at positions 0, 1 and 2. */
  readonly urls: [string, string, string];
  /** Resolves once every relay knows every other one. */
  ready(): Promise<void>;
  close(): Promise<void>;
}

/** Every relay of the tests authenticates with this (tenants come from tokens). */
export const CLUSTER_AUTH = { secret: SECRET, issuer: ISSUER, audience: AUDIENCE };

/** Heartbeat settings of the test clusters: a dead relay is gone within 1 s + 250 ms. */
export const CLUSTER_TIMING = { heartbeatIntervalMs: 250, timeoutMs: 1000 };

/** One relay on the in-memory backplane (the default): a cluster of one. */
export async function singleRelay(options: RelayModuleOptions = {}): Promise<TestCluster> {
  const relay = await startRelay({ auth: CLUSTER_AUTH, ...options });
  return {
    name: 'in-memory backplane, one relay',
    urls: [relay.url, relay.url, relay.url],
    ready: async () => undefined,
    close: () => relay.close(),
  };
}

/** Three relays in this process sharing an in-memory hub. */
export async function inProcessCluster(options: RelayModuleOptions = {}): Promise<TestCluster & { relays: RunningRelay[] }> {
  const hub = new InMemoryHub();
  const relays = await Promise.all(
    [0, 1, 2].map(i =>
      startRelay({
        auth: CLUSTER_AUTH,
        relayId: `mem-${i}`,
        cluster: { backplane: new InMemoryBackplane(hub), ...CLUSTER_TIMING },
        ...options,
      }),
    ),
  );
  return {
    name: 'in-memory hub, three relays in one process',
    relays,
    urls: [relays[0].url, relays[1].url, relays[2].url],
    ready: async () => {
      await until(
        () =>
          relays.every(r => {
            const s = r.app.get(RelayCore).status();
            return s.cluster.healthy && s.cluster.relays.length === 2;
          }),
        5000,
        'the relays to see each other',
      );
    },
    close: async () => {
      await Promise.all(relays.map(r => r.close()));
    },
  };
}

export interface RedisTestCluster extends TestCluster {
  relays: RelayProcess[];
  /** The proxy the relays reach Redis through, when asked for one (to cut Redis off). */
  proxy: CutOffProxy | undefined;
}

/**
 * Three `apps/relay` processes joined over Redis (ours on a free port, or
 * REDIS_URL), optionally through a proxy a test can cut.
 */
export async function redisCluster(o: { env?: Record<string, string>; viaProxy?: boolean } = {}): Promise<RedisTestCluster> {
  const redis = await startTestRedis();
  const proxy = o.viaProxy ? await CutOffProxy.start(redis.url) : undefined;
  const prefix = `wsrelay-test-${randomBytes(4).toString('hex')}`;
  const relays = await Promise.all(
    [0, 1, 2].map(i =>
      spawnRelay({
        RELAY_ID: `redis-${i}`,
        RELAY_REDIS_URL: proxy?.url ?? redis.url,
        RELAY_CLUSTER_PREFIX: prefix,
        RELAY_CLUSTER_HEARTBEAT_INTERVAL_MS: String(CLUSTER_TIMING.heartbeatIntervalMs),
        RELAY_CLUSTER_TIMEOUT_MS: String(CLUSTER_TIMING.timeoutMs),
        RELAY_JWT_SECRET: SECRET,
        RELAY_JWT_ISSUER: ISSUER,
        RELAY_JWT_AUDIENCE: AUDIENCE,
        ...o.env,
      }),
    ),
  ).catch(async err => {
    await proxy?.close();
    await redis.stop();
    throw err;
  });
  return {
    name: 'Redis, three relays in separate processes',
    relays,
    proxy,
    urls: [relays[0].url, relays[1].url, relays[2].url],
    ready: () => meshed(relays, relays.length),
    close: async () => {
      await Promise.all(relays.map(r => r.stop()));
      await proxy?.close();
      await redis.stop();
    },
  };
}

/** Resolves once each of `relays` (of a cluster of `size`) is healthy and sees all the others. */
export async function meshed(relays: RelayProcess[], size: number): Promise<void> {
  let last: RelayStatus[] = [];
  const deadline = Date.now() + 15_000;
  for (;;) {
    last = await Promise.all(relays.map(r => r.status()));
    if (last.every(s => s.cluster.healthy && s.cluster.relays.length === size - 1)) return;
    if (Date.now() > deadline) {
      throw new Error(
        `the relays did not see each other within 15 s: ${JSON.stringify(last.map(s => s.cluster))}\n${relays.map(r => r.output.join('\n')).join('\n---\n')}`,
      );
    }
    await new Promise(r => setTimeout(r, 50));
  }
}

/**
 * Asks `c`'s relay for its nodes (presence crosses a cluster with no event to
 * wait on) until their ids include all of `done`, or `done` holds of them;
 * returns them. A DISCOVER that fails (no relay yet) counts as no nodes.
 */
export async function discoverUntil(
  c: WsRelayClient,
  done: string[] | ((ids: string[]) => boolean),
  what = Array.isArray(done) ? done.join(', ') : 'what was expected',
  timeoutMs = 10_000,
): Promise<string[]> {
  const holds = Array.isArray(done) ? (ids: string[]) => done.every(id => ids.includes(id)) : done;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ids = await c.discover().then(
      nodes => nodes.map(n => n.nodeId),
      () => [],
    );
    if (holds(ids)) return ids;
    if (Date.now() > deadline) throw new Error(`discovery never showed ${what}; last: ${ids.join(', ')}`);
    await new Promise(r => setTimeout(r, 20));
  }
}
