/**
 * Connection lifecycle with real relays: relay restarts (providers
 * re-announce by themselves), status reporting, waitFor, failing fast when
 * there is no relay, and the Nest module integration (ClientsModule).
 */
import { Controller, Inject, Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ClientProxy, ClientsModule, MessagePattern, Payload } from '@nestjs/microservices';
import { InvalidMessageException } from '@nestjs/microservices/errors/invalid-message.exception.js';
import {
  RelayError,
  RelayErrorCode,
  WsRelayClient,
  type WsRelayClientOptions,
  type WsRelayEventAck,
  WsRelayStatus,
  WsRelayStrategy,
} from '@wsrelay/transport';
import { WsAdapter } from '@nestjs/platform-ws';
import { RelayModule, RelayWsAdapter } from '@wsrelay/relay';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { firstValueFrom, Observable } from 'rxjs';
import { RawNode } from './support/raw-node.js';
import { startClient, startProvider, startRelay, until, rejection } from './support/harness.js';

let foreverStarted = 0;

@Controller()
class EchoController {
  @MessagePattern('echo')
  echo(@Payload() v: unknown) {
    return v;
  }

  @MessagePattern('forever')
  forever() {
    foreverStarted++;
    return new Observable(() => undefined);
  }
}

describe('lifecycle', () => {
  it('recovers from a relay restart: providers re-announce and calls work again, no app restarted', async () => {
    let relay = await startRelay();
    const port = relay.port;
    const provider = await startProvider([EchoController], { urls: [relay.url] });
    const client = await startClient({ urls: [relay.url] });
    const statuses: string[] = [];
    const sub = client.status.subscribe(s => statuses.push(s));
    try {
      expect(await firstValueFrom(client.send('echo', 'before'))).toBe('before');
      const inFlight = rejection(firstValueFrom(client.send('forever', 1)));
      await relay.close();
      expect(await inFlight).toMatchObject({ code: RelayErrorCode.RELAY_UNAVAILABLE });
      await until(() => statuses.includes(WsRelayStatus.RECONNECTING), 5000, 'reconnecting status');

      relay = await startRelay({}, port);
      await client.waitFor('echo', 10_000);
      expect(await firstValueFrom(client.send('echo', 'after'))).toBe('after');
      expect(statuses).toEqual(expect.arrayContaining([WsRelayStatus.CONNECTED, WsRelayStatus.DISCONNECTED, WsRelayStatus.RECONNECTING]));
      expect(statuses.at(-1)).toBe(WsRelayStatus.CONNECTED);
    } finally {
      sub.unsubscribe();
      await client.close();
      await provider.close();
      await relay.close();
    }
  });

  it('waitFor resolves once a provider comes online, and times out with TIMEOUT otherwise', async () => {
    const relay = await startRelay();
    const client = await startClient({ urls: [relay.url] });
    try {
      expect(await rejection(client.waitFor('echo', 100))).toMatchObject({ code: RelayErrorCode.TIMEOUT });
      const waiting = client.waitFor('echo', 10_000);
      const provider = await startProvider([EchoController], { urls: [relay.url] });
      await waiting;
      expect(await firstValueFrom(client.send('echo', 1))).toBe(1);
      await provider.close();
    } finally {
      await client.close();
      await relay.close();
    }
  });

  it('reports on() events and the status of a client', async () => {
    const relay = await startRelay();
    const client = new WsRelayClient({ urls: [relay.url], reconnect: { initialDelayMs: 10, maxDelayMs: 50 } });
    const events: string[] = [];
    client.on('connected', () => events.push('connected'));
    client.on('disconnected', () => events.push('disconnected'));
    client.on('reconnecting', () => events.push('reconnecting'));
    try {
      await client.connect();
      await client.connect(); // idempotent
      await relay.close();
      await until(() => events.includes('reconnecting'), 5000, 'reconnecting event');
      expect(events.slice(0, 3)).toEqual(['connected', 'disconnected', 'reconnecting']);
    } finally {
      await client.close();
    }
  });

  it('fails with RELAY_UNAVAILABLE when no relay answers within connectTimeoutMs', async () => {
    const relay = await startRelay();
    const url = relay.url;
    await relay.close(); // a port that refuses connections
    const client = new WsRelayClient({ urls: [url], connectTimeoutMs: 200, reconnect: { initialDelayMs: 10, maxDelayMs: 50 } });
    try {
      const err = await rejection(firstValueFrom(client.send('echo', 1)));
      expect(err).toBeInstanceOf(RelayError);
      expect(err).toMatchObject({ code: RelayErrorCode.RELAY_UNAVAILABLE, status: 503 });
      expect((err as Error).message).toContain('200 ms');
    } finally {
      await client.close();
    }
  });

  it('makes a provider fail to start (listen reports the error) when no relay is reachable', async () => {
    const relay = await startRelay();
    const url = relay.url;
    await relay.close();
    await expect(startProvider([EchoController], { urls: [url], connectTimeoutMs: 200 })).rejects.toMatchObject({
      code: RelayErrorCode.RELAY_UNAVAILABLE,
    });
  });

  it('fails pending calls when the client is closed', async () => {
    const relay = await startRelay();
    const provider = await startProvider([EchoController], { urls: [relay.url] });
    const client = await startClient({ urls: [relay.url] });
    const started = foreverStarted;
    const call = rejection(firstValueFrom(client.send('forever', 1)));
    await until(() => foreverStarted > started, 5000, 'the handler to start');
    await client.close();
    expect(await call).toMatchObject({ code: RelayErrorCode.CLOSED });
    await provider.close();
    await relay.close();
  });

  it('send() and emit() on a client that never connected connect first; one unsubscribed before that sends nothing', async () => {
    const relay = await startRelay();
    const provider = await startProvider([EchoController], { urls: [relay.url] });
    const before = foreverStarted;
    const client = new WsRelayClient({ urls: [relay.url] });
    try {
      // Subscribed and left before the connection is up: never reaches the provider.
      client.send('forever', 1).subscribe().unsubscribe();
      const [reply, ack] = await Promise.all([
        firstValueFrom(client.send<string>('echo', 'first')),
        firstValueFrom(client.emit<WsRelayEventAck>('nobody.listens', 1)),
      ]);
      expect(reply).toBe('first');
      expect(ack).toEqual({ recipients: 0 });
      // A round trip after it: the abandoned call would have reached the provider by now.
      expect(await firstValueFrom(client.send('echo', 'second'))).toBe('second');
      expect(foreverStarted).toBe(before);
      expect(() => client.send('echo', undefined)).not.toThrow();
      await expect(firstValueFrom(client.send('echo', undefined))).rejects.toBeInstanceOf(InvalidMessageException);
      await expect(firstValueFrom(client.emit('echo', null))).rejects.toBeInstanceOf(InvalidMessageException);
    } finally {
      await client.close();
      await provider.close();
      await relay.close();
    }
  });

  it('validates options at construction, naming the option', () => {
    expect(() => new WsRelayClient({ urls: [] })).toThrow(/urls/);
    expect(() => new WsRelayClient({ urls: ['http://x'] })).toThrow(/ws:\/\/ or wss:\/\//);
    expect(() => new WsRelayClient({ urls: ['ws://x'], timeoutMs: 0 })).toThrow(/timeoutMs/);
    expect(() => new WsRelayStrategy({ urls: ['ws://x'], heartbeatIntervalMs: -5 })).toThrow(/heartbeatIntervalMs/);
    expect(() => new WsRelayStrategy({ urls: ['ws://x'], queue: '' })).toThrow(/queue/);
    expect(() => new WsRelayStrategy({ urls: ['ws://x'], reconnect: { initialDelayMs: 500, maxDelayMs: 100 } })).toThrow(
      /reconnect.initialDelayMs must not be greater than reconnect.maxDelayMs/,
    );
    expect(() => new WsRelayClient({ urls: ['ws://x'], token: 42 as unknown as string })).toThrow(/token/);
    expect(() => new WsRelayClient(undefined as unknown as WsRelayClientOptions)).toThrow(TypeError);
  });

  it('boots the relay from RelayModule.forRootAsync() with its options', async () => {
    @Module({
      imports: [RelayModule.forRootAsync({ useFactory: async () => ({ path: '/async-relay', relayId: 'from-factory' }) })],
    })
    class AsyncRelayModule {}
    const app = await NestFactory.create(AsyncRelayModule, { logger: false });
    app.useWebSocketAdapter(new RelayWsAdapter(app));
    await app.listen(0, '127.0.0.1');
    const { port } = (app.getHttpServer() as Server).address() as AddressInfo;
    const client = new WsRelayClient({ urls: [`ws://127.0.0.1:${port}/async-relay`] });
    const welcomed = new Promise<{ relayId: string }>(resolve =>
      client.on('connected', ((w: { relayId: string }) => resolve(w)) as () => void),
    );
    try {
      await client.connect();
      expect((await welcomed).relayId).toBe('from-factory');
    } finally {
      await client.close();
      await app.close();
    }
  });

  it('refuses every connection, saying why, when the app lacks RelayWsAdapter', async () => {
    const app = await NestFactory.create(RelayModule.forRoot({}), { logger: false });
    app.useWebSocketAdapter(new WsAdapter(app));
    await app.listen(0, '127.0.0.1');
    const { port } = (app.getHttpServer() as Server).address() as AddressInfo;
    try {
      const node = await RawNode.open(`ws://127.0.0.1:${port}/relay`);
      const closed = await node.closed();
      expect(closed.code).toBe(1011);
      expect(closed.reason).toContain('RelayWsAdapter');
    } finally {
      await app.close();
    }
  });

  describe('ClientsModule', () => {
    @Injectable()
    class Caller {
      constructor(@Inject('ECHO') readonly client: ClientProxy) {}
      echo(v: string) {
        return firstValueFrom(this.client.send<string>('echo', v));
      }
    }

    it('works with register() and registerAsync() and is closed on app shutdown', async () => {
      const relay = await startRelay();
      const provider = await startProvider([EchoController], { urls: [relay.url] });
      @Module({
        imports: [ClientsModule.register([{ name: 'ECHO', customClass: WsRelayClient, options: { urls: [relay.url] } }])],
        providers: [Caller],
      })
      class SyncModule {}
      @Module({
        imports: [
          ClientsModule.registerAsync([
            { name: 'ECHO', useFactory: async () => ({ customClass: WsRelayClient, options: { urls: [relay.url] } }) },
          ]),
        ],
        providers: [Caller],
      })
      class AsyncModule {}
      try {
        for (const m of [SyncModule, AsyncModule]) {
          const app = await NestFactory.createApplicationContext(m, { logger: false });
          const caller = app.get(Caller);
          expect(caller.client).toBeInstanceOf(WsRelayClient);
          expect(await caller.echo('via module')).toBe('via module');
          const closed = new Promise<void>(resolve =>
            caller.client.status.subscribe(s => (s as WsRelayStatus) === WsRelayStatus.DISCONNECTED && resolve()),
          );
          await app.close();
          await closed;
        }
      } finally {
        await provider.close();
        await relay.close();
      }
    });
  });
});
