/**
 * Bench load generator: a closed loop of INFLIGHT concurrent `send('echo')`
 * calls with SIZE-byte payloads for DURATION_MS after WARMUP_MS. Prints one
 * `RESULT {json}` line.
 */
import 'reflect-metadata';
import { ClientProxyFactory, type ClientProxy, Transport } from '@nestjs/microservices';
import { WsRelayClient } from '@wsrelay/transport';
import { firstValueFrom } from 'rxjs';

const env = (name: string, fallback?: string): string => {
  const v = process.env[name] ?? fallback;
  if (v === undefined) throw new Error(`${name} is required`);
  return v;
};

async function main(): Promise<void> {
  const transport = env('TRANSPORT');
  const inflight = Number(env('INFLIGHT', '1'));
  const size = Number(env('SIZE', '64'));
  const durationMs = Number(env('DURATION_MS', '3000'));
  const warmupMs = Number(env('WARMUP_MS', '1000'));
  const client: ClientProxy =
    transport === 'wsrelay'
      ? new WsRelayClient({ urls: [env('RELAY_URL')] })
      : ClientProxyFactory.create({ transport: Transport.TCP, options: { host: '127.0.0.1', port: Number(env('TCP_PORT')) } });
  await client.connect();
  if (client instanceof WsRelayClient) await client.waitFor('echo', 10_000);
  const payload = 'x'.repeat(size);

  let measuring = false;
  let stopped = false;
  let count = 0;
  const latencies: number[] = [];
  const worker = async () => {
    while (!stopped) {
      const t0 = process.hrtime.bigint();
      const reply = await firstValueFrom(client.send<string>('echo', payload));
      if (reply.length !== size) throw new Error('bad echo');
      if (measuring) {
        count++;
        latencies.push(Number(process.hrtime.bigint() - t0) / 1000);
      }
    }
  };
  const workers = Array.from({ length: inflight }, worker);
  await new Promise(r => setTimeout(r, warmupMs));
  measuring = true;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise(r => setTimeout(r, durationMs));
  measuring = false;
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  stopped = true;
  await Promise.all(workers);
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0;
  const result = {
    rps: count / seconds,
    mbps: (count * size) / seconds / 1e6,
    p50us: pct(0.5),
    p99us: pct(0.99),
    loadCpu: (cpu.user + cpu.system) / 1e6 / seconds,
  };
  console.log(`RESULT ${JSON.stringify(result)}`);
  await client.close();
  process.exit(0);
}

main().catch(err => {
  console.error(err);
  process.exit(1);
});
