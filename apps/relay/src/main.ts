import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { createRelayApp } from '@wsrelay/relay';
import type { AddressInfo } from 'node:net';
import { relayConfigFromEnv } from './relay.config.js';

async function bootstrap(): Promise<void> {
  const config = relayConfigFromEnv();
  const app = await createRelayApp(config.relay, { tls: config.tls });
  app.enableShutdownHooks();
  await app.listen(config.port, config.host);
  const { port } = app.getHttpServer().address() as AddressInfo;
  const scheme = config.tls ? 'wss' : 'ws';
  new Logger('Relay').log(`Relay listening on ${scheme}://${config.host}:${port}${config.relay.path ?? '/relay'}`);
}

bootstrap().catch(err => {
  new Logger('Relay').error(err instanceof Error ? err.message : err);
  process.exit(1);
});
