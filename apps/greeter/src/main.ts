import 'reflect-metadata';
import { Logger, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { WsRelayStrategy } from '@wsrelay/transport';
import { GreeterController } from './greeter.controller.js';

@Module({ controllers: [GreeterController] })
class GreeterModule {}

async function bootstrap(): Promise<void> {
  const url = process.env.RELAY_URL ?? 'ws://127.0.0.1:8787/relay';
  const app = await NestFactory.createMicroservice(GreeterModule, {
    strategy: new WsRelayStrategy({ urls: [url], service: 'greeter', queue: 'greeters' }),
  });
  app.enableShutdownHooks();
  await app.listen();
  new Logger('Greeter').log(`Greeter serving through ${url}`);
}

bootstrap().catch(err => {
  new Logger('Greeter').error(err instanceof Error ? err.message : err);
  process.exit(1);
});
