/**
 * @wsrelay/client, the browser-safe client, against real relays and real Nest
 * providers (with `ws`'s WebSocket: Node 20 has no global one): calls,
 * streams with credit and cancellation, signals, deadlines, handler errors
 * (the same objects WsRelayClient rejects with), events both ways, waitFor,
 * discover, reconnects with a fresh token, and against a bare `ws` server
 * playing the relay: a WELCOME of a version never offered, GOAWAY, a relay
 * that goes silent.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Controller } from '@nestjs/common';
import { Ctx, EventPattern, MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import { RelayClient, type RelayClientEvents, type RelayClientOptions, RelayError, RelayErrorCode } from '@wsrelay/client';
import { CloseCode, type Frame, FrameCodec, FrameType, ResponseFlag, encodePayload } from '@wsrelay/protocol';
import { type WsRelayClient, WsRelayContext } from '@wsrelay/transport';
import { EventEmitter, once } from 'node:events';
import { execFile } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { setTimeout as delay } from 'node:timers/promises';
import { firstValueFrom, finalize, interval, type Observable, range } from 'rxjs';
import WebSocket, { WebSocketServer } from 'ws';
import { rejection, type RunningRelay, startClient, startProvider, startRelay, until, useCleanup } from './support/harness.js';
import { AUDIENCE, CLIENT, ISSUER, mint, SECRET, SERVER } from './support/tokens.js';

/** What the handlers saw: `started:<key>` as one begins, `aborted:<key>` when its signal aborts, `unsubscribed:<key>`. */
const probe = new EventEmitter();
/** Events the provider handled: subject, data and headers. */
const handled: Array<{ subject: string; data: unknown; headers: Record<string, string> }> = [];

@Controller()
class ClientController {
  @MessagePattern('greet')
  greet(@Payload() name: string | null): string {
    return `Hello, ${name ?? 'nobody'}!`;
  }

  @MessagePattern({ cmd: 'sum' })
  sum(@Payload() values: number[]): number {
    return values.reduce((a, b) => a + b, 0);
  }

  @MessagePattern('headers')
  headers(@Payload() _: unknown, @Ctx() ctx: WsRelayContext): { headers: Record<string, string>; caller: string | null } {
    return { headers: ctx.getHeaders(), caller: ctx.getCallerId() };
  }

  @MessagePattern('count')
  async *count(@Payload() n: number): AsyncGenerator<number> {
    for (let i = 0; i < n; i++) yield i;
  }

  @MessagePattern('count.observable')
  countObservable(@Payload() n: number): Observable<number> {
    return range(0, n);
  }

  /** Yields until its signal aborts. */
  @MessagePattern('endless')
  async *endless(@Payload() key: string, @Ctx() ctx: WsRelayContext): AsyncGenerator<number> {
    ctx.signal.addEventListener('abort', () => probe.emit(`aborted:${key}`, ctx.signal.reason));
    for (let i = 0; !ctx.signal.aborted; i++) {
      yield i;
      await delay(1);
    }
  }

  @MessagePattern('endless.observable')
  endlessObservable(@Payload() key: string): Observable<number> {
    return interval(1).pipe(finalize(() => probe.emit(`unsubscribed:${key}`)));
  }

  /** Waits (a minute at most) on a timer that observes the call's signal. */
  @MessagePattern('wait')
  async wait(@Payload() key: string, @Ctx() ctx: WsRelayContext): Promise<string> {
    ctx.signal.addEventListener('abort', () => probe.emit(`aborted:${key}`, ctx.signal.reason));
    probe.emit(`started:${key}`);
    await delay(60_000, undefined, { signal: ctx.signal, ref: false });
    return 'waited a minute';
  }

  @MessagePattern('fail')
  fail(): never {
    throw new RpcException({ code: 'NOPE', message: 'not today' });
  }

  @MessagePattern('crash')
  crash(): never {
    throw new Error('secret detail');
  }

  @EventPattern<string>('orders.*')
  onOrder(@Payload() data: { fail?: boolean }, @Ctx() ctx: WsRelayContext): void {
    handled.push({ subject: ctx.getPattern(), data, headers: ctx.getHeaders() });
    probe.emit('handled', ctx.getPattern());
    if (data?.fail) throw new RpcException({ code: 'ORDER_REJECTED' });
  }
}

const run = promisify(execFile);
const FAST_RECONNECT = { initialDelayMs: 20, maxDelayMs: 200 };

/** A client with `ws`'s WebSocket and fast retries; closed after the test when `track` is given. */
function client(options: Partial<RelayClientOptions> & Pick<RelayClientOptions, 'url'>): RelayClient {
  return new RelayClient({ WebSocket, reconnect: FAST_RECONNECT, ...options });
}

/** Resolves with the arguments of the client's next `event`. */
function next<K extends keyof RelayClientEvents>(c: RelayClient, event: K): Promise<Parameters<RelayClientEvents[K]>> {
  return new Promise(resolve => {
    const off = c.on(event, ((...args: Parameters<RelayClientEvents[K]>) => {
      off();
      resolve(args);
    }) as RelayClientEvents[K]);
  });
}

async function collect<T>(values: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const v of values) out.push(v);
  return out;
}

const codeOf = (err: unknown) => (err as RelayError).code;

describe('@wsrelay/client with a relay and a Nest provider', () => {
  let relay: RunningRelay;
  let c: RelayClient;
  let nest: WsRelayClient;
  const cleanup = useCleanup();

  beforeAll(async () => {
    relay = await startRelay();
    await startProvider([ClientController], { urls: [relay.url], nodeId: 'provider-1', drainTimeoutMs: 0 }).then(p =>
      afterAllClose.push(() => p.close()),
    );
    c = client({ url: relay.url, nodeId: 'browser-1' });
    await c.connect();
    nest = await startClient({ urls: [relay.url] });
  });
  const afterAllClose: Array<() => Promise<void>> = [];

  afterAll(async () => {
    await c?.close();
    await nest?.close();
    for (const close of afterAllClose) await close();
    await relay?.close();
  });

  it('connects, and calls with string and object patterns, headers and no data', async () => {
    expect(c.state).toBe('connected');
    expect(c.nodeId).toBe('browser-1');
    expect(await c.call<string>('greet', 'Ada')).toBe('Hello, Ada!');
    expect(await c.call<string>('greet')).toBe('Hello, nobody!');
    expect(await c.call<number>({ cmd: 'sum' }, [1, 2, 3])).toBe(6);
    expect(await c.call('headers', 1, { headers: { 'x-trace': 'abc' } })).toEqual({ headers: { 'x-trace': 'abc' }, caller: 'browser-1' });
  });

  it('streams an async generator and an Observable, with flow control (a window of 4 over 200 values)', async () => {
    const small = cleanup.track(client({ url: relay.url, streamWindow: 4 }));
    const indexes = [...Array(200).keys()];
    expect(await collect(small.stream<number>('count', 200))).toEqual(indexes);
    expect(await collect(small.stream<number>('count.observable', 200))).toEqual(indexes);
    expect(await collect(c.stream<number>('count', 0))).toEqual([]);
    // Each iteration is a call of its own.
    const twice = c.stream<number>('count', 3);
    expect([await collect(twice), await collect(twice)]).toEqual([
      [0, 1, 2],
      [0, 1, 2],
    ]);
  });

  it('stops the provider when the reader breaks out early: its signal aborts, its Observable is unsubscribed', async () => {
    const aborted = once(probe, 'aborted:break');
    for await (const v of c.stream<number>('endless', 'break')) if (v >= 2) break;
    const [reason] = (await aborted) as [RelayError];
    expect(reason.code).toBe(RelayErrorCode.CLOSED);

    const unsubscribed = once(probe, 'unsubscribed:break-obs');
    const seen: number[] = [];
    for await (const v of c.stream<number>('endless.observable', 'break-obs')) {
      seen.push(v);
      if (seen.length === 3) break;
    }
    await unsubscribed;
    expect(seen).toEqual([0, 1, 2]);
  });

  it('a call takes the first value of a stream and stops the rest', async () => {
    const aborted = once(probe, 'aborted:first');
    expect(await c.call<number>('endless', 'first')).toBe(0);
    await aborted;
  });

  it('an aborted signal stops the call at the provider and rejects with its reason', async () => {
    const controller = new AbortController();
    const started = once(probe, 'started:abort');
    const aborted = once(probe, 'aborted:abort');
    const call = rejection(c.call('wait', 'abort', { signal: controller.signal }));
    await started;
    const reason = new Error('user left');
    controller.abort(reason);
    expect(await call).toBe(reason);
    await aborted;
    // Aborted before it starts: nothing is sent; the signal's own reason.
    const before = await rejection(c.call('greet', 'x', { signal: AbortSignal.abort() }));
    expect((before as DOMException).name).toBe('AbortError');
  });

  it('an aborted signal ends a stream: the loop throws the reason and the provider stops', async () => {
    const controller = new AbortController();
    const aborted = once(probe, 'aborted:abort-stream');
    const loop = rejection(
      (async () => {
        for await (const v of c.stream<number>('endless', 'abort-stream', { signal: controller.signal })) {
          if (v === 3) controller.abort(new Error('enough'));
        }
      })(),
    );
    expect(((await loop) as Error).message).toBe('enough');
    await aborted;
  });

  it("fails with the relay's TIMEOUT at the deadline, and the provider's signal aborts", async () => {
    const aborted = once(probe, 'aborted:deadline');
    const err = await rejection(c.call('wait', 'deadline', { timeoutMs: 300 }));
    expect(err).toBeInstanceOf(RelayError);
    expect(codeOf(err)).toBe(RelayErrorCode.TIMEOUT);
    await aborted;
  });

  it('rejects with what the handler sent, the same objects WsRelayClient rejects with', async () => {
    for (const pattern of ['fail', 'crash']) {
      const mine = await rejection(c.call(pattern));
      const nests = await rejection(firstValueFrom(nest.send(pattern, {})));
      expect(mine).toEqual(nests);
      expect(mine).not.toBeInstanceOf(RelayError);
    }
    expect(await rejection(c.call('crash'))).toEqual({ status: 'error', message: 'Internal server error' });
    expect(await rejection(c.call('fail'))).toEqual({ code: 'NOPE', message: 'not today' });
    const offline = await rejection(c.call('nobody.serves.this'));
    expect(offline).toMatchObject({ name: 'RelayError', code: RelayErrorCode.MICROSERVICE_OFFLINE, status: 503 });
  });

  it("emits events with the relay's ack and with the handlers' ack", async () => {
    handled.length = 0;
    const seen = once(probe, 'handled');
    expect(await c.emit('orders.created', { id: 1 }, { headers: { 'x-source': 'web' } })).toEqual({ recipients: 1 });
    await seen;
    expect(handled).toEqual([{ subject: 'orders.created', data: { id: 1 }, headers: { 'x-source': 'web' } }]);
    expect(await c.emit('orders.paid', { id: 2 }, { ack: 'handlers' })).toEqual({ recipients: 1 });
    expect(await c.emit('nobody.listens', 1)).toEqual({ recipients: 0 });
    const failed = (await rejection(c.emit('orders.refused', { fail: true }, { ack: 'handlers' }))) as RelayError;
    expect(failed).toBeInstanceOf(RelayError);
    expect(failed.code).toBe(RelayErrorCode.HANDLER_FAILED);
    expect(failed.details).toEqual([{ nodeId: 'provider-1', code: 'HANDLER_ERROR', error: { code: 'ORDER_REJECTED' } }]);
  });

  it('receives the events of its subscriptions, and acks them for handlers once its async listeners finish', async () => {
    const subscriber = cleanup.track(client({ url: relay.url, nodeId: 'sub-1', subscriptions: ['news.>'] }));
    await subscriber.connect();
    const received: unknown[] = [];
    let release: () => void = () => undefined;
    const off = subscriber.onEvent(async (subject, data, meta) => {
      received.push({ subject, data, meta });
      const { slow, fail } = data as { slow?: boolean; fail?: 'value' | 'error' };
      if (slow) await new Promise<void>(r => (release = r));
      // A value reaches the emitter as it is; an Error as Nest reports one (its message stays here).
      // eslint-disable-next-line @typescript-eslint/only-throw-error
      if (fail === 'value') throw { code: 'NO_NEWS' };
      if (fail === 'error') throw new Error('secret detail');
    });
    const errors: Error[] = [];
    subscriber.on('error', err => errors.push(err));
    expect(await c.emit('news.eu.today', { headline: 'hi' }, { headers: { lang: 'en' } })).toEqual({ recipients: 1 });
    const slow = c.emit('news.slow', { slow: true }, { ack: 'handlers' });
    await until(() => received.length === 2);
    release();
    expect(await slow).toEqual({ recipients: 1 });
    expect(received[0]).toEqual({
      subject: 'news.eu.today',
      data: { headline: 'hi' },
      meta: { peer: 'browser-1', headers: { lang: 'en' } },
    });
    const failed = (await rejection(c.emit('news.bad', { fail: 'value' }, { ack: 'handlers' }))) as RelayError;
    expect(failed.details).toEqual([{ nodeId: 'sub-1', code: 'HANDLER_ERROR', error: { code: 'NO_NEWS' } }]);
    const crashed = (await rejection(c.emit('news.bad', { fail: 'error' }, { ack: 'handlers' }))) as RelayError;
    expect(crashed.details).toEqual([
      { nodeId: 'sub-1', code: 'HANDLER_ERROR', error: { status: 'error', message: 'Internal server error' } },
    ]);
    // Both failures reported to the subscriber's own 'error' listeners too.
    expect(errors.map(e => e.message)).toEqual(['An event listener failed: {"code":"NO_NEWS"}', 'secret detail']);
    off();
    expect(await c.emit('news.unheard', {}, { ack: 'handlers' })).toEqual({ recipients: 1 });
    expect(received).toHaveLength(4);
  });

  it('waits for a provider to come online, or times out', async () => {
    const waiting = c.waitFor('late.pattern');
    @Controller()
    class LateController {
      @MessagePattern('late.pattern')
      late(): string {
        return 'here';
      }
    }
    const late = await startProvider([LateController], { urls: [relay.url], nodeId: 'late-1' });
    cleanup.add(() => late.close());
    await waiting;
    expect(await c.call('late.pattern')).toBe('here');
    expect(codeOf(await rejection(c.waitFor('never.pattern', 100)))).toBe(RelayErrorCode.TIMEOUT);
  });

  it('discovers the nodes online', async () => {
    const nodes = await c.discover();
    expect(nodes).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ nodeId: 'provider-1', patterns: expect.arrayContaining(['greet', '{"cmd":"sum"}']) }),
      ]),
    );
  });

  it('close() rejects what is pending with CLOSED, and what comes after', async () => {
    const closing = client({ url: relay.url });
    await closing.connect();
    const started = Promise.all([once(probe, 'started:close'), once(probe, 'started:close-stream')]);
    const call = rejection(closing.call('wait', 'close'));
    const reading = rejection(closing.stream('wait', 'close-stream')[Symbol.asyncIterator]().next());
    await started;
    await closing.close();
    expect(closing.state).toBe('closed');
    expect(codeOf(await call)).toBe(RelayErrorCode.CLOSED);
    expect(codeOf(await reading)).toBe(RelayErrorCode.CLOSED);
    expect(codeOf(await rejection(closing.call('greet')))).toBe(RelayErrorCode.CLOSED);
  });
});

describe('@wsrelay/client reconnecting', () => {
  const cleanup = useCleanup();
  const hs = { secret: SECRET, issuer: ISSUER, audience: AUDIENCE };

  it('reconnects after the relay restarts on the same port; a call made meanwhile waits for the connection', async () => {
    const relay = cleanup.track(await startRelay());
    const port = relay.port;
    const provider = await startProvider([ClientController], { urls: [relay.url], drainTimeoutMs: 0 });
    cleanup.add(() => provider.close());
    const c = cleanup.track(client({ url: relay.url }));
    await c.connect();
    // Heard in the new state: the listener sees the client as it is.
    const disconnected = new Promise(resolve => c.on('disconnected', () => resolve(c.state)));
    await relay.close();
    expect(await disconnected).toBe('reconnecting');
    const reconnected = next(c, 'connected');
    const waiting = c.call<string>('greet', 'again', { timeoutMs: 10_000 });
    const again = cleanup.track(await startRelay({}, port));
    await reconnected;
    expect(c.state).toBe('connected');
    expect(await waiting).toBe('Hello, again!');
    await again.close();
  });

  it('a call whose connection drops rejects with RELAY_UNAVAILABLE; one that finds none within its deadline too', async () => {
    const relay = cleanup.track(await startRelay());
    const provider = await startProvider([ClientController], { urls: [relay.url], drainTimeoutMs: 0 });
    cleanup.add(() => provider.close());
    const c = cleanup.track(client({ url: relay.url }));
    await c.connect();
    const started = once(probe, 'started:dropped');
    const call = rejection(c.call('wait', 'dropped'));
    await started;
    await relay.close();
    expect(codeOf(await call)).toBe(RelayErrorCode.RELAY_UNAVAILABLE);
    expect(codeOf(await rejection(c.call('greet', 'x', { timeoutMs: 200 })))).toBe(RelayErrorCode.RELAY_UNAVAILABLE);
  });

  it('offers the token as a subprotocol, asks the token function again on each reconnect, and refreshes it in-band', async () => {
    // expiryWarningMs is longer than the tokens' life: TOKEN_EXPIRING comes right after WELCOME.
    // The first token's life is under expiryWarningMs: TOKEN_EXPIRING comes right after WELCOME. The fresh ones outlive it.
    const relay = cleanup.track(await startRelay({ auth: { ...hs, expiryWarningMs: 3_600_000 } }));
    const port = relay.port;
    let asked = 0;
    const c = cleanup.track(
      client({
        url: relay.url,
        token: () => mint({ sub: 'web-user', expiresIn: ++asked === 1 ? 600 : 7200, claims: CLIENT }),
      }),
    );
    const refreshed = next(c, 'token_refreshed');
    await c.connect();
    const [expiresAt] = await refreshed;
    expect(expiresAt).toBeGreaterThan(Date.now());
    expect(asked).toBe(2); // the upgrade, then the refresh
    await relay.close();
    const again = cleanup.track(await startRelay({ auth: hs }, port));
    const provider = await startProvider([ClientController], { urls: [again.url], token: () => mint({ claims: SERVER }) });
    cleanup.add(() => provider.close());
    expect(await c.call('greet', 'token', { timeoutMs: 10_000 })).toBe('Hello, token!');
    expect(asked).toBe(3);
  });

  it('connect() rejects with UNAUTHORIZED when the relay refuses the token', async () => {
    const relay = cleanup.track(await startRelay({ auth: hs }));
    const c = cleanup.track(client({ url: relay.url, token: 'not-a-jwt' }));
    expect(codeOf(await rejection(c.connect()))).toBe(RelayErrorCode.UNAUTHORIZED);
    const anonymous = cleanup.track(client({ url: relay.url }));
    expect(codeOf(await rejection(anonymous.connect()))).toBe(RelayErrorCode.UNAUTHORIZED);
  });
});

/** A bare `ws` server playing the relay: it hands each HELLO to `onHello` and each later frame to `onFrame`. */
async function fakeRelay(
  onHello: (socket: WebSocket, hello: Frame, codec: FrameCodec) => void,
  onFrame: (socket: WebSocket, frame: Frame, codec: FrameCodec) => void = () => undefined,
) {
  const codec = new FrameCodec();
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(server, 'listening');
  const sockets: WebSocket[] = [];
  const connections = new EventEmitter();
  server.on('connection', (socket, req) => {
    sockets.push(socket);
    connections.emit('connection', socket, req.headers['sec-websocket-protocol']);
    let welcomed = false;
    socket.on('message', (data: Buffer) => {
      const frame = codec.decode(data);
      connections.emit('frame', frame, socket);
      if (!welcomed && frame.type === FrameType.Hello) {
        welcomed = true;
        onHello(socket, frame, codec);
      } else onFrame(socket, frame, codec);
    });
  });
  return {
    url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}/relay`,
    sockets,
    connections,
    close: async () => {
      for (const s of sockets) s.terminate();
      await new Promise(resolve => server.close(resolve));
    },
  };
}

const welcome = (codec: FrameCodec, version = 1, heartbeatIntervalMs = 10_000, caps = ['credit']) =>
  codec.encode({
    type: FrameType.Welcome,
    version,
    relayId: 'fake',
    sessionId: 's',
    nodeId: 'n',
    maxPayloadBytes: 1 << 20,
    heartbeatIntervalMs,
    caps,
  });

describe('@wsrelay/client against a bare ws server', () => {
  const cleanup = useCleanup();

  it('refuses a WELCOME with a version it did not offer: PROTOCOL_MISMATCH, close 4426, no retry', async () => {
    const hellos: Frame[] = [];
    const fake = cleanup.track(
      await fakeRelay((socket, hello, codec) => {
        hellos.push(hello);
        socket.send(welcome(codec, 99));
      }),
    );
    const c = cleanup.track(client({ url: fake.url, nodeId: 'mismatch', subscriptions: ['a.*'] }));
    const retries: number[] = [];
    c.on('reconnecting', attempt => retries.push(attempt));
    const errors: Error[] = [];
    c.on('error', err => errors.push(err));
    const opened = once(fake.connections, 'connection') as Promise<[WebSocket, string]>;
    const closed = opened.then(([socket]) => once(socket, 'close'));
    const err = await rejection(c.connect());
    expect(err).toBeInstanceOf(RelayError);
    expect(err).toMatchObject({ code: RelayErrorCode.PROTOCOL_MISMATCH, status: 426, message: expect.stringMatching(/version 99/) });
    expect((await closed)[0]).toBe(CloseCode.PROTOCOL_MISMATCH);
    expect((await opened)[1]).toBe('wsrelay.v1');
    expect(hellos).toEqual([
      {
        type: FrameType.Hello,
        versions: [1],
        nodeId: 'mismatch',
        service: null,
        patterns: [],
        events: ['a.*'],
        queue: null,
        caps: ['credit'],
      },
    ]);
    // Stopped: idle, no retry scheduled, the failure reported once.
    expect(c.state).toBe('idle');
    expect(retries).toEqual([]);
    expect(errors).toEqual([err]);
    expect(fake.sockets).toHaveLength(1);
  });

  it('backs off further while each session is closed right after its WELCOME (the backoff starts over only after a session lasts)', async () => {
    const fake = cleanup.track(
      await fakeRelay((socket, _hello, codec) => {
        socket.send(welcome(codec));
        socket.close(CloseCode.NODE_ID_CONFLICT, 'node id conflict');
      }),
    );
    const c = cleanup.track(client({ url: fake.url, reconnect: { initialDelayMs: 1, maxDelayMs: 50, multiplier: 2, jitter: 0 } }));
    const retries: number[] = [];
    const fourth = new Promise<void>(resolve => c.on('reconnecting', attempt => void (retries.push(attempt) === 4 && resolve())));
    await c.connect();
    await fourth;
    expect(retries).toEqual([1, 2, 3, 4]);
  });

  it('on GOAWAY opens a new session at once; a call in flight on the old one completes there', async () => {
    let held: { socket: WebSocket; id: number } | undefined;
    const requested = new EventEmitter();
    const fake = cleanup.track(
      await fakeRelay(
        (socket, _hello, codec) => socket.send(welcome(codec)),
        (socket, frame) => {
          if (frame.type !== FrameType.Request) return;
          held = { socket, id: frame.id };
          requested.emit('request');
        },
      ),
    );
    const c = cleanup.track(client({ url: fake.url }));
    await c.connect();
    const call = c.call('slow', 1);
    await once(requested, 'request');
    const reconnecting = next(c, 'reconnecting');
    const reconnected = next(c, 'connected');
    const codec = new FrameCodec();
    held!.socket.send(codec.encode({ type: FrameType.GoAway, reason: 'shutting down', drainMs: 10_000 }));
    expect(await reconnecting).toEqual([0, 0]);
    await reconnected;
    expect(fake.sockets).toHaveLength(2);
    // The answer comes on the old session.
    held!.socket.send(codec.encode({ type: FrameType.Response, id: held!.id, flags: ResponseFlag.DONE, payload: encodePayload('late') }));
    expect(await call).toBe('late');
    // New calls go on the new session.
    const second = c.call('slow', 2);
    await once(requested, 'request');
    expect(held!.socket).toBe(fake.sockets[1]);
    held!.socket.send(codec.encode({ type: FrameType.Response, id: held!.id, flags: ResponseFlag.DONE, payload: encodePayload('new') }));
    expect(await second).toBe('new');
  });

  it('pings a silent relay with PING frames after two intervals and drops it half an interval later, then reconnects', async () => {
    const pings: WebSocket[] = [];
    const pinged = new EventEmitter();
    // WELCOME with a 100 ms interval, then silence (no PONG for the PING frames).
    const fake = cleanup.track(
      await fakeRelay(
        (socket, _hello, codec) => socket.send(welcome(codec, 1, 100)),
        (socket, frame) => {
          if (frame.type !== FrameType.Ping) return;
          pings.push(socket);
          pinged.emit('ping');
        },
      ),
    );
    const c = cleanup.track(client({ url: fake.url, heartbeatIntervalMs: 60_000 }));
    await c.connect();
    const connectedAt = Date.now();
    const dropped = next(c, 'disconnected');
    await once(pinged, 'ping');
    const pingedAt = Date.now();
    const [reason] = await dropped;
    expect(reason?.message).toMatch(/relay silent for 250 ms/);
    expect(pingedAt - connectedAt).toBeGreaterThanOrEqual(190);
    expect(pings).toEqual([fake.sockets[0]]);
    await next(c, 'connected');
    expect(fake.sockets).toHaveLength(2);
  });

  it('offers its token as a subprotocol next to wsrelay.v1, and answers PING frames with PONG', async () => {
    const fake = cleanup.track(await fakeRelay((socket, _hello, codec) => socket.send(welcome(codec))));
    const c = cleanup.track(client({ url: fake.url, token: 'header.claims.signature' }));
    const opened = once(fake.connections, 'connection') as Promise<[WebSocket, string]>;
    await c.connect();
    expect((await opened)[1].split(/,\s*/)).toEqual(['wsrelay.v1', 'access_token.header.claims.signature']);
    const codec = new FrameCodec();
    const pong = once(fake.connections, 'frame');
    fake.sockets[0].send(codec.encode({ type: FrameType.Ping }));
    expect((await pong)[0]).toEqual({ type: FrameType.Pong });
  });

  it('gives a window and grants credit only on a session whose WELCOME listed credit', async () => {
    const codec = new FrameCodec();
    const seen: Frame[] = [];
    /** A provider of 8 values that honours the window: it sends a value only while it has credit, then DONE. EVENTs get an ACK. */
    const relayLike = (socket: WebSocket, frame: Frame) => {
      seen.push(frame);
      const send = (f: Frame) => socket.send(codec.encode(f));
      if (frame.type === FrameType.Event) send({ type: FrameType.Ack, id: frame.id, recipients: 0 });
      if (frame.type !== FrameType.Request && frame.type !== FrameType.Credit) return;
      const request = seen.find(f => f.type === FrameType.Request)!;
      const granted = frame.type === FrameType.Request ? (frame.window ?? Infinity) : frame.credit;
      const sent = seen.filter(f => f.type === FrameType.Response).length;
      for (let i = sent; i < Math.min(8, sent + granted); i++) {
        seen.push({ type: FrameType.Response, id: request.id, flags: 0, payload: null });
        send({ type: FrameType.Response, id: request.id, flags: 0, payload: encodePayload(i) });
        if (i === 7) send({ type: FrameType.Response, id: request.id, flags: ResponseFlag.DONE, payload: null });
      }
    };
    for (const caps of [['credit'], []]) {
      seen.length = 0;
      const fake = cleanup.track(await fakeRelay((socket, _hello, c) => socket.send(welcome(c, 1, 10_000, caps)), relayLike));
      const c = cleanup.track(client({ url: fake.url, streamWindow: 4 }));
      expect(await collect(c.stream('values'))).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      // Acknowledged after everything the client sent before it arrived.
      await c.emit('marker');
      const request = seen.find(f => f.type === FrameType.Request);
      const credits = seen.filter(f => f.type === FrameType.Credit).map(f => f.credit);
      if (caps.length > 0) {
        expect(request).toMatchObject({ window: 4 });
        // Half a window at a time, as the reader took them; at least the 4 beyond the window that 8 values need.
        expect(credits.slice(0, 2)).toEqual([2, 2]);
        expect(credits.every(n => n === 2)).toBe(true);
      } else {
        expect(request).not.toHaveProperty('window');
        expect(credits).toEqual([]);
      }
      await c.close();
      await fake.close();
    }
  });

  it('gives up a second after the deadline when the relay never answers, and tells it (CANCEL)', async () => {
    const cancelled = new EventEmitter();
    const fake = cleanup.track(
      await fakeRelay(
        (socket, _hello, codec) => socket.send(welcome(codec)),
        (_socket, frame) => {
          if (frame.type === FrameType.Cancel) cancelled.emit('cancel', frame.id);
        },
      ),
    );
    const c = cleanup.track(client({ url: fake.url }));
    await c.connect();
    const startedAt = Date.now();
    const cancel = once(cancelled, 'cancel');
    const err = await rejection(c.call('unanswered', 1, { timeoutMs: 200 }));
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(1190);
    expect(err).toMatchObject({ code: RelayErrorCode.TIMEOUT, message: expect.stringMatching(/within 200 ms.*no answer from the relay/) });
    expect(await cancel).toEqual([1]);
  });
  it('a call answered in one RESPONSE sends nothing more; one answered by a stream cancels the rest', async () => {
    const codec = new FrameCodec();
    const seen: Frame[] = [];
    const fake = cleanup.track(
      await fakeRelay(
        (socket, _hello, c) => socket.send(welcome(c)),
        (socket, frame) => {
          seen.push(frame);
          const send = (f: Frame) => socket.send(codec.encode(f));
          if (frame.type === FrameType.Event) send({ type: FrameType.Ack, id: frame.id, recipients: 0 });
          if (frame.type !== FrameType.Request) return;
          const streamed = frame.pattern === 'streamed';
          send({ type: FrameType.Response, id: frame.id, flags: streamed ? 0 : ResponseFlag.DONE, payload: encodePayload(frame.pattern) });
        },
      ),
    );
    const c = cleanup.track(client({ url: fake.url }));
    expect(await c.call('single')).toBe('single');
    expect(await c.call('streamed')).toBe('streamed');
    // Acknowledged after everything the client sent before it arrived.
    await c.emit('marker');
    expect(seen.map(f => [f.type, 'id' in f ? f.id : 0])).toEqual([
      [FrameType.Request, 1],
      [FrameType.Request, 2],
      [FrameType.Cancel, 2],
      [FrameType.Event, 3],
    ]);
  });
});

describe("@wsrelay/client on Node 22's global WebSocket", () => {
  const cleanup = useCleanup();

  it('calls, streams and emits without the WebSocket option', async () => {
    const relay = cleanup.track(await startRelay());
    const provider = await startProvider([ClientController], { urls: [relay.url], drainTimeoutMs: 0 });
    cleanup.add(() => provider.close());
    // The `node` binary of Node 22, from the npm registry's `node` package (as the packed-package tests get theirs).
    const node = (await run('npx', ['-y', 'node@22', '-e', 'process.stdout.write(process.execPath)'])).stdout;
    const script = `
      import { RelayClient } from ${JSON.stringify(pathToFileURL(join(import.meta.dirname, '../libs/client/dist/index.js')).href)};
      const client = new RelayClient({ url: process.env.RELAY_URL });
      await client.connect();
      const greeting = await client.call('greet', 'Node 22');
      const values = [];
      for await (const v of client.stream('count', 3)) values.push(v);
      const ack = await client.emit('orders.node22', { n: 22 });
      await client.close();
      console.log(JSON.stringify({ version: process.version, greeting, values, ack, state: client.state }));
    `;
    const { stdout } = await run(node, ['--input-type=module', '-e', script], { env: { ...process.env, RELAY_URL: relay.url } });
    expect(JSON.parse(stdout)).toEqual({
      version: expect.stringMatching(/^v22\./),
      greeting: 'Hello, Node 22!',
      values: [0, 1, 2],
      ack: { recipients: 1 },
      state: 'closed',
    });
  }, 120_000);
});
