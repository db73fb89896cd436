/**
 * Pins issue 13 point 9: `/status` disclosed memory and instance ids to
 * anyone who asked. The public `GET /status` now answers readiness only; the
 * detail needs the status token, and is not served without one.
 */
import { createRelayApp, type RelayAppOptions, type RelayModuleOptions } from '@wsrelay/relay';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isRequest, request } from './support/frames.js';
import { untilAsync, useCleanup } from './support/harness.js';
import { RawNode } from './support/raw-node.js';

const TOKEN = 'status-token-of-the-test-0123456789';

describe('GET /status and /status/detail', () => {
  const { add, track } = useCleanup();

  /** A relay app on 127.0.0.1:0; its base URL. */
  async function relay(appOptions: RelayAppOptions = {}, options: RelayModuleOptions = {}) {
    const app = await createRelayApp({ startupGraceMs: 0, drainTimeoutMs: 0, ...options }, { logger: false, ...appOptions });
    await app.listen(0, '127.0.0.1');
    let closing: Promise<void> | undefined;
    const close = () => (closing ??= app.close());
    add(close);
    const { port } = (app.getHttpServer() as Server).address() as AddressInfo;
    return { base: `http://127.0.0.1:${port}`, url: `ws://127.0.0.1:${port}/relay`, close };
  }

  async function get(url: string, token?: string): Promise<{ status: number; body: Record<string, unknown> | undefined }> {
    const res = await fetch(url, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });
    const text = await res.text();
    return {
      status: res.status,
      body: res.headers.get('content-type')?.includes('json') ? (JSON.parse(text) as Record<string, unknown>) : undefined,
    };
  }

  it('the public answer is readiness only: no memory, ids or counts', async () => {
    const r = await relay({ statusToken: TOKEN });
    expect(await get(`${r.base}/status`)).toEqual({ status: 200, body: { status: 'ok', ready: true } });
    // Even with the token, /status itself says no more.
    expect(await get(`${r.base}/status`, TOKEN)).toEqual({ status: 200, body: { status: 'ok', ready: true } });
  });

  it('the detail needs the token: 401 without it or with a wrong one, the full status with it', async () => {
    const r = await relay({ statusToken: TOKEN }, { relayId: 'R1' });
    for (const token of [undefined, 'wrong', TOKEN.replace(/.$/, 'x'), `${TOKEN}x`, '']) {
      const answer = await get(`${r.base}/status/detail`, token);
      expect(answer.status).toBe(401);
      expect(JSON.stringify(answer.body)).not.toMatch(/R1|rssBytes|instanceId/);
    }
    const { status, body } = await get(`${r.base}/status/detail`, TOKEN);
    expect(status).toBe(200);
    expect(body).toMatchObject({ relayId: 'R1', connections: 0, nodes: 0, readiness: { ready: true } });
    expect(body).toHaveProperty('memory.rssBytes');
    expect(body).toHaveProperty('cluster.instanceId');
  });

  it('without a status token the detail is not served at all', async () => {
    const r = await relay();
    expect((await get(`${r.base}/status/detail`)).status).toBe(404);
    expect((await get(`${r.base}/status/detail`, 'anything')).status).toBe(404);
    expect((await get(`${r.base}/status`)).status).toBe(200);
  });

  it('paths are options; statusPath: false serves no readiness', async () => {
    const r = await relay({ statusPath: false, statusDetailPath: '/internal/status', statusToken: TOKEN });
    expect((await get(`${r.base}/status`)).status).toBe(404);
    expect((await get(`${r.base}/internal/status`, TOKEN)).status).toBe(200);
    await expect(createRelayApp({}, { logger: false, statusPath: '/s', statusDetailPath: '/s' })).rejects.toThrow(/both "\/s"/);
    await expect(createRelayApp({}, { logger: false, statusToken: ' ' })).rejects.toThrow(/statusToken/);
    // A token with a space could never be sent in a Bearer header: refused at start, not silently unusable.
    await expect(createRelayApp({}, { logger: false, statusToken: 'two words' })).rejects.toThrow(/without spaces/);
  });

  it('answers 503 with the reason while the relay drains for shutdown', async () => {
    const r = await relay({}, { drainTimeoutMs: 10_000 });
    const provider = track(await RawNode.hello(r.url, 'provider', { patterns: ['slow'] }));
    const caller = track(await RawNode.hello(r.url, 'caller'));
    caller.send(request(1, 'slow'));
    await provider.next(isRequest);
    const closed = r.close();
    await untilAsync(async () => (await get(`${r.base}/status`)).status === 503, 5000, 'the relay to say it drains');
    expect(await get(`${r.base}/status`)).toEqual({ status: 503, body: { status: 'unavailable', ready: false, reason: 'draining' } });
    provider.close();
    await closed;
  });
});
