import type { INestApplication, LoggerService, LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { RelayModuleOptions } from './interfaces/relay-options.interface.js';
import { RelayModule } from './relay.module.js';
import { RelayWsAdapter } from './relay-ws.adapter.js';

/** Options of the relay's Nest app itself (not of the routing). */
export interface RelayAppOptions {
  logger?: LoggerService | LogLevel[] | false;
  /** Serve `wss://` with this PEM key and certificate (and optional CA chain). */
  tls?: { key: string | Buffer; cert: string | Buffer; ca?: string | Buffer | Array<string | Buffer> };
}

/**
 * Creates a relay app (not yet listening) with the relay adapter in place:
 * `const app = await createRelayApp(options); await app.listen(8787)`.
 */
export async function createRelayApp(
  options: RelayModuleOptions = {},
  appOptions: RelayAppOptions = {},
): Promise<INestApplication> {
  const app = await NestFactory.create(RelayModule.forRoot(options), {
    logger: appOptions.logger,
    abortOnError: false,
    httpsOptions: appOptions.tls,
  });
  app.useWebSocketAdapter(new RelayWsAdapter(app));
  return app;
}
