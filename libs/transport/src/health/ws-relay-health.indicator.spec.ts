/**
 * WsRelayHealthIndicator from Nest's container, in a module importing
 * TerminusModule (its HealthIndicatorService is injected by token), asked
 * about a real client that is not connected: down, saying each URL's state.
 * Up (a connected client and strategy) is in test/node-health.e2e-spec.ts.
 */
import 'reflect-metadata';
import { afterEach, describe, expect, it } from '@jest/globals';
import { Test } from '@nestjs/testing';
import { HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { WsRelayClient } from '../client/ws-relay.client.js';
import { WsRelayHealthIndicator } from './ws-relay-health.indicator.js';

describe('WsRelayHealthIndicator', () => {
  const clients: WsRelayClient[] = [];

  afterEach(async () => {
    await Promise.all(clients.splice(0).map(c => c.close()));
  });

  async function indicator() {
    const module = await Test.createTestingModule({
      imports: [TerminusModule.forRoot({ logger: false })],
      providers: [WsRelayHealthIndicator],
    }).compile();
    return { relay: module.get(WsRelayHealthIndicator), health: module.get(HealthCheckService) };
  }

  it('is down, with each relay URL state and the node id, for a client that never connected', async () => {
    const { relay } = await indicator();
    const client = new WsRelayClient({ urls: ['ws://127.0.0.1:9/relay', 'ws://127.0.0.1:9/other'], nodeId: 'caller-1' });
    clients.push(client);
    expect(relay.isConnected('relay', client)).toEqual({
      relay: {
        status: 'down',
        nodeId: 'caller-1',
        relays: { 'ws://127.0.0.1:9/relay': 'not_connected', 'ws://127.0.0.1:9/other': 'not_connected' },
        message: 'Not connected to a relay (ws://127.0.0.1:9/relay not_connected, ws://127.0.0.1:9/other not_connected)',
      },
    });
  });

  it('fails a terminus health check with that reason', async () => {
    const { relay, health } = await indicator();
    const client = new WsRelayClient({ urls: ['ws://127.0.0.1:9/relay'] });
    clients.push(client);
    const err = (await health.check([() => relay.isConnected('relay', client)]).catch((e: unknown) => e)) as {
      getStatus(): number;
      getResponse(): unknown;
    };
    expect(err.getStatus()).toBe(503);
    expect(err.getResponse()).toMatchObject({ status: 'error', error: { relay: { status: 'down', message: /Not connected to a relay/ } } });
  });
});
