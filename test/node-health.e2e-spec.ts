/**
 * `@wsrelay/transport/health` in a real Nest HTTP app: TerminusModule, a
 * health controller checking the app's WsRelayClient (from ClientsModule)
 * and its WsRelayStrategy (a hybrid app) with WsRelayHealthIndicator. GET
 * /health answers 200 and up while both are connected to the relay, 503 and
 * down with the reason (each relay URL's state) once the relay is gone, and
 * 200 again once it is back on the same port.
 */
import { Controller, Get, Inject, type INestApplication, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ClientsModule, MessagePattern } from '@nestjs/microservices';
import { HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { WsRelayClient, WsRelayStrategy } from '@wsrelay/transport';
import { WsRelayHealthIndicator } from '@wsrelay/transport/health';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type RunningRelay, startRelay, useCleanup } from './support/harness.js';

const CALLER = 'CALLER';
const STRATEGY = 'STRATEGY';

@Controller()
class PingController {
  @MessagePattern('ping')
  ping() {
    return 'pong';
  }
}

@Controller('health')
class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly relay: WsRelayHealthIndicator,
    @Inject(CALLER) private readonly client: WsRelayClient,
    @Inject(STRATEGY) private readonly strategy: WsRelayStrategy,
  ) {}

  @Get()
  check() {
    return this.health.check([
      () => this.relay.isConnected('caller', this.client),
      () => this.relay.isConnected('provider', this.strategy),
    ]);
  }
}

/** Resolves on the node's next `event`. */
function next(node: WsRelayClient | WsRelayStrategy, event: 'connected' | 'disconnected'): Promise<void> {
  return new Promise(resolve => node.on(event, () => resolve()));
}

describe('WsRelayHealthIndicator in a Nest HTTP app', () => {
  const { track } = useCleanup();

  async function app(url: string): Promise<{ app: INestApplication; base: string; client: WsRelayClient; strategy: WsRelayStrategy }> {
    const strategy = new WsRelayStrategy({ urls: [url], reconnect: { initialDelayMs: 20, maxDelayMs: 200 } });
    @Module({
      imports: [
        TerminusModule.forRoot({ logger: false }),
        ClientsModule.register([
          { name: CALLER, customClass: WsRelayClient, options: { urls: [url], reconnect: { initialDelayMs: 20, maxDelayMs: 200 } } },
        ]),
      ],
      controllers: [HealthController, PingController],
      providers: [WsRelayHealthIndicator, { provide: STRATEGY, useValue: strategy }],
    })
    class HealthAppModule {}
    const nest = track(await NestFactory.create(HealthAppModule, { logger: false }));
    nest.connectMicroservice({ strategy });
    await nest.startAllMicroservices();
    const client = nest.get<WsRelayClient>(CALLER);
    await client.connect();
    await nest.listen(0, '127.0.0.1');
    const { port } = (nest.getHttpServer() as Server).address() as AddressInfo;
    return { app: nest, base: `http://127.0.0.1:${port}`, client, strategy };
  }

  async function health(base: string): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(`${base}/health`);
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  it('is up while connected, down with the reason while the relay is gone, and up again once it is back', async () => {
    let relay: RunningRelay = track(await startRelay());
    const { url, port } = relay;
    const { base, client, strategy } = await app(url);

    const up = await health(base);
    expect(up.status).toBe(200);
    expect(up.body).toMatchObject({
      status: 'ok',
      info: {
        caller: { status: 'up', nodeId: client.nodeId, relays: { [url]: 'connected' } },
        provider: { status: 'up', nodeId: strategy.nodeId, relays: { [url]: 'connected' } },
      },
    });

    const down = Promise.all([next(client, 'disconnected'), next(strategy, 'disconnected')]);
    await relay.close();
    await down;
    const gone = await health(base);
    expect(gone.status).toBe(503);
    expect(gone.body).toMatchObject({ status: 'error', error: { caller: { status: 'down' }, provider: { status: 'down' } } });
    // The reason: no relay, and the state of each relay URL.
    const reported = gone.body.error as Record<string, { message: string; relays: Record<string, string> }>;
    for (const node of [reported.caller, reported.provider]) {
      expect(node.message).toMatch(new RegExp(`^Not connected to a relay \\(${url} (error|connecting|not_connected)\\)$`));
      expect(Object.keys(node.relays)).toEqual([url]);
      expect(node.relays[url]).toMatch(/^(error|connecting|not_connected)$/);
    }

    const back = Promise.all([next(client, 'connected'), next(strategy, 'connected')]);
    relay = track(await startRelay({}, port));
    await back;
    const again = await health(base);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ status: 'ok', details: { caller: { status: 'up' }, provider: { status: 'up' } } });
  });
});
