/**
 * `npm run soak`: SOAK_CALLS (1,000,000) calls through one relay process,
 * SOAK_INFLIGHT (64) at a time, spread round-robin over SOAK_PROVIDERS (3)
 * Nest providers, each call carrying its own number. Reports that every call
 * was answered exactly once (and with its own number), every failure by
 * code, and the relay's memory (from its GET /status/detail) at the start, its
 * peak and at the end. Exits 1 on any lost, duplicated or wrong answer.
 * Not part of `npm test`.
 */
import 'reflect-metadata';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { WsRelayClient, WsRelayStrategy } from '@wsrelay/transport';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { firstValueFrom } from 'rxjs';
import { RELAY_BIN } from './processes.js';

const num = (name: string, fallback: number) => {
  const v = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(v) || v < 1) throw new TypeError(`${name} must be a positive integer`);
  return v;
};
const CALLS = num('SOAK_CALLS', 1_000_000);
const INFLIGHT = num('SOAK_INFLIGHT', 64);
const PROVIDERS = num('SOAK_PROVIDERS', 3);

@Controller()
class EchoController {
  @MessagePattern('soak.echo')
  echo(@Payload() n: number) {
    return n;
  }
}

@Module({ controllers: [EchoController] })
class ProviderModule {}

interface Memory {
  rssBytes: number;
  heapUsedBytes: number;
}

/** The relay's status token (RELAY_STATUS_TOKEN), for its detailed status. */
const STATUS_TOKEN = 'soak-status-token';
const mib = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MiB`;

async function main(): Promise<number> {
  const relay = spawn(process.execPath, [RELAY_BIN], {
    env: { ...process.env, NO_COLOR: '1', RELAY_PORT: '0', RELAY_HOST: '127.0.0.1', RELAY_STATUS_TOKEN: STATUS_TOKEN },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    relay.once('exit', code => reject(new Error(`the relay exited (${code}) before listening`)));
    for (const s of [relay.stdout, relay.stderr]) {
      createInterface({ input: s }).on('line', line => {
        const m = /Relay listening on ws:\/\/[^:]+:(\d+)/.exec(line);
        if (m) resolve(Number(m[1]));
      });
    }
  });
  const url = `ws://127.0.0.1:${port}/relay`;
  const memory = async (): Promise<Memory> =>
    (
      (await (await fetch(`http://127.0.0.1:${port}/status/detail`, { headers: { authorization: `Bearer ${STATUS_TOKEN}` } })).json()) as {
        memory: Memory;
      }
    ).memory;

  const providers = await Promise.all(
    Array.from({ length: PROVIDERS }, async (_, i) => {
      const app = await NestFactory.createMicroservice(ProviderModule, {
        strategy: new WsRelayStrategy({ urls: [url], nodeId: `soak-provider-${i}` }),
        logger: false,
      });
      await app.listen();
      return app;
    }),
  );
  const client = new WsRelayClient({ urls: [url], timeoutMs: 60_000, maxInFlight: INFLIGHT * 2 });
  await client.connect();
  await client.waitFor('soak.echo');

  const answers = new Uint8Array(CALLS);
  const failures = new Map<string, number>();
  let wrong = 0;
  let next = 0;
  let settled = 0;
  const atStart = await memory();
  let peak = atStart.rssBytes;
  const started = Date.now();
  console.log(
    `soak: ${CALLS.toLocaleString('en')} calls, ${INFLIGHT} in flight, ${PROVIDERS} providers, relay RSS ${mib(atStart.rssBytes)} at the start`,
  );
  const progress = setInterval(() => {
    void memory().then(m => {
      peak = Math.max(peak, m.rssBytes);
      const s = (Date.now() - started) / 1000;
      console.log(
        `soak: ${settled.toLocaleString('en')} answered in ${s.toFixed(0)} s (${Math.round(settled / s).toLocaleString('en')}/s), relay RSS ${mib(m.rssBytes)}`,
      );
    });
  }, 5000);

  const worker = async () => {
    while (next < CALLS) {
      const n = next++;
      try {
        const got = await firstValueFrom(client.send<number>('soak.echo', n));
        if (got === n) answers[n]++;
        else wrong++;
      } catch (err) {
        const code = (err as { code?: string }).code ?? String(err);
        failures.set(code, (failures.get(code) ?? 0) + 1);
      }
      settled++;
    }
  };
  await Promise.all(Array.from({ length: INFLIGHT }, worker));
  clearInterval(progress);
  const seconds = (Date.now() - started) / 1000;

  let once1 = 0;
  let missing = 0;
  let twice = 0;
  for (const a of answers) {
    if (a === 1) once1++;
    else if (a === 0) missing++;
    else twice++;
  }
  // Let the relay settle (timers, GC) before reading its memory at the end.
  await new Promise(r => setTimeout(r, 2000));
  const atEnd = await memory();
  console.log(
    `soak: ${CALLS.toLocaleString('en')} calls in ${seconds.toFixed(1)} s (${Math.round(CALLS / seconds).toLocaleString('en')}/s): ` +
      `${once1.toLocaleString('en')} answered exactly once with their own number, ${missing} not answered, ${twice} answered more than once, ${wrong} wrong answers; ` +
      `failures: ${failures.size === 0 ? 'none' : [...failures].map(([c, n]) => `${c} ${n}`).join(', ')}`,
  );
  console.log(
    `soak: relay RSS ${mib(atStart.rssBytes)} at the start, ${mib(peak)} at its peak, ${mib(atEnd.rssBytes)} at the end (heap ${mib(atStart.heapUsedBytes)} → ${mib(atEnd.heapUsedBytes)})`,
  );

  await client.close();
  await Promise.all(providers.map(p => p.close()));
  relay.kill('SIGTERM');
  await once(relay, 'exit');
  const ok = once1 === CALLS && wrong === 0;
  console.log(ok ? 'soak: OK' : 'soak: FAILED');
  return ok ? 0 : 1;
}

main().then(
  code => process.exit(code),
  err => {
    console.error(`soak: ${(err as Error).message}`);
    process.exit(1);
  },
);
