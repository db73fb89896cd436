/**
 * Failures of a Redis cluster of three `apps/relay` processes, under
 * continuous load from real clients to real providers:
 *
 * - SIGKILL of one relay: requests in flight through it fail fast
 *   (RELAY_UNAVAILABLE for its own clients at once, PROVIDER_DISCONNECTED for
 *   calls from other relays to its providers within the cluster timeout),
 *   everything else goes on, its nodes leave presence within the stated
 *   bound and reconnect to the other relays by themselves.
 * - Redis cut off (connections dropped) and stalled (connections kept, no
 *   bytes move): each relay keeps routing among its own connections, says so
 *   in its status, and the cluster comes back by itself when Redis does.
 */
import { Controller, Inject } from '@nestjs/common';
import { MessagePattern } from '@nestjs/microservices';
import { RelayErrorCode } from '@wsrelay/protocol';
import type { WsRelayClient } from '@wsrelay/transport';
import { CLUSTER_TIMING, discoverUntil, type RedisTestCluster, redisCluster } from './support/cluster.js';
import { type RunningProvider, startClient, startProvider, until, untilAsync, useCleanup } from './support/harness.js';
import { load } from './support/load.js';
import { mint } from './support/tokens.js';

const NODE = Symbol('node');

@Controller()
class WorkController {
  constructor(@Inject(NODE) private readonly node: string) {}

  @MessagePattern('work')
  work() {
    return this.node;
  }

  /** Answers after a while, so some calls are always in flight. */
  @MessagePattern('slow')
  async slow() {
    await new Promise(r => setTimeout(r, 20));
    return this.node;
  }
}

/** How long a dead relay may stay in presence: its silence is noticed at the next heartbeat after the timeout. */
const PRESENCE_BOUND_MS = CLUSTER_TIMING.timeoutMs + CLUSTER_TIMING.heartbeatIntervalMs;
/** Room for timers and the event loop on a busy 2-core machine. */
const SLACK_MS = 750;

describe('cluster failures (Redis, three relay processes)', () => {
  let cluster: RedisTestCluster;
  const { add } = useCleanup();
  afterEach(async () => {
    await cluster?.close();
  });

  async function provider(nodeId: string, urls: string[]): Promise<RunningProvider> {
    const p = await startProvider([WorkController], { urls, nodeId, token: () => mint({ sub: nodeId, claims: { role: 'server' } }) }, [
      { provide: NODE, useValue: nodeId },
    ]);
    add(() => p.close());
    return p;
  }

  async function client(nodeId: string, urls: string[]): Promise<WsRelayClient> {
    const c = await startClient({ urls, nodeId, timeoutMs: 5000, token: () => mint({ sub: nodeId, claims: { role: 'client' } }) });
    add(() => c.close());
    return c;
  }

  it('SIGKILL of one of three relays: only what went through it fails, fast; its nodes leave presence in bound and come back elsewhere', async () => {
    cluster = await redisCluster();
    await cluster.ready();
    const [u0, u1, u2] = cluster.urls;
    // Each node prefers its own relay and fails over to the others.
    await provider('p0', [u0, u1, u2]);
    await provider('p1', [u1, u2, u0]);
    await provider('p2', [u2, u0, u1]);
    const c0 = await client('c0', [u0, u1, u2]);
    const c1 = await client('c1', [u1, u2, u0]);
    const c2 = await client('c2', [u2, u0, u1]);
    await discoverUntil(c0, ['p0', 'p1', 'p2']);
    await discoverUntil(c1, ['p0', 'p1', 'p2']);

    const run = load(
      [
        ['c0', c0],
        ['c1', c1],
        ['c2', c2],
      ],
      'slow',
    );
    let killedAt = 0;
    let p2BackAt = 0;
    try {
      await run.succeeded(300);
      killedAt = Date.now();
      await cluster.relays[2].kill('SIGKILL');

      // Presence: relay 0 forgets relay 2 (and its nodes) within the bound.
      let status = await cluster.relays[0].status();
      const forgot = async () => (status = await cluster.relays[0].status()).cluster.relays.length === 1;
      await untilAsync(forgot, PRESENCE_BOUND_MS + SLACK_MS, 'relay 0 to forget relay 2');
      expect(status.cluster.relays.map(r => r.relayId)).toEqual(['redis-1']);
      expect(Date.now() - killedAt).toBeLessThanOrEqual(PRESENCE_BOUND_MS + SLACK_MS);

      // Its nodes reconnect to the other relays by themselves, and serve again.
      await discoverUntil(c0, ['p2', 'c2']);
      const back = run.outcomes.length;
      await until(() => run.outcomes.slice(back).some(o => o.ok && o.node === 'p2'), 10_000, 'a call served by p2 again');
      p2BackAt = Date.now();
      await until(() => run.outcomes.slice(back).some(o => o.ok && o.client === 'c2'), 10_000, 'c2 calling again');
      await run.succeeded(300);
    } finally {
      await run.stop();
    }

    const failed = run.outcomes.filter(o => !o.ok);
    // Only calls that went through the dead relay failed, each with a transport code, none by hanging.
    for (const f of failed) {
      expect([RelayErrorCode.RELAY_UNAVAILABLE, RelayErrorCode.PROVIDER_DISCONNECTED, RelayErrorCode.NODE_ID_CONFLICT]).toContain(f.code);
    }
    expect(failed.filter(f => f.code === RelayErrorCode.TIMEOUT)).toEqual([]);
    // Calls from c0 and c1 failed only if they were routed to p2 while relay 2 died: PROVIDER_DISCONNECTED, in bound.
    const fromOthers = failed.filter(f => f.client !== 'c2');
    for (const f of fromOthers) {
      expect(f.code).toBe(RelayErrorCode.PROVIDER_DISCONNECTED);
      expect(f.settledAt - f.startedAt).toBeLessThanOrEqual(PRESENCE_BOUND_MS + SLACK_MS);
    }
    // c0 and c1 went on being served by p0 and p1 throughout: before the kill, while p2 was away, and after.
    const servedBy = (client: string, from: number, to: number) =>
      run.outcomes.filter(
        o => o.ok && o.client === client && (o.node === 'p0' || o.node === 'p1') && o.startedAt >= from && o.startedAt < to,
      );
    for (const client of ['c0', 'c1']) {
      expect(servedBy(client, 0, killedAt).length).toBeGreaterThan(0);
      expect(servedBy(client, killedAt, p2BackAt).length).toBeGreaterThan(0);
      expect(servedBy(client, p2BackAt, Infinity).length).toBeGreaterThan(0);
    }
    // c2's in-flight calls failed at once with RELAY_UNAVAILABLE (its socket closed), not at a deadline.
    for (const f of failed.filter(f => f.client === 'c2')) expect(f.settledAt - f.startedAt).toBeLessThan(SLACK_MS);
  }, 60_000);

  it.each([
    ['cut off (connections dropped)', 'cut'],
    ['stalled (connections kept, nothing moves)', 'freeze'],
  ] as const)(
    'Redis %s: local routing continues throughout; cluster routing resumes by itself when it is back',
    async (_what, how) => {
      cluster = await redisCluster({ viaProxy: true });
      await cluster.ready();
      const [u0, u1] = cluster.urls;
      await provider('local', [u0]);
      await provider('remote', [u1]);
      const c = await client('caller', [u0]);
      await discoverUntil(c, ['local', 'remote']);
      const run = load([['caller', c]], 'work', 2);
      try {
        await run.succeeded(100);
        const proxy = cluster.proxy!;
        if (how === 'cut') await proxy.cut();
        else proxy.freeze();

        // Relay 0 notices, says so, and forgets the remote provider.
        let status = await cluster.relays[0].status();
        const noticed = async () => !(status = await cluster.relays[0].status()).cluster.healthy;
        await untilAsync(noticed, PRESENCE_BOUND_MS + 2 * SLACK_MS, 'relay 0 to notice');
        expect(status.cluster).toMatchObject({ healthy: false, relays: [] });
        const statusCode = (await fetch(`http://127.0.0.1:${cluster.relays[0].port}/status`)).status;
        expect(statusCode).toBe(503);
        await discoverUntil(c, ids => !ids.includes('remote'));

        // Local routing never stopped: every call in the outage is served by the local provider.
        const during = run.outcomes.length;
        await run.succeeded(100);
        const outage = run.outcomes.slice(during);
        expect(outage.filter(o => !o.ok)).toEqual([]);
        expect(new Set(outage.map(o => o.node))).toEqual(new Set(['local']));

        await proxy.restore();
        await cluster.ready();
        await discoverUntil(c, ids => ids.includes('remote'));
        const after = run.outcomes.length;
        await until(() => run.outcomes.slice(after).some(o => o.ok && o.node === 'remote'), 10_000, 'a call served across relays again');
      } finally {
        await run.stop();
      }
      // Nothing hung: no call ran into its deadline.
      expect(run.outcomes.filter(o => o.code === RelayErrorCode.TIMEOUT)).toEqual([]);
      // Calls in flight to the remote provider when the cluster split failed fast, typed.
      for (const f of run.outcomes.filter(o => !o.ok)) {
        expect(f.code).toBe(RelayErrorCode.PROVIDER_DISCONNECTED);
        expect(f.settledAt - f.startedAt).toBeLessThanOrEqual(PRESENCE_BOUND_MS + 2 * SLACK_MS);
      }
    },
    60_000,
  );
});
