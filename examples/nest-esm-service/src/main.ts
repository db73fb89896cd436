import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { WsRelayStrategy } from '@wsrelay/transport';
import { AppModule } from './app.module.js';

async function bootstrap() {
  const url = process.env.RELAY_URL ?? 'ws://127.0.0.1:8787/relay';
  const app = await NestFactory.createMicroservice(AppModule, {
    strategy: new WsRelayStrategy({ urls: [url], token: process.env.RELAY_TOKEN, service: 'greeter' }),
  });
  app.enableShutdownHooks();
  await app.listen();
  console.log(`Greeter serving through ${url}`);
}
void bootstrap();
