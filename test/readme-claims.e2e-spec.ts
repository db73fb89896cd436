/**
 * README claims of the transport (a client, a provider, their context and
 * options) that no other spec backs, each on real relays, microservices and
 * sockets. The README line each test backs is in its name; /tmp/readme-claims.md
 * (the audit) lists what backs the others.
 */
import { expect } from '@jest/globals';
import { Controller, Inject, type LoggerService, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, EventPattern, MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import { CloseCode, FrameCodec, FrameType, RelayErrorCode } from '@wsrelay/protocol';
import { RelayCore } from '@wsrelay/relay';
import { RelayError, WsRelayClient, type WsRelayContext, WsRelayRecordBuilder, WsRelayStrategy } from '@wsrelay/transport';
import type { AddressInfo } from 'node:net';
import { firstValueFrom } from 'rxjs';
import { type WebSocket, WebSocketServer } from 'ws';
import { rejection, type RunningRelay, startClient, startProvider, startRelay, until, useCleanup } from './support/harness.js';
import { CutOffProxy, freePort } from './support/redis.js';

const NODE = Symbol('node');
/** What handlers saw, in order. */
const seen: Array<{ node: string; what: string; ctx?: WsRelayContext; reason?: unknown }> = [];
/** Releases of held event handlers. */
const releases: Array<() => void> = [];

@Controller()
class ProbeController {
  constructor(@Inject(NODE) private readonly node: string) {}

  @MessagePattern('who')
  who(@Ctx() ctx: WsRelayContext) {
    seen.push({ node: this.node, what: 'who', ctx });
    return this.node;
  }

  /** Waits until its call is abandoned, then rejects with the abort reason itself (as fetch() does). */
  @MessagePattern('abandon')
  abandon(@Payload() key: string, @Ctx() ctx: WsRelayContext) {
    return untilAborted(this.node, key, ctx, false);
  }

  /** The same, but returns when the error is the abort reason (the README's idiom). */
  @MessagePattern('abandon.quietly')
  abandonQuietly(@Payload() key: string, @Ctx() ctx: WsRelayContext) {
    return untilAborted(this.node, key, ctx, true);
  }

  @MessagePattern('fail')
  fail() {
    throw new RpcException('refused');
  }

  @EventPattern<string>('jobs.*')
  async job(@Payload() data: { hold?: boolean }, @Ctx() ctx: WsRelayContext) {
    if (data.hold) await new Promise<void>(resolve => releases.push(resolve));
    seen.push({ node: this.node, what: ctx.getPattern(), ctx });
  }
}

async function untilAborted(node: string, key: string, ctx: WsRelayContext, quiet: boolean): Promise<string> {
  seen.push({ node, what: `abandon:${key}` });
  try {
    return await new Promise<never>((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error)));
  } catch (err) {
    seen.push({ node, what: `aborted:${key}`, reason: err });
    if (quiet && err === ctx.signal.reason) return 'quiet';
    throw err;
  }
}

const provider = (url: string, nodeId: string, extra: Record<string, unknown> = {}) =>
  startProvider([ProbeController], { urls: [url], nodeId, ...extra }, [{ provide: NODE, useValue: nodeId }]);

/** A WebSocket server speaking just enough of the protocol: `onHello` answers (or not) each HELLO. */
async function fakeRelay(onHello: (send: (f: Parameters<FrameCodec['encode']>[0]) => void, ws: WebSocket) => void, autoPong = true) {
  const codec = new FrameCodec();
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, autoPong });
  await new Promise(resolve => server.once('listening', resolve));
  const sockets: Array<{ openedAt: number; closedAt?: number }> = [];
  let frames = 0;
  server.on('connection', ws => {
    const s: { openedAt: number; closedAt?: number } = { openedAt: Date.now() };
    sockets.push(s);
    ws.on('close', () => (s.closedAt = Date.now()));
    ws.on('message', (data: Buffer) => {
      frames++;
      if (codec.decode(data).type === FrameType.Hello) onHello(f => ws.send(codec.encode(f)), ws);
    });
  });
  return {
    url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}/relay`,
    sockets,
    frames: () => frames,
    close: () => {
      for (const ws of server.clients) ws.terminate();
      return new Promise(resolve => server.close(resolve));
    },
  };
}

/** WELCOME as a relay sends it, with the heartbeat interval given. */
const welcome = (heartbeatIntervalMs = 10_000) =>
  ({
    type: FrameType.Welcome,
    version: 1,
    relayId: 'fake',
    sessionId: 's',
    nodeId: 'n',
    maxPayloadBytes: 1 << 20,
    heartbeatIntervalMs,
  }) as const;

describe('README claims: client, provider, context', () => {
  const { add, track } = useCleanup();
  afterEach(() => {
    for (const r of releases.splice(0)) r();
    seen.length = 0;
  });

  async function mesh(options: Parameters<typeof startRelay>[0] = {}): Promise<{ relay: RunningRelay; client: WsRelayClient }> {
    const relay = track(await startRelay(options));
    track(await provider(relay.url, 'p1'));
    return { relay, client: track(await startClient({ urls: [relay.url] })) };
  }

  it('L207: a provider is routed as soon as app.listen() resolves (the relay has welcomed it)', async () => {
    const relay = track(await startRelay());
    const core = relay.app.get(RelayCore);
    expect(core.nodeDiagnostics('fresh')).toBeUndefined();
    track(await provider(relay.url, 'fresh'));
    expect(core.nodeDiagnostics('fresh')).toMatchObject({ local: true, routed: true });
  });

  it('L372-375: getHeaders() is {} without headers, getAttempt() is 1 for requests and first deliveries, getDeadline() undefined for events', async () => {
    const { client } = await mesh();
    expect(await firstValueFrom(client.send('who', 1))).toBe('p1');
    await firstValueFrom(client.emit('jobs.ctx', {}));
    await until(() => seen.length === 2, 5000, 'the call and the event');
    const [call, event] = seen.map(s => s.ctx!);
    expect([call.getHeaders(), call.getAttempt(), typeof call.getDeadline()]).toEqual([{}, 1, 'number']);
    expect([event.getHeaders(), event.getAttempt(), event.getDeadline()]).toEqual([{}, 1, undefined]);
  });

  it('L294-297: each (de)serializer gets the packet the table names (events have no id; a failure carries err)', async () => {
    const relay = track(await startRelay());
    const got: Record<string, string[][]> = {};
    const spy = (side: string) => (p: object) => ((got[side] ??= []).push(Object.keys(p).sort()), p);
    const ms = { serializer: { serialize: spy('ms.ser') }, deserializer: { deserialize: spy('ms.de') } };
    track(await provider(relay.url, 'ser', ms));
    const cl = { serializer: { serialize: spy('cl.ser') }, deserializer: { deserialize: spy('cl.de') } };
    const client = track(await startClient({ urls: [relay.url], ...cl }));
    client.setOnDispatchHook(p => void (p.metadata = { trace: 't' }));
    await firstValueFrom(client.send('who', 1));
    await rejection(firstValueFrom(client.send('fail', 1)));
    await firstValueFrom(client.emit('jobs.shape', {}));
    await until(() => got['ms.de']?.length === 3, 5000, 'the event at the provider');
    expect(got['cl.ser']).toEqual(Array(3).fill(['data', 'metadata', 'pattern']));
    expect(got['ms.de']).toEqual([...new Array<string[]>(2).fill(['data', 'id', 'metadata', 'pattern']), ['data', 'metadata', 'pattern']]);
    // Each a WritePacket: an id, the response or the error, and whether it is the last.
    for (const side of ['ms.ser', 'cl.de']) {
      expect(got[side]).toHaveLength(2);
      const [ok, failed] = got[side];
      expect(ok).toEqual(expect.arrayContaining(['id', 'response']));
      expect(failed).toEqual(expect.arrayContaining(['err']));
      expect(failed).not.toContain('response');
      for (const keys of got[side]) expect(keys.filter(k => !['id', 'response', 'err', 'isDisposed'].includes(k))).toEqual([]);
    }
  });

  it("L321-322: emit() completes by default once the relay counted the recipients (ack 'relay'), the handler still running", async () => {
    const { client } = await mesh();
    expect(await firstValueFrom(client.emit('jobs.held', { hold: true }))).toEqual({ recipients: 1 });
    await until(() => releases.length === 1, 5000, 'the handler to start');
    expect(seen).toEqual([]);
    releases.shift()!();
    await until(() => seen.length === 1, 5000, 'the handler to finish');
  });

  it('L344-346, L394, L452-454: close() routes nothing new to the provider, aborts a handler past drainTimeoutMs (PROVIDER_DISCONNECTED); 0 closes at once', async () => {
    const relay = track(await startRelay());
    const leaving = await provider(relay.url, 'leaving', { drainTimeoutMs: 400 });
    track(await provider(relay.url, 'staying'));
    const client = track(await startClient({ urls: [relay.url] }));
    const held = rejection(firstValueFrom(client.send('abandon', new WsRelayRecordBuilder('held').setNodeId('leaving').build())));
    await until(() => seen.length === 1, 5000, 'the held handler');
    const startedAt = Date.now();
    const closing = leaving.close().then(() => Date.now() - startedAt);
    await until(() => relay.app.get(RelayCore).nodeDiagnostics('leaving')?.routed === false, 5000, 'the drain');
    const during = await Promise.all([1, 2, 3, 4].map(i => firstValueFrom(client.send<string>('who', i))));
    expect(during).toEqual(Array(4).fill('staying'));
    expect(await firstValueFrom(client.emit('jobs.during', {}))).toEqual({ recipients: 1 });
    expect(await closing).toBeGreaterThanOrEqual(350);
    expect(seen.find(s => s.what === 'aborted:held')?.reason).toMatchObject({ code: RelayErrorCode.PROVIDER_DISCONNECTED, status: 502 });
    expect(await held).toMatchObject({ code: RelayErrorCode.PROVIDER_DISCONNECTED });
    await until(() => seen.some(s => s.what === 'jobs.during'), 5000, 'the event');
    expect(seen.filter(s => s.node === 'leaving').map(s => s.what)).toEqual(['abandon:held', 'aborted:held']);
    // drainTimeoutMs: 0 closes at once, in-flight handler aborted.
    const quick = await provider(relay.url, 'quick', { drainTimeoutMs: 0 });
    const cut = rejection(firstValueFrom(client.send('abandon', new WsRelayRecordBuilder('cut').setNodeId('quick').build())));
    await until(() => seen.some(s => s.what === 'abandon:cut'), 5000, 'the second handler');
    const at = Date.now();
    await quick.close();
    expect(Date.now() - at).toBeLessThan(1000);
    expect(await cut).toMatchObject({ code: RelayErrorCode.PROVIDER_DISCONNECTED });
  });

  it('L399-401: Nest logs a handler rejecting with the abort reason; `if (err === ctx.signal.reason) return;` avoids it', async () => {
    const relay = track(await startRelay());
    const errors: string[] = [];
    const logger: LoggerService = { log: () => undefined, warn: () => undefined, error: (m: unknown) => void errors.push(String(m)) };
    @Module({ controllers: [ProbeController], providers: [{ provide: NODE, useValue: 'logged' }] })
    class LoggedModule {}
    const app = await NestFactory.createMicroservice(LoggedModule, { strategy: new WsRelayStrategy({ urls: [relay.url] }), logger });
    await app.listen();
    add(() => app.close());
    const client = track(await startClient({ urls: [relay.url] }));
    const abandon = async (pattern: string, key: string) => {
      const sub = client.send(pattern, key).subscribe({ error: () => undefined });
      await until(() => seen.some(s => s.what === `abandon:${key}`), 5000, `the ${key} handler`);
      sub.unsubscribe();
      await until(() => seen.some(s => s.what === `aborted:${key}`), 5000, `the ${key} abort`);
    };
    await abandon('abandon', 'loud');
    await until(() => errors.length === 1, 5000, 'the log of the first');
    expect(errors[0]).toMatch(/The caller of "abandon" cancelled the call/);
    await abandon('abandon.quietly', 'quiet');
    // Logged, as the first was, after its handler's abort: any log of the quiet one would have come before it.
    await abandon('abandon', 'loud-again');
    await until(() => errors.length >= 2, 5000, 'the log of the third');
    expect(errors.filter(e => e.includes('abandon.quietly'))).toEqual([]);
  });

  it('L411-425, L417: RelayErrors carry the statuses of the table; data MessagePack cannot encode fails with BAD_FRAME (400)', async () => {
    const table: Array<[RelayErrorCode, number]> = [
      [RelayErrorCode.MICROSERVICE_OFFLINE, 503],
      [RelayErrorCode.PROVIDER_DISCONNECTED, 502],
      [RelayErrorCode.TIMEOUT, 504],
      [RelayErrorCode.RELAY_UNAVAILABLE, 503],
      [RelayErrorCode.BAD_FRAME, 400],
      [RelayErrorCode.PAYLOAD_TOO_LARGE, 413],
      [RelayErrorCode.PROTOCOL_MISMATCH, 426],
      [RelayErrorCode.NODE_ID_CONFLICT, 409],
      [RelayErrorCode.UNAUTHORIZED, 401],
      [RelayErrorCode.FORBIDDEN, 403],
      [RelayErrorCode.RATE_LIMITED, 429],
      [RelayErrorCode.HANDLER_FAILED, 500],
      [RelayErrorCode.CLOSED, 499],
    ];
    for (const [code, status] of table) expect([code, new RelayError(code, 'x').status]).toEqual([code, status]);
    const { client } = await mesh();
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    const err = await rejection(firstValueFrom(client.send('who', circular)));
    expect(err).toBeInstanceOf(RelayError);
    expect(err).toMatchObject({
      code: RelayErrorCode.BAD_FRAME,
      status: 400,
      message: expect.stringMatching(/cannot be encoded as MessagePack/),
    });
  });

  it("L284: client.on('error') reports a failure retrying cannot fix", async () => {
    const fake = await fakeRelay((send, ws) => {
      send({ type: FrameType.Error, id: 0, code: RelayErrorCode.PROTOCOL_MISMATCH, message: 'speaks 99' });
      ws.close(CloseCode.PROTOCOL_MISMATCH, 'speaks 99');
    });
    add(() => fake.close());
    const client = track(new WsRelayClient({ urls: [fake.url] }));
    const errors: unknown[] = [];
    client.on('error', err => errors.push(err));
    expect(await rejection(client.connect())).toMatchObject({ code: RelayErrorCode.PROTOCOL_MISMATCH });
    expect(errors).toEqual([expect.objectContaining({ code: RelayErrorCode.PROTOCOL_MISMATCH, message: 'speaks 99' })]);
  });

  it('L648-649: a waitFor() in progress fails with RELAY_UNAVAILABLE when the relay connection drops', async () => {
    const relay = await startRelay();
    add(() => relay.close());
    const client = track(await startClient({ urls: [relay.url] }));
    const waiting = rejection(client.waitFor('nobody.yet', 20_000));
    await until(() => relay.app.get(RelayCore).diagnostics().waits.waits === 1, 5000, 'the WAIT at the relay');
    await relay.close();
    expect(await waiting).toMatchObject({ code: RelayErrorCode.RELAY_UNAVAILABLE });
  });

  it("L442: a node on default options takes the relay's shorter heartbeat interval and drops a silent relay within a few of them", async () => {
    // A relay that welcomes with a 100 ms interval, then says nothing and answers no ping.
    const fake = await fakeRelay(send => send(welcome(100)), false);
    add(() => fake.close());
    const client = track(new WsRelayClient({ urls: [fake.url], reconnect: { initialDelayMs: 10, maxDelayMs: 20 } }));
    const lost: number[] = [];
    client.on('disconnected', () => lost.push(Date.now()));
    await client.connect();
    const at = Date.now();
    await until(() => lost.length > 0, 3000, 'the node to take the silent relay for dead');
    expect(lost[0] - at).toBeLessThan(2000);
  });

  it('L444: handshakeTimeoutMs bounds how long the relay may take to answer HELLO', async () => {
    const fake = await fakeRelay(() => undefined);
    add(() => fake.close());
    const client = track(new WsRelayClient({ urls: [fake.url], handshakeTimeoutMs: 200, connectTimeoutMs: 1500 }));
    const err = await rejection(client.connect());
    expect(err).toMatchObject({
      code: RelayErrorCode.RELAY_UNAVAILABLE,
      message: expect.stringMatching(/did not answer HELLO within 200 ms/),
    });
    const first = fake.sockets[0];
    expect(first.closedAt! - first.openedAt).toBeGreaterThanOrEqual(150);
    expect(first.closedAt! - first.openedAt).toBeLessThan(1000);
    expect(fake.sockets.length).toBeGreaterThan(1);
  });

  it('L458: maxInFlight (10000 by default) counts calls, emits, WAITs and discoveries; more fail at once with RATE_LIMITED', async () => {
    const fake = await fakeRelay(send => send(welcome())); // welcomes, then answers nothing
    add(() => fake.close());
    const small = track(await startClient({ urls: [fake.url], maxInFlight: 4 }));
    const quiet = (p: Promise<unknown>) => void p.catch(() => undefined);
    [firstValueFrom(small.send('a', 1)), firstValueFrom(small.emit('b', 1)), small.waitFor('c'), small.discover()].forEach(quiet);
    await until(() => fake.frames() === 5, 5000, 'HELLO and the four frames at the relay');
    for (const over of [firstValueFrom(small.send('d', 1)), firstValueFrom(small.emit('e', 1)), small.waitFor('f'), small.discover()]) {
      expect(await rejection(over)).toMatchObject({
        code: RelayErrorCode.RATE_LIMITED,
        message: expect.stringMatching(/4 requests are already/),
      });
    }
    const big = track(await startClient({ urls: [fake.url] }));
    for (let i = 0; i < 10_000; i++) big.send('x', i).subscribe({ error: () => undefined });
    const err = await rejection(firstValueFrom(big.send('x', 10_000)));
    expect(err).toMatchObject({ code: RelayErrorCode.RATE_LIMITED, message: expect.stringMatching(/10000 requests are already/) });
  });

  /** Sends `data` to `pattern` and says whether the call was refused with RATE_LIMITED before send() returned. */
  function refusedAtOnce(client: WsRelayClient, data: string): boolean {
    let sync = true;
    let refused = false;
    client.send('who', data).subscribe({ error: (e: RelayError) => void (refused ||= sync && e.code === RelayErrorCode.RATE_LIMITED) });
    sync = false;
    return refused;
  }

  it('L459-462: maxBufferedBytes (16 MiB by default) counts frames written earlier in the same turn; past it waitFor() fails too', async () => {
    const { relay } = await mesh();
    const tight = track(await startClient({ urls: [relay.url], maxBufferedBytes: 64 * 1024 }));
    // One turn of the event loop: nothing reaches the operating system before it ends.
    const sameTurn = Array.from({ length: 8 }, () => refusedAtOnce(tight, 'x'.repeat(16 * 1024)));
    expect(sameTurn).toEqual([false, false, false, false, true, true, true, true]);
    // The default, on a connection whose relay stopped reading: one 512 KiB call per turn until one is refused.
    const proxy = track(await CutOffProxy.start(relay.url));
    const client = track(await startClient({ urls: [`ws://127.0.0.1:${proxy.port}/relay`] }));
    await client.waitFor('who');
    proxy.freeze();
    let sent = 0;
    while (!refusedAtOnce(client, 'y'.repeat(512 * 1024)) && sent < 200) {
      sent++;
      await new Promise(resolve => setImmediate(resolve));
    }
    expect(client.unwrap<{ bufferedAmount: number }>().bufferedAmount).toBeGreaterThan(16 * 1024 * 1024);
    expect(sent).toBeGreaterThan(32);
    expect(await rejection(client.waitFor('who'))).toMatchObject({
      code: RelayErrorCode.RATE_LIMITED,
      message: expect.stringMatching(/\(over 16777216\)/),
    });
  });

  it('L437, L443-448, L453: defaults: handshake 5 s, connect 10 s, offline queue 1000, backoff 100 ms x2 to 5 s (half jitter), provider drain 10 s', async () => {
    // Three clocks at once: a relay that never answers HELLO, a port nobody listens on, a provider closing with a call in flight.
    const silent = await fakeRelay(() => undefined);
    add(() => silent.close());
    const connectAt = Date.now();
    const handshake = rejection(track(new WsRelayClient({ urls: [silent.url] })).connect()).then(err => ({
      err,
      ms: Date.now() - connectAt,
    }));
    const offline = track(new WsRelayClient({ urls: [`ws://127.0.0.1:${await freePort()}/relay`] }));
    const delays: number[] = [];
    offline.on('reconnecting', (_attempt, ms) => delays.push(ms));
    const queued = Array.from({ length: 1000 }, (_, i) => rejection(firstValueFrom(offline.send('x', i))));
    const overAt = Date.now();
    expect(await rejection(firstValueFrom(offline.send('x', 1000)))).toMatchObject({
      code: RelayErrorCode.RELAY_UNAVAILABLE,
      message: expect.stringMatching(/1000 calls are already waiting for a connection \(maxOfflineQueue\)/),
    });
    expect(Date.now() - overAt).toBeLessThan(1000);
    const { relay, client } = await mesh();
    const leaving = await provider(relay.url, 'drains');
    const held = rejection(firstValueFrom(client.send('abandon', new WsRelayRecordBuilder('slow').setNodeId('drains').build())));
    await until(() => seen.some(s => s.what === 'abandon:slow'), 5000, 'the held handler');
    const closeAt = Date.now();
    const closed = leaving.close().then(() => Date.now() - closeAt);

    const { err, ms } = await handshake;
    expect(err).toMatchObject({ code: RelayErrorCode.RELAY_UNAVAILABLE, message: expect.stringMatching(/none within 10000 ms/) });
    expect(ms).toBeGreaterThanOrEqual(9900);
    const first = silent.sockets[0];
    expect(first.closedAt! - first.openedAt).toBeGreaterThanOrEqual(4900);
    expect(first.closedAt! - first.openedAt).toBeLessThan(6000);
    expect(await queued[999]).toMatchObject({
      code: RelayErrorCode.RELAY_UNAVAILABLE,
      message: expect.stringMatching(/none within 10000 ms/),
    });
    expect(delays.length).toBeGreaterThanOrEqual(7);
    delays.forEach((d, i) => {
      const nominal = Math.min(100 * 2 ** i, 5000);
      expect([i, d >= Math.floor(nominal / 2) && d <= nominal]).toEqual([i, true]);
    });
    expect(await closed).toBeGreaterThanOrEqual(9900);
    expect(await held).toMatchObject({ code: RelayErrorCode.PROVIDER_DISCONNECTED });
  }, 30_000);
});
