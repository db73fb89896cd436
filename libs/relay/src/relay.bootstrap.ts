import type { INestApplication, LoggerService, LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { RelayModuleOptions } from './interfaces/relay-options.interface.js';
import { RelayModule } from './relay.module.js';
import { RelayWsAdapter } from './relay-ws.adapter.js';

/**
 * Creates a relay app (not yet listening) with the relay adapter in place:
 * `const app = await createRelayApp(options); await app.listen(8787)`.
 */
export async function createRelayApp(
  options: RelayModuleOptions = {},
  appOptions: { logger?: LoggerService | LogLevel[] | false } = {},
): Promise<INestApplication> {
  const app = await NestFactory.create(RelayModule.forRoot(options), {
    logger: appOptions.logger,
    abortOnError: false,
  });
  app.useWebSocketAdapter(new RelayWsAdapter(app));
  return app;
}
