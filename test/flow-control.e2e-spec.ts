/**
 * Flow control of streamed results: the caller grants credit as its
 * subscriber takes values, and the provider stops pulling from the handler
 * while it has none, so a slow reader slows its own stream, not its
 * connection. Real relays, providers and clients; the slow reader is a
 * client whose TCP socket is paused (it reads nothing, as a stalled peer).
 */
import { describe, expect, it } from '@jest/globals';
import { type CallHandler, Controller, type NestInterceptor, UseInterceptors } from '@nestjs/common';
import { MessagePattern } from '@nestjs/microservices';
import { RelayCore } from '@wsrelay/relay';
import { type RelayError, RelayErrorCode } from '@wsrelay/protocol';
import type { WsRelayClient } from '@wsrelay/transport';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { firstValueFrom, lastValueFrom, map, type Observable, range, tap, toArray } from 'rxjs';
import type WebSocket from 'ws';
import { CLUSTER_TIMING } from './support/cluster.js';
import { rejection, type RunningRelay, startClient, startProvider, startRelay, until, useCleanup } from './support/harness.js';
import { useTestRedis } from './support/redis.js';

interface Item {
  i: number;
  pad: string;
}

const PAD = 'x'.repeat(16 * 1024);
/** A stream longer than the kernel's socket buffers hold (about 32 MiB of values), so a reader that stops reading backs it up at the relay. */
const LONG = 2000;
/** How many values the generators have produced (each `next()` the provider calls). */
const state = { pulled: 0 };

async function* items(n: number): AsyncGenerator<Item> {
  for (let i = 0; i < n; i++) {
    state.pulled++;
    yield { i, pad: PAD };
  }
}

/** An interceptor that passes the result on: the handler's generator then reaches the transport inside an Observable. */
class PassThrough implements NestInterceptor {
  intercept(_context: unknown, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(tap(() => undefined));
  }
}

@Controller()
class StreamController {
  @MessagePattern('pulled')
  pulled(n: number): AsyncGenerator<Item> {
    return items(n);
  }

  @MessagePattern('pulled.intercepted')
  @UseInterceptors(PassThrough)
  intercepted(n: number): AsyncGenerator<Item> {
    return items(n);
  }

  /** An Observable cannot wait for its reader: it emits everything at once. */
  @MessagePattern('pushed')
  pushed({ n, size }: { n: number; size: number }): Observable<Item> {
    return range(0, n).pipe(map(i => ({ i, pad: 'y'.repeat(size) })));
  }

  @MessagePattern('ping')
  ping(): string {
    return 'pong';
  }
}

/** The TCP socket under a client's relay session: paused, the client reads nothing. */
function tcpOf(client: WsRelayClient): Socket {
  return (client.unwrap<WebSocket>() as unknown as { _socket: Socket })._socket;
}

const indexes = (n: number) => [...Array(n).keys()];

describe('flow control of streamed results', () => {
  const { track } = useCleanup();
  const redis = useTestRedis();

  /** Waits until the provider has pulled `n` values, then proves it pulls no more: a later call's answer comes after anything it would still do. */
  async function pulledExactly(n: number, relay: RunningRelay): Promise<void> {
    await until(() => state.pulled >= n, 10_000, `${n} values to be pulled`);
    const other = track(await startClient({ urls: [relay.url], streamWindow: 0 }));
    expect(await firstValueFrom(other.send<string>('ping', 1))).toBe('pong');
    expect(state.pulled).toBe(n);
  }

  it('a reader that stops reading stops its provider after one window; its connection stays, and the stream completes once it reads again', async () => {
    const relay = track(await startRelay({ maxBufferedBytes: 512 * 1024 }));
    track(await startProvider([StreamController], { urls: [relay.url] }));
    const client = track(await startClient({ urls: [relay.url], nodeId: 'reader', streamWindow: 8 }));
    const socket = tcpOf(client);
    socket.pause();
    state.pulled = 0;
    const values = firstValueFrom(client.send<Item>('pulled', LONG).pipe(toArray()));
    await pulledExactly(8, relay);
    expect(relay.app.get(RelayCore).nodeDiagnostics('reader')).toMatchObject({ closedAsSlowConsumer: false, requestsOut: 1 });
    socket.resume();
    expect((await values).map(v => v.i)).toEqual(indexes(LONG));
    expect(state.pulled).toBe(LONG);
    expect(await firstValueFrom(client.send<string>('ping', 1))).toBe('pong');
  });

  it('without flow control (streamWindow 0) the same reader is closed as a slow consumer and its call fails', async () => {
    const relay = track(await startRelay({ maxBufferedBytes: 512 * 1024 }));
    track(await startProvider([StreamController], { urls: [relay.url] }));
    const client = track(await startClient({ urls: [relay.url], nodeId: 'reader', streamWindow: 0 }));
    const socket = tcpOf(client);
    socket.pause();
    state.pulled = 0;
    const values = firstValueFrom(client.send<Item>('pulled', LONG).pipe(toArray()));
    const core = relay.app.get(RelayCore);
    expect(core.nodeDiagnostics('reader')).toBeDefined();
    // Closed as a slow consumer (the node stays listed until the close completes, which a reader that reads nothing delays).
    await until(() => core.nodeDiagnostics('reader')?.closedAsSlowConsumer !== false, 10_000, 'the relay to close the reader');
    socket.resume();
    expect(((await rejection(values)) as RelayError).code).toBe(RelayErrorCode.RELAY_UNAVAILABLE);
  });

  it("an Observable that outruns its caller's credit by more than maxStreamBufferedBytes fails with SLOW_CONSUMER; the connection stays", async () => {
    const relay = track(await startRelay());
    track(await startProvider([StreamController], { urls: [relay.url], maxStreamBufferedBytes: 64 * 1024 }));
    const client = track(await startClient({ urls: [relay.url], streamWindow: 8 }));
    const seen: number[] = [];
    const stream = client.send<Item>('pushed', { n: 200, size: 4096 }).pipe(tap(v => seen.push(v.i)));
    const err = (await rejection(lastValueFrom(stream))) as { code: string; message: string };
    // The first window went out before the rest, emitted in the same tick, was found over the limit.
    expect(seen).toEqual(indexes(8));
    expect(err).toMatchObject({ status: 'error', code: RelayErrorCode.SLOW_CONSUMER });
    expect(err.message).toMatch(/"pushed" was stopped: its caller reads slower.*over maxStreamBufferedBytes, 65536/);
    expect(await firstValueFrom(client.send<string>('ping', 1))).toBe('pong');
  });

  it("an Observable's values within the limit wait for credit and all arrive, in order, with a small window", async () => {
    const relay = track(await startRelay());
    track(await startProvider([StreamController], { urls: [relay.url], maxStreamBufferedBytes: 64 * 1024 }));
    const client = track(await startClient({ urls: [relay.url], streamWindow: 2 }));
    const got = await firstValueFrom(client.send<Item>('pushed', { n: 300, size: 100 }).pipe(toArray()));
    expect(got.map(v => v.i)).toEqual(indexes(300));
  });

  it('a generator behind an interceptor is pulled with credit too (not sent as one value)', async () => {
    const relay = track(await startRelay());
    track(await startProvider([StreamController], { urls: [relay.url] }));
    const client = track(await startClient({ urls: [relay.url], streamWindow: 4 }));
    const socket = tcpOf(client);
    socket.pause();
    state.pulled = 0;
    const values = firstValueFrom(client.send<Item>('pulled.intercepted', 30).pipe(toArray()));
    await pulledExactly(4, relay);
    socket.resume();
    expect((await values).map(v => v.i)).toEqual(indexes(30));
  });

  it('without flow control a generator is still streamed whole', async () => {
    const relay = track(await startRelay());
    track(await startProvider([StreamController], { urls: [relay.url] }));
    const client = track(await startClient({ urls: [relay.url], streamWindow: 0 }));
    const got = await firstValueFrom(client.send<Item>('pulled', 50).pipe(toArray()));
    expect(got.map(v => v.i)).toEqual(indexes(50));
  });

  it('across two relays over Redis: the provider on relay B stops after the window of a stalled caller on relay A', async () => {
    const settings = { redis: redis.url, channelPrefix: `wsrelay-credit-${randomBytes(4).toString('hex')}`, ...CLUSTER_TIMING };
    const a = track(await startRelay({ relayId: 'A', cluster: settings }));
    const b = track(await startRelay({ relayId: 'B', cluster: settings }));
    const status = (r: RunningRelay) => r.app.get(RelayCore).status().cluster;
    await until(() => [a, b].every(r => status(r).healthy && status(r).relays.length === 1), 10_000, 'the relays to see each other');
    track(await startProvider([StreamController], { urls: [b.url] }));
    const client = track(await startClient({ urls: [a.url], streamWindow: 6 }));
    await client.waitFor('pulled', 10_000);
    const socket = tcpOf(client);
    socket.pause();
    state.pulled = 0;
    const values = firstValueFrom(client.send<Item>('pulled', 60).pipe(toArray()));
    await pulledExactly(6, b);
    socket.resume();
    expect((await values).map(v => v.i)).toEqual(indexes(60));
  });
});
