/**
 * The relay's Prometheus metrics (GET /metrics), read the way Prometheus
 * reads them: a scrape before and after a known workload on a real relay,
 * and each counter must have moved by exactly what the workload did: calls
 * and their duration histogram, events published, delivered and dropped,
 * frames by type, every refusal reason the tests can produce (at the
 * upgrade and of frames), a handler-ack redelivery, a slow consumer. Also
 * the metrics token and Node's process metrics.
 */
import { Controller } from '@nestjs/common';
import { EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { encodePayload, EventFlag, type EventFrame, type Frame, FrameType, RelayErrorCode, type ResponseFrame } from '@wsrelay/protocol';
import { createRelayApp, RelayCore, type RelayAppOptions, type RelayModuleOptions } from '@wsrelay/relay';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { firstValueFrom } from 'rxjs';
import { answerTo, isRequest, request } from './support/frames.js';
import { startClient, startProvider, until, useCleanup } from './support/harness.js';
import { helloFrame, RawNode, refusal } from './support/raw-node.js';
import { AUDIENCE, bearer, CLIENT, ISSUER, mint, SECRET } from './support/tokens.js';

/** Each sample of a scrape by its name and labels as printed (`name{a="x"}`). */
type Scrape = Map<string, number>;

function parse(text: string): Scrape {
  const samples: Scrape = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

/** How much each sample moved from `before` to `after` (those that moved, and those asked for). */
function moved(before: Scrape, after: Scrape, keys: string[] = []): Record<string, number> {
  const d: Record<string, number> = {};
  for (const [key, value] of after) if (value !== (before.get(key) ?? 0) || keys.includes(key)) d[key] = value - (before.get(key) ?? 0);
  return d;
}

/** The samples of one metric family that moved. */
function family(d: Record<string, number>, name: string): Record<string, number> {
  return Object.fromEntries(Object.entries(d).filter(([k]) => k === name || k.startsWith(`${name}{`)));
}

const M = 'wsrelay_relay_';

@Controller()
class CalcController {
  static events = 0;

  @MessagePattern('add')
  add(@Payload() [a, b]: [number, number]): number {
    return a + b;
  }

  @EventPattern('metrics.tick')
  tick(@Payload() _n: number): void {
    CalcController.events++;
  }
}

describe('GET /metrics', () => {
  const { add, track } = useCleanup();

  /** A relay app on 127.0.0.1:0: its base URL, WebSocket URL and core. */
  async function relay(options: RelayModuleOptions = {}, appOptions: RelayAppOptions = {}) {
    const app = await createRelayApp({ startupGraceMs: 0, drainTimeoutMs: 0, ...options }, { logger: false, ...appOptions });
    await app.listen(0, '127.0.0.1');
    add(() => app.close());
    const { port } = (app.getHttpServer() as Server).address() as AddressInfo;
    const base = `http://127.0.0.1:${port}`;
    return {
      base,
      url: `ws://127.0.0.1:${port}/relay`,
      core: app.get(RelayCore),
      scrape: async (token?: string): Promise<Scrape> => {
        const res = await fetch(`${base}/metrics`, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });
        expect(res.status).toBe(200);
        return parse(await res.text());
      },
    };
  }

  it('N calls and M events move the request, event and frame counters and the duration histogram by exactly N and M', async () => {
    const r = await relay();
    CalcController.events = 0;
    track(await startProvider([CalcController], { urls: [r.url], nodeId: 'calc' }));
    const client = track(await startClient({ urls: [r.url], nodeId: 'caller' }));
    expect(await firstValueFrom(client.send<number>('add', [0, 0]))).toBe(0);
    const [N, EVENTS] = [7, 4];
    const before = await r.scrape();
    for (let i = 0; i < N; i++) expect(await firstValueFrom(client.send<number>('add', [i, 1]))).toBe(i + 1);
    for (let i = 0; i < EVENTS; i++) expect(await firstValueFrom(client.emit('metrics.tick', i))).toEqual({ recipients: 1 });
    await until(() => CalcController.events === EVENTS, 5000, 'the provider to handle every event');
    const d = moved(before, await r.scrape());
    expect(family(d, `${M}requests_total`)).toEqual({ [`${M}requests_total{outcome="ok"}`]: N });
    expect(d[`${M}requests_routed_total`]).toBe(N);
    expect(d[`${M}request_duration_seconds_count`]).toBe(N);
    expect(d[`${M}request_duration_seconds_bucket{le="+Inf"}`]).toBe(N);
    expect(d[`${M}request_duration_seconds_sum`]).toBeGreaterThan(0);
    expect(d[`${M}events_published_total`]).toBe(EVENTS);
    expect(d[`${M}events_delivered_total`]).toBe(EVENTS);
    expect(family(d, `${M}events_dropped_total`)).toEqual({});
    for (const type of ['request', 'event']) {
      expect(d[`${M}frames_received_total{type="${type}"}`]).toBe(type === 'request' ? N : EVENTS);
      expect(d[`${M}frames_sent_total{type="${type}"}`]).toBe(type === 'request' ? N : EVENTS);
    }
    // One RESPONSE per call (value and completion in one), passed on to its caller; an ACK per event.
    expect(d[`${M}frames_received_total{type="response"}`]).toBe(N);
    expect(d[`${M}frames_sent_total{type="response"}`]).toBe(N);
    expect(d[`${M}frames_sent_total{type="ack"}`]).toBe(EVENTS);
    expect(family(d, `${M}refusals_total`)).toEqual({});
  });

  it('an event nobody subscribes to, and a call nothing serves, are counted as such', async () => {
    const r = await relay();
    const caller = track(await RawNode.hello(r.url, 'lonely'));
    const before = await r.scrape();
    caller.send({
      type: FrameType.Event,
      id: 1,
      pattern: 'nobody.listens',
      payload: encodePayload(1),
      peer: null,
      ext: null,
      claims: null,
    });
    expect(await caller.next(answerTo(1))).toMatchObject({ type: FrameType.Ack, recipients: 0 });
    caller.send(request(2, 'nobody.serves'));
    expect(await caller.next(answerTo(2))).toMatchObject({ type: FrameType.Error, code: RelayErrorCode.MICROSERVICE_OFFLINE });
    const d = moved(before, await r.scrape());
    expect(d[`${M}events_published_total`]).toBe(1);
    expect(family(d, `${M}events_dropped_total`)).toEqual({ [`${M}events_dropped_total{reason="no_subscriber"}`]: 1 });
    expect(family(d, `${M}requests_total`)).toEqual({ [`${M}requests_total{outcome="microservice_offline"}`]: 1 });
    // Never routed: no duration.
    expect(d[`${M}request_duration_seconds_count`]).toBeUndefined();
  });

  it('refused upgrades are counted by reason: auth, forbidden origin, rate (per-address quota), unavailable (relay full)', async () => {
    // trustProxy: each connection's address is the X-Forwarded-For the test sends (documentation addresses, no traffic goes there).
    const r = await relay({
      auth: { secret: SECRET, issuer: ISSUER, audience: AUDIENCE },
      allowedOrigins: ['https://ok.example'],
      trustProxy: true,
      maxConnectionsPerIp: 1,
      maxConnections: 2,
    });
    const from = async (address: string) => ({ headers: { ...(await bearer({ claims: CLIENT })).headers, 'x-forwarded-for': address } });
    const before = await r.scrape();
    expect((await refusal(r.url)).status).toBe(401);
    expect((await refusal(r.url, await bearer('not-a-jwt'))).status).toBe(401);
    expect(
      (await refusal(r.url, await bearer(await mint({}, new TextEncoder().encode('another-secret-entirely!!!!!!!!!!!'))))).status,
    ).toBe(401);
    for (let i = 0; i < 2; i++)
      expect((await refusal(r.url, { ...(await from('192.0.2.9')), origin: 'https://evil.example' })).status).toBe(403);
    track(await RawNode.open(r.url, await from('192.0.2.1')));
    for (let i = 0; i < 2; i++) expect((await refusal(r.url, await from('192.0.2.1'))).status).toBe(429);
    track(await RawNode.open(r.url, await from('192.0.2.2')));
    expect((await refusal(r.url, await from('192.0.2.3'))).status).toBe(503);
    const d = moved(before, await r.scrape());
    expect(family(d, `${M}refusals_total`)).toEqual({
      [`${M}refusals_total{stage="upgrade",reason="auth"}`]: 3,
      [`${M}refusals_total{stage="upgrade",reason="forbidden"}`]: 2,
      [`${M}refusals_total{stage="upgrade",reason="rate"}`]: 2,
      [`${M}refusals_total{stage="upgrade",reason="unavailable"}`]: 1,
    });
    expect(family(d, `${M}connections_opened_total`)).toEqual({ [`${M}connections_opened_total{role="client"}`]: 2 });
    expect(family(d, `${M}connections`)).toEqual({ [`${M}connections{role="client"}`]: 2 });
  });

  it('refused frames are counted by reason: bad frame, size, forbidden, rate, auth, handshake', async () => {
    const r = await relay({
      // Server connections say so in a header (no auth here); the others are passive clients.
      isServerConnection: (_claims, req) => req.headers['x-role'] === 'server',
      maxInFlightPerConnection: 1,
      maxPayloadBytes: 1024,
    });
    const provider = track(await RawNode.hello(r.url, 'provider', { patterns: ['hold'], headers: { 'x-role': 'server' } }));
    const client = track(await RawNode.hello(r.url, 'client'));
    const stranger = track(await RawNode.open(r.url));
    const refused = async (node: RawNode, send: () => void, id: number, code: RelayErrorCode) => {
      send();
      expect(await node.next(answerTo(id))).toMatchObject({ type: FrameType.Error, code });
    };
    const before = await r.scrape();
    // bad_frame: a REQUEST before HELLO, bytes that are no frame, a text frame.
    await refused(stranger, () => stranger.send(request(1, 'hold')), 1, RelayErrorCode.BAD_FRAME);
    await refused(stranger, () => stranger.sendRaw(new Uint8Array([0x93, 0xff, 0xff])), 0, RelayErrorCode.BAD_FRAME);
    await refused(stranger, () => stranger.sendRaw('text'), 0, RelayErrorCode.BAD_FRAME);
    // size: twice a frame over maxPayloadBytes.
    for (const id of [2, 3])
      await refused(
        client,
        () => client.send(request(id, 'hold', 5000, { payload: new Uint8Array(1500) })),
        id,
        RelayErrorCode.PAYLOAD_TOO_LARGE,
      );
    // forbidden: a passive client answering a request, twice.
    const answer = (id: number): ResponseFrame => ({ type: FrameType.Response, id, flags: 1, payload: null });
    for (const id of [4, 5]) await refused(client, () => client.send(answer(id)), id, RelayErrorCode.FORBIDDEN);
    // rate: one call in flight (the provider holds it), the next two over maxInFlightPerConnection.
    client.send(request(6, 'hold'));
    await provider.next(isRequest);
    for (const id of [7, 8]) await refused(client, () => client.send(request(id, 'hold')), id, RelayErrorCode.RATE_LIMITED);
    // auth: a token refresh on a relay without auth.
    await refused(
      client,
      () => client.send({ type: FrameType.Auth, token: new TextEncoder().encode('x.y.z') }),
      0,
      RelayErrorCode.UNAUTHORIZED,
    );
    // handshake: a HELLO in no protocol version the relay speaks.
    const old = track(await RawNode.open(r.url));
    await refused(old, () => old.send(helloFrame('old', { versions: [999] })), 0, RelayErrorCode.PROTOCOL_MISMATCH);
    const d = moved(before, await r.scrape());
    expect(family(d, `${M}refusals_total`)).toEqual({
      [`${M}refusals_total{stage="frame",reason="bad_frame"}`]: 3,
      [`${M}refusals_total{stage="frame",reason="size"}`]: 2,
      [`${M}refusals_total{stage="frame",reason="forbidden"}`]: 2,
      [`${M}refusals_total{stage="frame",reason="rate"}`]: 2,
      [`${M}refusals_total{stage="frame",reason="auth"}`]: 1,
      [`${M}refusals_total{stage="frame",reason="handshake"}`]: 1,
    });
    expect(d[`${M}frames_sent_total{type="error"}`]).toBe(11);
    // The one call let through is in flight, not ended.
    expect(d[`${M}requests_routed_total`]).toBe(1);
    expect(family(d, `${M}requests_total`)).toEqual({});
    expect(d[`${M}in_flight`]).toBe(1);
  });

  it('a handler-acked copy that its queue member does not confirm moves to another: one redelivery', async () => {
    const r = await relay({ eventAckTimeoutMs: 150 });
    const members = [
      track(await RawNode.hello(r.url, 'w1', { events: ['jobs'], queue: 'workers' })),
      track(await RawNode.hello(r.url, 'w2', { events: ['jobs'], queue: 'workers' })),
    ];
    const emitter = track(await RawNode.hello(r.url, 'emitter'));
    const before = await r.scrape();
    const job: EventFrame = {
      type: FrameType.Event,
      id: 1,
      pattern: 'jobs',
      payload: encodePayload('x'),
      peer: null,
      ext: null,
      claims: null,
    };
    emitter.send({ ...job, flags: EventFlag.ACK_HANDLERS });
    const isJob = (f: Frame) => f.type === FrameType.Event;
    // The first member it goes to stays silent; the copy moves to the other, which confirms it.
    await until(() => members.some(m => m.frames.some(isJob)), 5000, 'the first copy');
    const other = members.find(m => !m.frames.some(isJob))!;
    const copy = (await other.next(isJob, 5000)) as EventFrame;
    expect(copy.attempt).toBe(2);
    other.send({ type: FrameType.Handled, id: copy.id, error: null });
    expect(await emitter.next(answerTo(1))).toMatchObject({ type: FrameType.Ack, recipients: 1 });
    const d = moved(before, await r.scrape());
    expect(d[`${M}event_redeliveries_total`]).toBe(1);
    expect(d[`${M}events_published_total`]).toBe(1);
    expect(d[`${M}events_delivered_total`]).toBe(2);
    expect(family(d, `${M}events_dropped_total`)).toEqual({});
  });

  it('a subscriber that stops reading is closed as a slow consumer: counted once, and every event is delivered or dropped', async () => {
    const r = await relay({ maxBufferedBytes: 64 * 1024, heartbeatIntervalMs: 60_000 });
    const stalled = track(await RawNode.hello(r.url, 'stalled', { events: ['flood'] }));
    stalled.socket.on('error', () => undefined);
    const emitter = track(await RawNode.hello(r.url, 'flooder'));
    const before = await r.scrape();
    stalled.tcp!.pause();
    const chunk = new Uint8Array(32 * 1024);
    let sent = 0;
    const closed = () => r.core.nodeDiagnostics('stalled')?.closedAsSlowConsumer !== false;
    while (!closed()) {
      if (++sent > 5000) throw new Error('the relay never closed the stalled subscriber');
      emitter.send({ type: FrameType.Event, id: sent, pattern: 'flood', payload: chunk, peer: null, ext: null, claims: null });
      await emitter.next(answerTo(sent));
    }
    // Reading again, it finds its close behind what was queued; once it is gone, one more event reaches nobody.
    stalled.tcp!.resume();
    await until(() => r.core.nodeDiagnostics('stalled') === undefined, 5000, 'the stalled subscriber to be let go');
    emitter.send({ type: FrameType.Event, id: ++sent, pattern: 'flood', payload: chunk, peer: null, ext: null, claims: null });
    await emitter.next(answerTo(sent));
    const d = moved(before, await r.scrape(), [`${M}events_delivered_total`]);
    expect(d[`${M}slow_consumer_closes_total`]).toBe(1);
    expect(d[`${M}events_published_total`]).toBe(sent);
    const dropped = family(d, `${M}events_dropped_total`);
    expect(dropped[`${M}events_dropped_total{reason="no_subscriber"}`]).toBeGreaterThanOrEqual(1);
    const total = d[`${M}events_delivered_total`] + Object.values(dropped).reduce((a, b) => a + b, 0);
    expect(total).toBe(sent);
  }, 30_000);

  it('with a metrics token: 401 without it or with another, the metrics with it, and Node process metrics among them', async () => {
    const token = 'scraper-token-0123456789';
    const r = await relay({}, { metricsToken: token });
    for (const auth of [undefined, 'Bearer wrong', `Bearer ${token}x`, token]) {
      const res = await fetch(`${r.base}/metrics`, auth === undefined ? {} : { headers: { authorization: auth } });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer realm="relay metrics"');
      expect(await res.text()).not.toMatch(/wsrelay_relay_|process_/);
    }
    const res = await fetch(`${r.base}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const samples = parse(await res.text());
    for (const name of [
      'process_cpu_user_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_seconds',
      'nodejs_heap_size_used_bytes',
    ]) {
      expect(samples.get(name)).toBeGreaterThanOrEqual(0);
    }
    expect(samples.get(`${M}ready`)).toBe(1);
    expect(samples.get(`${M}draining`)).toBe(0);
    expect(samples.get(`${M}cluster_backplane_up`)).toBe(1);
  });

  it('metricsPath moves it or turns it off; processMetrics: false leaves Node metrics out', async () => {
    const moved = await relay({}, { metricsPath: '/internal/metrics', processMetrics: false });
    expect((await fetch(`${moved.base}/metrics`)).status).toBe(404);
    const text = await (await fetch(`${moved.base}/internal/metrics`)).text();
    expect(text).toContain(`${M}requests_routed_total 0`);
    expect(text).not.toContain('process_cpu_user_seconds_total');
    const none = await relay({}, { metricsPath: false });
    expect((await fetch(`${none.base}/metrics`)).status).toBe(404);
  });
});
