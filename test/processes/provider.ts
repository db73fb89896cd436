/**
 * A provider in a process of its own, for the specs that kill one for real
 * (SIGKILL, SIGSTOP) or restart it (SIGTERM drains: `app.close()`, then exit 0).
 * Configured from the environment:
 *
 * PROVIDER_URLS (comma-separated relay URLs), PROVIDER_NODE_ID, PROVIDER_QUEUE,
 * PROVIDER_DELAY_MS ('work' answers after it), PROVIDER_HEARTBEAT_INTERVAL_MS,
 * PROVIDER_RECONNECT_INITIAL_DELAY_MS, PROVIDER_RECONNECT_MAX_DELAY_MS,
 * PROVIDER_DRAIN_TIMEOUT_MS, PROVIDER_LOG_REQUESTS=1 (a line per request).
 *
 * What it did goes to stdout, a line each, so a test waits on lines instead
 * of sleeping (stdout to a pipe is synchronous on Linux: a line printed
 * before a SIGKILL is not lost):
 *
 *   READY <nodeId> pid=<pid>             app.listen() resolved
 *   REQ <seq> / RES <seq>                a 'work' request started / is answered (PROVIDER_LOG_REQUESTS=1)
 *   BLOB <seq>                           a 'blob' request is answered
 *   EVENT-START <seq> <attempt>          an event handler started
 *   EVENT <seq> <attempt>                an event handler finished
 *   STATUS <status> [<attempt> <delay>] at=<ms>   connected, disconnected, reconnecting
 *   CLOSED                               app.close() resolved after SIGTERM
 */
import 'reflect-metadata';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { type WsRelayContext, WsRelayStrategy } from '@wsrelay/transport';

const env = process.env;
const nodeId = env.PROVIDER_NODE_ID || `provider-${process.pid}`;
const delayMs = num('PROVIDER_DELAY_MS') ?? 0;
const logRequests = env.PROVIDER_LOG_REQUESTS === '1';
const blobs = new Map<number, string>();

function num(name: string): number | undefined {
  const raw = env[name];
  return raw === undefined || raw === '' ? undefined : Number(raw);
}

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

/** A job event: `hold` keeps its first delivery from ever finishing (the member is killed meanwhile). */
interface Job {
  seq: number;
  hold?: boolean;
  delayMs?: number;
}

@Controller()
class ChaosController {
  /** Answers with who answered (node id and pid, so a restarted node is told apart). */
  @MessagePattern('work')
  async work(@Payload() seq: number) {
    if (logRequests) console.log(`REQ ${seq}`);
    if (delayMs > 0) await sleep(delayMs);
    if (logRequests) console.log(`RES ${seq}`);
    return `${nodeId}@${process.pid}`;
  }

  /** `bytes` of payload, for consumers that do not read. */
  @MessagePattern('blob')
  blob(@Payload() { seq, bytes }: { seq: number; bytes: number }) {
    console.log(`BLOB ${seq}`);
    let blob = blobs.get(bytes);
    if (blob === undefined) blobs.set(bytes, (blob = 'x'.repeat(bytes)));
    return blob;
  }

  @EventPattern<string>('jobs.*')
  async job(@Payload() job: Job, @Ctx() ctx: WsRelayContext) {
    const attempt = ctx.getAttempt();
    console.log(`EVENT-START ${job.seq} ${attempt}`);
    if (job.hold && attempt === 1) await new Promise(() => undefined);
    if (job.delayMs) await sleep(job.delayMs);
    console.log(`EVENT ${job.seq} ${attempt}`);
  }
}

@Module({ controllers: [ChaosController] })
class ProviderModule {}

async function main(): Promise<void> {
  const urls = (env.PROVIDER_URLS ?? '').split(',').filter(Boolean);
  const strategy = new WsRelayStrategy({
    urls,
    nodeId,
    queue: env.PROVIDER_QUEUE || undefined,
    heartbeatIntervalMs: num('PROVIDER_HEARTBEAT_INTERVAL_MS'),
    drainTimeoutMs: num('PROVIDER_DRAIN_TIMEOUT_MS'),
    reconnect: { initialDelayMs: num('PROVIDER_RECONNECT_INITIAL_DELAY_MS'), maxDelayMs: num('PROVIDER_RECONNECT_MAX_DELAY_MS') },
  });
  strategy.on('connected', () => console.log(`STATUS connected at=${Date.now()}`));
  strategy.on('disconnected', () => console.log(`STATUS disconnected at=${Date.now()}`));
  strategy.on('reconnecting', (attempt, delay) => console.log(`STATUS reconnecting ${attempt} ${delay} at=${Date.now()}`));
  const app = await NestFactory.createMicroservice(ProviderModule, { strategy, logger: ['error', 'warn'] });
  await app.listen();
  process.once('SIGTERM', () => {
    app.close().then(
      () => {
        console.log('CLOSED');
        process.exit(0);
      },
      err => {
        console.error(err);
        process.exit(1);
      },
    );
  });
  console.log(`READY ${nodeId} pid=${process.pid}`);
}

main().catch(err => {
  console.error(err);
  process.exit(1);
});
