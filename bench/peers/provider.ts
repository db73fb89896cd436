/**
 * Bench provider, one Nest microservice on the transport named by TRANSPORT:
 * wsrelay (RELAY_URL), tcp (TCP_PORT, 0 = any), nats (NATS_URL) or redis
 * (REDIS_HOST, REDIS_PORT).
 *
 * ROLE=provider (default) answers `<prefix>echo` and counts `<prefix>events`;
 * ROLE=subscriber (the fan-out workload) only counts `<prefix>fanout`, so it
 * never takes RPC traffic. BENCH_PREFIX keeps one run's subjects and channels
 * apart from anyone else's on a shared NATS or Redis. CREDIT=1 serves the
 * event count for publishers that have no ack to wait for (marks.ts).
 * TRACE=1 (`npm run bench:trace`) stamps the echo handler's start and end for
 * sampled requests.
 * Prints "READY port=<tcp port or 0> credit=<port or 0>".
 */
import 'reflect-metadata';
import { Controller, Module, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EventPattern, MessagePattern, type MicroserviceOptions, Payload, Transport } from '@nestjs/microservices';
import { WsRelayStrategy } from '@wsrelay/transport';
import type { AddressInfo, Server } from 'node:net';
import { traceHandler } from '../trace/marks.js';
import { answerCounts, type CreditServer, DeliveryLog, startCreditServer } from './marks.js';

const prefix = process.env.BENCH_PREFIX ?? '';
const role = process.env.ROLE ?? 'provider';
const traced = process.env.TRACE === '1';
const delivered = new DeliveryLog();
let credit: CreditServer | undefined;

function count(): void {
  delivered.hit();
  credit?.onDelivered(delivered.count);
}

@Controller()
class EchoController {
  @MessagePattern(`${prefix}echo`)
  echo(@Payload() data: unknown) {
    return traced ? traceHandler(data, d => d) : data;
  }

  @EventPattern(`${prefix}events`)
  onEvent(@Payload() _data: unknown) {
    count();
  }
}

@Controller()
class FanoutController {
  @EventPattern(`${prefix}fanout`)
  onEvent(@Payload() _data: unknown) {
    count();
  }
}

function transportOptions(transport: string | undefined): MicroserviceOptions {
  switch (transport) {
    case 'wsrelay':
      return {
        strategy: new WsRelayStrategy({ urls: [process.env.RELAY_URL as string], nodeId: `bench-${role}-${process.pid}` }),
      };
    case 'tcp':
      return { transport: Transport.TCP, options: { host: '127.0.0.1', port: Number(process.env.TCP_PORT ?? 0) } };
    case 'nats':
      return { transport: Transport.NATS, options: { servers: [process.env.NATS_URL ?? 'nats://127.0.0.1:4222'] } };
    case 'redis':
      return {
        transport: Transport.REDIS,
        options: { host: process.env.REDIS_HOST ?? '127.0.0.1', port: Number(process.env.REDIS_PORT ?? 6379) },
      };
    default:
      throw new Error(`TRANSPORT must be wsrelay, tcp, nats or redis, got ${transport}`);
  }
}

async function main(): Promise<void> {
  const transport = process.env.TRANSPORT;
  const controllers: Type[] = role === 'subscriber' ? [FanoutController] : [EchoController];
  @Module({ controllers })
  class BenchModule {}
  if (process.env.CREDIT === '1') credit = await startCreditServer(() => delivered.count);
  const app = await NestFactory.createMicroservice(BenchModule, { ...transportOptions(transport), logger: ['error'] });
  await app.listen();
  const port = transport === 'tcp' ? (app.unwrap<Server>().address() as AddressInfo).port : 0;
  answerCounts(delivered);
  process.on('SIGTERM', () => void app.close().finally(() => process.exit(0)));
  console.log(`READY port=${port} credit=${credit?.port ?? 0}`);
}

main().catch(err => {
  console.error(err);
  process.exit(1);
});
