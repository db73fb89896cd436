import 'reflect-metadata';
import { type DynamicModule, type LoggerService, type LogLevel, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { WsRelayStrategy } from '@wsrelay/transport';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { DemoController } from './demo.controller.js';
import { ExampleEvents, PROVIDER_RECONNECT } from './example-events.js';
import { ExampleRelay } from './example-relay.js';
import { ProviderActivity } from './provider-activity.js';
import { PageConfig, TokenController } from './token.controller.js';
import { ExampleTokens } from './tokens.js';

export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 8080;
export const DEFAULT_RELAY_PORT = 8790;

export interface BrowserExampleOptions {
  /** The built page (what `buildPage()` wrote). */
  pageDir: string;
  /** @default '127.0.0.1' */
  host?: string;
  /** The page's HTTP port; 0 for any free one. @default 8080 */
  port?: number;
  /** The relay's port; 0 for any free one. @default 8790 */
  relayPort?: number;
  /** The HS256 secret shared by /token and the relay. @default 32 random bytes */
  secret?: Uint8Array;
  /** Every how many ms the provider emits `orders.created`. @default 1000 */
  orderEveryMs?: number;
  /** The Nest apps' logger; false for none. */
  logger?: LoggerService | LogLevel[] | false;
}

export interface BrowserExample {
  /** The page. */
  url: string;
  relay: ExampleRelay;
  /** What the provider's `slow` handler saw. */
  activity: ProviderActivity;
  close(): Promise<void>;
}

interface Parts {
  tokens: ExampleTokens;
  config: PageConfig;
  activity: ProviderActivity;
  events: ExampleEvents;
}

function browserExampleModule(parts: Parts): DynamicModule {
  @Module({})
  class BrowserExampleModule {}
  return {
    module: BrowserExampleModule,
    controllers: [TokenController, DemoController],
    providers: [
      { provide: ExampleTokens, useValue: parts.tokens },
      { provide: PageConfig, useValue: parts.config },
      { provide: ProviderActivity, useValue: parts.activity },
      { provide: ExampleEvents, useValue: parts.events },
    ],
  };
}

/**
 * Starts the example in this process: a Nest app serving the page and
 * POST /token over HTTP and, as a hybrid app, the provider over the relay;
 * and the relay, in an app of its own, that admits browsers only from the
 * page's origin.
 */
export async function startBrowserExample(options: BrowserExampleOptions): Promise<BrowserExample> {
  const host = options.host ?? DEFAULT_HOST;
  const secret = options.secret ?? randomBytes(32);
  const tokens = new ExampleTokens(secret);
  const parts: Parts = {
    tokens,
    config: new PageConfig(),
    activity: new ProviderActivity(),
    events: new ExampleEvents(options.orderEveryMs ?? 1000, () => tokens.provider()),
  };
  const app = await NestFactory.create<NestExpressApplication>(browserExampleModule(parts), { logger: options.logger });
  app.useStaticAssets(options.pageDir);
  await app.listen(options.port ?? DEFAULT_PORT, host);
  const pagePort = (app.getHttpServer().address() as AddressInfo).port;
  const relay = new ExampleRelay({
    host,
    port: options.relayPort ?? DEFAULT_RELAY_PORT,
    secret,
    allowedOrigins: originsOf(host, pagePort),
    logger: options.logger,
  });
  const close = async () => {
    await parts.events.close();
    await app.close();
    await relay.stop();
  };
  try {
    await relay.start();
    parts.config.relayUrl = relay.url;
    const strategy = new WsRelayStrategy({
      urls: [relay.url],
      service: 'browser-example',
      token: () => tokens.provider(),
      reconnect: PROVIDER_RECONNECT,
      drainTimeoutMs: 2_000,
    });
    app.connectMicroservice({ strategy });
    await app.startAllMicroservices();
    await parts.events.start(relay.url);
  } catch (err) {
    await close();
    throw err;
  }
  return { url: `http://${host}:${pagePort}/`, relay, activity: parts.activity, close };
}

/** The page's origin, and its `localhost` spelling when it is served on the loopback address. */
function originsOf(host: string, port: number): string[] {
  const origins = [`http://${host}:${port}`];
  if (host === '127.0.0.1') origins.push(`http://localhost:${port}`);
  return origins;
}
