/**
 * Bench load generator on a Nest ClientProxy: TRANSPORT wsrelay (RELAY_URL),
 * tcp (TCP_PORT), nats (NATS_URL) or redis (REDIS_HOST, REDIS_PORT).
 *
 * MODE=rpc (default): a closed loop of INFLIGHT concurrent
 * `send('<prefix>echo')` calls with SIZE-byte payloads.
 * MODE=events: `emit('<prefix><PATTERN>')` with SIZE-byte payloads, at most
 * WINDOW (1000) in flight. ACK=emit counts an event as landed when its emit()
 * observable completes (our relay's ACK, Redis's PUBLISH reply);
 * ACK=credit when every subscriber on CREDIT_PORTS has counted it (Nest TCP
 * and NATS complete emit() at the local write, so nothing else bounds them).
 *
 * Measures for DURATION_MS after WARMUP_MS, printing "MEASURE start" and
 * "MEASURE end" around the window and then one "RESULT {json}" line.
 *
 * TRACE=1 (`npm run bench:trace`, rpc only): every TRACE_SAMPLE-th request in
 * the window carries a trace marker and has its send and resolution stamped.
 */
import 'reflect-metadata';
import { type ClientOptions, ClientProxyFactory, type ClientProxy, Transport } from '@nestjs/microservices';
import { WsRelayClient, type WsRelayEventAck } from '@wsrelay/transport';
import { connect as tcpConnect } from 'node:net';
import { createInterface } from 'node:readline';
import { firstValueFrom } from 'rxjs';
import { loadTracer } from './trace/marks.js';

const env = (name: string, fallback?: string): string => {
  const v = process.env[name] ?? fallback;
  if (v === undefined) throw new Error(`${name} is required`);
  return v;
};

const prefix = env('BENCH_PREFIX', '');
const size = Number(env('SIZE', '64'));
const durationMs = Number(env('DURATION_MS', '3000'));
const warmupMs = Number(env('WARMUP_MS', '1000'));
const payload = 'x'.repeat(size);

function createClient(transport: string): ClientProxy {
  if (transport === 'wsrelay') return new WsRelayClient({ urls: [env('RELAY_URL')] });
  const options: Record<string, ClientOptions> = {
    tcp: { transport: Transport.TCP, options: { host: '127.0.0.1', port: Number(env('TCP_PORT', '0')) } },
    nats: { transport: Transport.NATS, options: { servers: [env('NATS_URL', 'nats://127.0.0.1:4222')] } },
    redis: {
      transport: Transport.REDIS,
      options: { host: env('REDIS_HOST', '127.0.0.1'), port: Number(env('REDIS_PORT', '6379')) },
    },
  };
  if (!(transport in options)) throw new Error(`TRANSPORT must be wsrelay, tcp, nats or redis, got ${transport}`);
  return ClientProxyFactory.create(options[transport]);
}

/** Waits out the warm-up, then times the measured window; returns its length in seconds and this process's CPU (cores). */
async function measure(onStart: () => void, onEnd: () => void): Promise<{ seconds: number; cpu: number }> {
  await new Promise(r => setTimeout(r, warmupMs));
  console.log('MEASURE start');
  onStart();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise(r => setTimeout(r, durationMs));
  onEnd();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  console.log('MEASURE end');
  return { seconds, cpu: (cpu.user + cpu.system) / 1e6 / seconds };
}

async function rpc(client: ClientProxy): Promise<Record<string, number>> {
  const inflight = Number(env('INFLIGHT', '1'));
  const pattern = `${prefix}echo`;
  let measuring = false;
  let stopped = false;
  let count = 0;
  const latencies: number[] = [];
  const tracer = process.env.TRACE === '1' ? loadTracer(size) : undefined;
  const worker = async () => {
    while (!stopped) {
      const traced = measuring ? tracer?.next() : undefined;
      const t0 = process.hrtime.bigint();
      const reply = await firstValueFrom(client.send<string>(pattern, traced?.payload ?? payload));
      traced?.resolved(t0);
      if (reply.length !== size) throw new Error('bad echo');
      if (measuring) {
        count++;
        latencies.push(Number(process.hrtime.bigint() - t0) / 1000);
      }
    }
  };
  const workers = Array.from({ length: inflight }, worker);
  const { seconds, cpu } = await measure(
    () => (measuring = true),
    () => (measuring = false),
  );
  stopped = true;
  await Promise.all(workers);
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0;
  return {
    rps: count / seconds,
    mbps: (count * size) / seconds / 1e6,
    p50us: pct(0.5),
    p99us: pct(0.99),
    loadCpu: cpu,
  };
}

/** Running counts of the subscribers on CREDIT_PORTS; `landed()` is the smallest, since this publisher connected. */
async function credits(ports: number[], onProgress: () => void): Promise<{ landed: () => number; close: () => void }> {
  const counts = await Promise.all(
    ports.map(
      port =>
        new Promise<{ base: number; now: number; close: () => void }>((resolve, reject) => {
          const socket = tcpConnect(port, '127.0.0.1');
          socket.setNoDelay(true);
          socket.once('error', reject);
          let entry: { base: number; now: number; close: () => void } | undefined;
          createInterface({ input: socket }).on('line', line => {
            const n = Number(line);
            if (entry === undefined) resolve((entry = { base: n, now: n, close: () => socket.destroy() }));
            else entry.now = n;
            onProgress();
          });
        }),
    ),
  );
  return {
    landed: () => Math.min(...counts.map(c => c.now - c.base)),
    close: () => counts.forEach(c => c.close()),
  };
}

async function events(client: ClientProxy, transport: string): Promise<Record<string, number>> {
  const pattern = `${prefix}${env('PATTERN', 'events')}`;
  const window = Number(env('WINDOW', '1000'));
  const expected = Number(env('EXPECT_RECIPIENTS', '0'));
  const byCredit = env('ACK', 'emit') === 'credit';
  let stopped = false;
  let sent = 0;
  let acked = 0;
  let inflight = 0;
  let errors = 0;
  let wrongRecipients = 0;
  let lost = 0;
  let credit: Awaited<ReturnType<typeof credits>> | undefined;
  const landed = () => (credit === undefined ? acked : credit.landed() + lost);
  const done = () => {
    inflight--;
    acked++;
    if (!byCredit) pump();
  };
  const pump = () => {
    while (!stopped && (byCredit ? sent - landed() : inflight) < window) {
      sent++;
      inflight++;
      client.emit(pattern, payload).subscribe({
        next: (ack: unknown) => {
          if (transport === 'wsrelay' && expected > 0 && (ack as WsRelayEventAck).recipients !== expected) wrongRecipients++;
        },
        error: () => {
          errors++;
          done();
        },
        complete: done,
      });
    }
  };
  if (byCredit) {
    credit = await credits(env('CREDIT_PORTS').split(',').map(Number), pump);
    // An event that never arrives would hold its credit forever: after 2 s without progress, write it off.
    let last = -1;
    let since = Date.now();
    setInterval(() => {
      const now = landed();
      if (now !== last || sent === now) {
        last = now;
        since = Date.now();
      } else if (Date.now() - since > 2000) {
        lost += sent - now;
        pump();
      }
    }, 250).unref();
  }
  pump();
  let sent0 = 0;
  let landed0 = 0;
  let sent1 = 0;
  let landed1 = 0;
  const { seconds, cpu } = await measure(
    () => ((sent0 = sent), (landed0 = landed())),
    () => ((sent1 = sent), (landed1 = landed())),
  );
  stopped = true;
  credit?.close();
  return {
    sentPerSec: (sent1 - sent0) / seconds,
    landedPerSec: (landed1 - landed0) / seconds,
    errors,
    wrongRecipients,
    lost,
    loadCpu: cpu,
  };
}

async function main(): Promise<void> {
  const transport = env('TRANSPORT');
  const client = createClient(transport);
  await client.connect();
  if (client instanceof WsRelayClient && env('MODE', 'rpc') === 'rpc') await client.waitFor(`${prefix}echo`, 10_000);
  const result = env('MODE', 'rpc') === 'events' ? await events(client, transport) : await rpc(client);
  result.maxRssKiB = process.resourceUsage().maxRSS;
  console.log(`RESULT ${JSON.stringify(result)}`);
  await Promise.race([client.close(), new Promise(r => setTimeout(r, 2000))]);
  process.exit(0);
}

main().catch(err => {
  console.error(err);
  process.exit(1);
});
