/**
 * Pins: WsRelayStrategy had no transportId, so in a hybrid app a handler
 * bound to another transport (`@MessagePattern('x', Transport.TCP)`) was also
 * announced to the relay and served over it, and processing hooks were told
 * the transport was `undefined`. One Nest app here runs a TCP microservice
 * and a wsrelay microservice side by side, each reached by a real client.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Controller, type INestApplication, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ClientTCP, Ctx, EventPattern, MessagePattern, Transport } from '@nestjs/microservices';
import { RelayErrorCode, WS_RELAY_TRANSPORT, type WsRelayClient, WsRelayContext, WsRelayStrategy } from '@wsrelay/transport';
import type { AddressInfo, Server as NetServer } from 'node:net';
import { firstValueFrom } from 'rxjs';
import { rejection, type RunningRelay, startClient, startRelay } from './support/harness.js';

// Nest's answer to a pattern no handler matches (NO_MESSAGE_HANDLER in @nestjs/microservices/constants).
const NO_HANDLER = 'There is no matching message handler defined in the remote service.';

@Controller()
class HybridController {
  @MessagePattern('tcp.only', Transport.TCP)
  tcpOnly(): string {
    return 'tcp.only';
  }

  @MessagePattern('relay.only', WS_RELAY_TRANSPORT)
  relayOnly(): string {
    return 'relay.only';
  }

  /** Bound to no transport: served by both, and says which one served it. */
  @MessagePattern('both')
  both(@Ctx() ctx: unknown): string {
    return ctx instanceof WsRelayContext ? 'served by wsrelay' : 'served by tcp';
  }

  @EventPattern('tcp.event', Transport.TCP)
  tcpEvent(_data: unknown): void {}

  @EventPattern('relay.event', WS_RELAY_TRANSPORT)
  relayEvent(_data: unknown): void {}

  @EventPattern('any.event')
  anyEvent(_data: unknown): void {}
}

@Module({ controllers: [HybridController] })
class HybridModule {}

describe('a hybrid app: a TCP microservice and a wsrelay one', () => {
  let relay: RunningRelay;
  let app: INestApplication;
  let strategy: WsRelayStrategy;
  let relayClient: WsRelayClient;
  let tcpClient: ClientTCP;
  /** The transport id each processing-start hook call was given, on the wsrelay side. */
  const hookedTransports: unknown[] = [];

  beforeAll(async () => {
    relay = await startRelay();
    app = await NestFactory.create(HybridModule, { logger: false });
    const tcp = app.connectMicroservice({ transport: Transport.TCP, options: { host: '127.0.0.1', port: 0 } });
    strategy = new WsRelayStrategy({ urls: [relay.url], nodeId: 'hybrid' });
    app.connectMicroservice({ strategy });
    strategy.setOnProcessingStartHook((transportId, _context, done) => {
      hookedTransports.push(transportId);
      void done();
    });
    await app.startAllMicroservices();
    await app.init();
    const { port } = tcp.unwrap<NetServer>().address() as AddressInfo;
    tcpClient = new ClientTCP({ host: '127.0.0.1', port });
    await tcpClient.connect();
    relayClient = await startClient({ urls: [relay.url] });
  });

  afterAll(async () => {
    await relayClient?.close();
    tcpClient?.close();
    await app?.close();
    await relay?.close();
  });

  it('announces to the relay only the handlers bound to wsrelay or to no transport', async () => {
    const nodes = await relayClient.discover();
    const hybrid = nodes.find(n => n.nodeId === 'hybrid');
    expect(hybrid?.patterns.toSorted()).toEqual(['both', 'relay.only']);
    expect(hybrid?.events.toSorted()).toEqual(['any.event', 'relay.event']);
  });

  it('serves over the relay its own handlers and the unbound ones', async () => {
    expect(await firstValueFrom(relayClient.send('relay.only', {}))).toBe('relay.only');
    expect(await firstValueFrom(relayClient.send('both', {}))).toBe('served by wsrelay');
  });

  it('serves over TCP its own handlers and the unbound ones', async () => {
    expect(await firstValueFrom(tcpClient.send('tcp.only', {}))).toBe('tcp.only');
    expect(await firstValueFrom(tcpClient.send('both', {}))).toBe('served by tcp');
  });

  it('a wsrelay call to a TCP-only pattern fails as a pattern nobody serves does', async () => {
    const unknown = await rejection(firstValueFrom(relayClient.send('nobody.serves.this', {})));
    const tcpOnly = await rejection(firstValueFrom(relayClient.send('tcp.only', {})));
    expect(unknown).toMatchObject({ code: RelayErrorCode.MICROSERVICE_OFFLINE });
    expect(tcpOnly).toMatchObject({ code: RelayErrorCode.MICROSERVICE_OFFLINE });
  });

  it('a TCP call to a wsrelay-only pattern finds no handler', async () => {
    // Nest's TCP client rejects with the server's error as sent: here a string.
    expect(await rejection(firstValueFrom(tcpClient.send('relay.only', {})))).toBe(NO_HANDLER);
    expect(await rejection(firstValueFrom(tcpClient.send('nobody.serves.this', {})))).toBe(NO_HANDLER);
  });

  it("processing hooks are given wsrelay's transport id", async () => {
    hookedTransports.length = 0;
    expect(await firstValueFrom(relayClient.send('both', {}))).toBe('served by wsrelay');
    expect(hookedTransports).toEqual([WS_RELAY_TRANSPORT]);
    expect(strategy.transportId).toBe(WS_RELAY_TRANSPORT);
  });
});
