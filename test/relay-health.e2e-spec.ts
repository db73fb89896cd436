/**
 * The relay's health probes on a real relay app: GET /livez answers 200 for
 * as long as the process serves HTTP, GET /readyz answers what GET /status
 * answers (ready, or 503 with the reason: draining, or in a cluster the
 * backplane down or not yet synced). A relay cut off from its Redis (a TCP
 * proxy the test cuts) goes not ready and comes back, and its metrics say so.
 */
import { createRelayApp, type RelayAppOptions, RelayCore, type RelayModuleOptions } from '@wsrelay/relay';
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isRequest, request } from './support/frames.js';
import { untilAsync, useCleanup } from './support/harness.js';
import { RawNode } from './support/raw-node.js';
import { CutOffProxy, useTestRedis } from './support/redis.js';

interface Answer {
  status: number;
  body: unknown;
}

async function get(url: string): Promise<Answer> {
  const res = await fetch(url);
  const text = await res.text();
  return { status: res.status, body: res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text };
}

/** One sample of a scrape (`name{labels}` as printed). */
async function metric(base: string, name: string): Promise<number | undefined> {
  const line = (await (await fetch(`${base}/metrics`)).text()).split('\n').find(l => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

const READY = { status: 200, body: { status: 'ok', ready: true } };
const LIVE = { status: 200, body: { status: 'ok' } };

describe('GET /livez and /readyz', () => {
  const redis = useTestRedis();
  const { add, track } = useCleanup();

  /** A relay app on 127.0.0.1:0: its base URL and WebSocket URL, and a close that can be called twice. */
  async function relay(options: RelayModuleOptions = {}, appOptions: RelayAppOptions = {}) {
    const app = await createRelayApp({ startupGraceMs: 0, drainTimeoutMs: 0, ...options }, { logger: false, ...appOptions });
    await app.listen(0, '127.0.0.1');
    let closing: Promise<void> | undefined;
    const close = () => (closing ??= app.close());
    add(close);
    const { port } = (app.getHttpServer() as Server).address() as AddressInfo;
    return { base: `http://127.0.0.1:${port}`, url: `ws://127.0.0.1:${port}/relay`, core: app.get(RelayCore), close };
  }

  it('a running relay is live and ready; /status says the same as /readyz', async () => {
    const r = await relay();
    expect(await get(`${r.base}/livez`)).toEqual(LIVE);
    expect(await get(`${r.base}/readyz`)).toEqual(READY);
    expect(await get(`${r.base}/status`)).toEqual(READY);
  });

  it('while it drains for shutdown it is still live, and no longer ready', async () => {
    const r = await relay({ drainTimeoutMs: 10_000 });
    const provider = track(await RawNode.hello(r.url, 'provider', { patterns: ['slow'] }));
    const caller = track(await RawNode.hello(r.url, 'caller'));
    caller.send(request(1, 'slow'));
    await provider.next(isRequest);
    const closed = r.close();
    const draining = { status: 503, body: { status: 'unavailable', ready: false, reason: 'draining' } };
    await untilAsync(async () => (await get(`${r.base}/readyz`)).status === 503, 5000, 'the relay to say it drains');
    expect(await get(`${r.base}/readyz`)).toEqual(draining);
    expect(await get(`${r.base}/status`)).toEqual(draining);
    expect(await get(`${r.base}/livez`)).toEqual(LIVE);
    expect(await metric(r.base, 'wsrelay_relay_draining')).toBe(1);
    provider.close();
    await closed;
  });

  it('paths are options: elsewhere, or false for none; two probes on one path are refused', async () => {
    const r = await relay({}, { livezPath: '/healthz', readyzPath: false });
    expect(await get(`${r.base}/healthz`)).toEqual(LIVE);
    expect((await get(`${r.base}/livez`)).status).toBe(404);
    expect((await get(`${r.base}/readyz`)).status).toBe(404);
    expect(await get(`${r.base}/status`)).toEqual(READY);
    await expect(createRelayApp({}, { logger: false, livezPath: '/status' })).rejects.toThrow(
      /statusPath and livezPath are both "\/status"/,
    );
    await expect(createRelayApp({}, { logger: false, readyzPath: 'readyz' })).rejects.toThrow(
      /readyzPath must be a path starting with "\/"/,
    );
  });

  it('a relay cut off from Redis goes not ready (still live) and is ready again once Redis is back; its metrics follow', async () => {
    const proxy = await CutOffProxy.start(redis.url);
    add(() => proxy.close());
    const cluster = { channelPrefix: `wsrelay-health-${randomBytes(4).toString('hex')}`, heartbeatIntervalMs: 200, timeoutMs: 1500 };
    const a = await relay({ relayId: 'A', cluster: { redis: proxy.url, ...cluster } });
    const b = await relay({ relayId: 'B', cluster: { redis: redis.url, ...cluster } });
    const members = (r: typeof a) => r.core.status().cluster.relays.length;
    await untilAsync(async () => (await get(`${a.base}/readyz`)).status === 200 && members(a) === 1, 10_000, 'A to be ready, knowing B');
    expect(await metric(a.base, 'wsrelay_relay_cluster_members')).toBe(1);
    expect(await metric(a.base, 'wsrelay_relay_cluster_members_joined_total')).toBe(1);

    await proxy.cut();
    const down = { status: 503, body: { status: 'unavailable', ready: false, reason: 'cluster backplane down' } };
    await untilAsync(async () => (await get(`${a.base}/readyz`)).status === 503, 5000, 'A to notice it is cut off');
    expect(await get(`${a.base}/readyz`)).toEqual(down);
    expect(await get(`${a.base}/status`)).toEqual(down);
    expect(await get(`${a.base}/livez`)).toEqual(LIVE);
    expect(await metric(a.base, 'wsrelay_relay_cluster_backplane_up')).toBe(0);
    expect(await metric(a.base, 'wsrelay_relay_ready')).toBe(0);
    expect(await metric(a.base, 'wsrelay_relay_cluster_members')).toBe(0);
    // B, on Redis all along, stays ready.
    expect(await get(`${b.base}/readyz`)).toEqual(READY);

    await proxy.restore();
    await untilAsync(
      async () => (await get(`${a.base}/readyz`)).status === 200 && members(a) === 1,
      15_000,
      'A to be ready again, knowing B',
    );
    expect(await metric(a.base, 'wsrelay_relay_cluster_backplane_up')).toBe(1);
    expect(await metric(a.base, 'wsrelay_relay_ready')).toBe(1);
    expect(await metric(a.base, 'wsrelay_relay_cluster_backplane_losses_total')).toBe(1);
    // B went with the backplane, and was met again.
    expect(await metric(a.base, 'wsrelay_relay_cluster_members_lost_total')).toBe(1);
    expect(await metric(a.base, 'wsrelay_relay_cluster_members_joined_total')).toBe(2);
  }, 40_000);
});
