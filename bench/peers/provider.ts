/** Bench provider: one echo handler, on our transport (RELAY_URL) or Nest TCP (TCP_PORT=0 for any). */
import 'reflect-metadata';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessagePattern, type MicroserviceOptions, Payload, Transport } from '@nestjs/microservices';
import { WsRelayStrategy } from '@wsrelay/transport';
import type { AddressInfo, Server } from 'node:net';

@Controller()
class EchoController {
  @MessagePattern('echo')
  echo(@Payload() data: unknown) {
    return data;
  }
}

@Module({ controllers: [EchoController] })
class BenchModule {}

async function main(): Promise<void> {
  const transport = process.env.TRANSPORT;
  const options: MicroserviceOptions =
    transport === 'wsrelay'
      ? { strategy: new WsRelayStrategy({ urls: [process.env.RELAY_URL as string], nodeId: 'bench-provider' }) }
      : { transport: Transport.TCP, options: { host: '127.0.0.1', port: Number(process.env.TCP_PORT ?? 0) } };
  const app = await NestFactory.createMicroservice(BenchModule, { ...options, logger: ['error'] });
  app.enableShutdownHooks();
  await app.listen();
  const port = transport === 'wsrelay' ? 0 : (app.unwrap<Server>().address() as AddressInfo).port;
  console.log(`READY port=${port}`);
}

main().catch(err => {
  console.error(err);
  process.exit(1);
});
