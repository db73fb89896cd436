/**
 * The raw-ws load generator (bench peer, see raw-protocol.ts), with the same
 * modes, environment and output as bench/load.ts: MODE=rpc runs INFLIGHT
 * concurrent echo calls (payload encoded per call, reply decoded and
 * checked); MODE=events keeps at most WINDOW events un-ACKed by the relay.
 *
 * RAW_URL, BENCH_PREFIX, MODE, INFLIGHT, SIZE, PATTERN, WINDOW, DURATION_MS, WARMUP_MS.
 */
import { Decoder, Encoder } from '@msgpack/msgpack';
import WebSocket from 'ws';
import { corkForTick, Raw } from './raw-protocol.js';

const env = (name: string, fallback: string) => process.env[name] ?? fallback;
const prefix = env('BENCH_PREFIX', '');
const size = Number(env('SIZE', '64'));
const durationMs = Number(env('DURATION_MS', '3000'));
const warmupMs = Number(env('WARMUP_MS', '1000'));
const payload = 'x'.repeat(size);
const decoder = new Decoder();
const encoder = new Encoder();
const payloads = new Decoder();
const values = new Encoder();

const ws = new WebSocket(env('RAW_URL', ''), { perMessageDeflate: false });
const waiting = new Map<number, (frame: unknown[]) => void>();
let lastId = 0;

function call(type: number, subject: string, onAnswer: (frame: unknown[]) => void): void {
  lastId = lastId >= 0xffff_ffff ? 1 : lastId + 1;
  waiting.set(lastId, onAnswer);
  corkForTick(ws);
  ws.send(encoder.encode([type, lastId, subject, values.encode(payload)]));
}

ws.on('message', (data: Buffer) => {
  const f = decoder.decode(data) as unknown[];
  const id = f[1] as number;
  const answer = waiting.get(id);
  if (answer === undefined) return;
  waiting.delete(id);
  answer(f);
});

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

async function rpc(): Promise<Record<string, number>> {
  const inflight = Number(env('INFLIGHT', '1'));
  let measuring = false;
  let stopped = false;
  let count = 0;
  const latencies: number[] = [];
  const subject = `${prefix}echo`;
  const worker = () => {
    const t0 = process.hrtime.bigint();
    call(Raw.REQ, subject, frame => {
      const reply = payloads.decode(frame[2] as Uint8Array) as string;
      if (reply.length !== size) throw new Error('bad echo');
      if (measuring) {
        count++;
        latencies.push(Number(process.hrtime.bigint() - t0) / 1000);
      }
      if (!stopped) worker();
    });
  };
  for (let i = 0; i < inflight; i++) worker();
  const { seconds, cpu } = await measure(
    () => (measuring = true),
    () => (measuring = false),
  );
  stopped = true;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0;
  return { rps: count / seconds, mbps: (count * size) / seconds / 1e6, p50us: pct(0.5), p99us: pct(0.99), loadCpu: cpu };
}

async function events(): Promise<Record<string, number>> {
  const subject = `${prefix}${env('PATTERN', 'events')}`;
  const window = Number(env('WINDOW', '1000'));
  const expected = Number(env('EXPECT_RECIPIENTS', '0'));
  let stopped = false;
  let sent = 0;
  let acked = 0;
  let wrongRecipients = 0;
  const onAck = (frame: unknown[]) => {
    acked++;
    if (expected > 0 && frame[2] !== expected) wrongRecipients++;
    pump();
  };
  const pump = () => {
    while (!stopped && sent - acked < window) {
      sent++;
      call(Raw.EVT, subject, onAck);
    }
  };
  pump();
  let sent0 = 0;
  let acked0 = 0;
  let sent1 = 0;
  let acked1 = 0;
  const { seconds, cpu } = await measure(
    () => ((sent0 = sent), (acked0 = acked)),
    () => ((sent1 = sent), (acked1 = acked)),
  );
  stopped = true;
  return {
    sentPerSec: (sent1 - sent0) / seconds,
    landedPerSec: (acked1 - acked0) / seconds,
    errors: 0,
    wrongRecipients,
    lost: 0,
    loadCpu: cpu,
  };
}

ws.on('open', () => {
  // The relay has no WAIT; the provider subscribed before the bench started this process.
  (env('MODE', 'rpc') === 'events' ? events() : rpc())
    .then(result => {
      result.maxRssKiB = process.resourceUsage().maxRSS;
      console.log(`RESULT ${JSON.stringify(result)}`);
      process.exit(0);
    })
    .catch(err => {
      console.error(err);
      process.exit(1);
    });
});
ws.on('error', err => {
  console.error(err.message);
  process.exit(1);
});
