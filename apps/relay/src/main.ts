import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { createRelayApp } from '@wsrelay/relay';
import type { AddressInfo } from 'node:net';
import { relayConfigFromEnv } from './relay.config.js';

async function bootstrap(): Promise<void> {
  const config = relayConfigFromEnv();
  const app = await createRelayApp(config.relay);
  app.enableShutdownHooks();
  await app.listen(config.port, config.host);
  const { port } = app.getHttpServer().address() as AddressInfo;
  const logger = new Logger('Relay');
  logger.warn('Authentication is off: any client that reaches this port can join routing.');
  logger.log(`Relay listening on ws://${config.host}:${port}${config.relay.path ?? '/relay'}`);
}

bootstrap().catch(err => {
  new Logger('Relay').error(err instanceof Error ? err.message : err);
  process.exit(1);
});
