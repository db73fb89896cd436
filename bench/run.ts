/**
 * `npm run bench`: our transport (client -> relay -> provider, all Nest) against
 * Nest's TCP transport (client -> provider direct), each piece in its own
 * process, same workloads, several rounds in alternating order. Prints a
 * markdown table of medians (with min-max spread) and ratios, and writes
 * bench/results/latest.json.
 *
 * BENCH_ROUNDS (default 3), BENCH_DURATION_MS (default 3000).
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { type Started, startTs, stop } from '../scripts/processes.js';

interface Workload {
  id: string;
  title: string;
  inflight: number;
  size: number;
  metric: 'rps' | 'mbps';
}

const WORKLOADS: Workload[] = [
  { id: 'W1', title: '1 in flight, 64 B', inflight: 1, size: 64, metric: 'rps' },
  { id: 'W2', title: '64 in flight, 64 B', inflight: 64, size: 64, metric: 'rps' },
  { id: 'W3', title: '16 in flight, 16 KiB', inflight: 16, size: 16 * 1024, metric: 'mbps' },
];

type Peer = 'wsrelay' | 'nest-tcp';
interface Cell {
  rps: number;
  mbps: number;
  p50us: number;
  p99us: number;
  loadCpu: number;
}

const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const durationMs = Number(process.env.BENCH_DURATION_MS ?? 3000);
const running: Started[] = [];

async function servers(): Promise<Record<Peer, Record<string, string>>> {
  const relay = startTs('apps/relay/src/main.ts', { RELAY_PORT: '0', RELAY_HOST: '127.0.0.1' });
  running.push(relay);
  const [, url] = await relay.line(/Relay listening on (ws:\/\/\S+)/);
  const ours = startTs('bench/peers/provider.ts', { TRANSPORT: 'wsrelay', RELAY_URL: url });
  const tcp = startTs('bench/peers/provider.ts', { TRANSPORT: 'tcp', TCP_PORT: '0' });
  running.push(ours, tcp);
  await ours.line(/READY/);
  const [, port] = await tcp.line(/READY port=(\d+)/);
  return { wsrelay: { TRANSPORT: 'wsrelay', RELAY_URL: url }, 'nest-tcp': { TRANSPORT: 'tcp', TCP_PORT: port } };
}

async function cell(env: Record<string, string>, w: Workload): Promise<Cell> {
  const load = startTs('bench/load.ts', {
    ...env,
    INFLIGHT: String(w.inflight),
    SIZE: String(w.size),
    DURATION_MS: String(durationMs),
  });
  const [, json] = await load.line(/^RESULT (.*)$/, durationMs + 60_000);
  await stop(load.child);
  return JSON.parse(json) as Cell;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main(): Promise<void> {
  const envs = await servers();
  const results: Record<string, Record<Peer, Cell[]>> = {};
  for (let round = 0; round < rounds; round++) {
    const order: Peer[] = round % 2 === 0 ? ['wsrelay', 'nest-tcp'] : ['nest-tcp', 'wsrelay'];
    for (const w of WORKLOADS) {
      results[w.id] ??= { wsrelay: [], 'nest-tcp': [] };
      for (const peer of order) {
        const c = await cell(envs[peer], w);
        results[w.id][peer].push(c);
        console.error(`round ${round + 1}/${rounds} ${w.id} ${peer}: ${w.metric === 'rps' ? `${c.rps.toFixed(0)} req/s` : `${c.mbps.toFixed(1)} MB/s`} p50 ${c.p50us.toFixed(0)} µs p99 ${c.p99us.toFixed(0)} µs`);
      }
    }
  }
  const rows = WORKLOADS.map(w => {
    const stat = (peer: Peer, k: keyof Cell) => median(results[w.id][peer].map(c => c[k]));
    const spread = (peer: Peer) => {
      const xs = results[w.id][peer].map(c => c[w.metric]);
      return `${Math.min(...xs).toFixed(w.metric === 'rps' ? 0 : 1)}–${Math.max(...xs).toFixed(w.metric === 'rps' ? 0 : 1)}`;
    };
    const ours = stat('wsrelay', w.metric);
    const tcp = stat('nest-tcp', w.metric);
    return {
      workload: w,
      ours: { value: ours, spread: spread('wsrelay'), p50us: stat('wsrelay', 'p50us'), p99us: stat('wsrelay', 'p99us') },
      tcp: { value: tcp, spread: spread('nest-tcp'), p50us: stat('nest-tcp', 'p50us'), p99us: stat('nest-tcp', 'p99us') },
      ratio: ours / tcp,
    };
  });
  const unit = (w: Workload) => (w.metric === 'rps' ? 'req/s' : 'MB/s');
  const fmt = (v: number, w: Workload) => (w.metric === 'rps' ? v.toFixed(0) : v.toFixed(1));
  const table = [
    `wsrelay vs Nest TCP — ${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version}, ${rounds} rounds × ${durationMs} ms, medians (min–max)`,
    '',
    '| workload | wsrelay (via relay) | p50 / p99 µs | Nest TCP (direct) | p50 / p99 µs | ratio |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows.map(
      r =>
        `| ${r.workload.id} ${r.workload.title} | ${fmt(r.ours.value, r.workload)} ${unit(r.workload)} (${r.ours.spread}) | ${r.ours.p50us.toFixed(0)} / ${r.ours.p99us.toFixed(0)} | ${fmt(r.tcp.value, r.workload)} ${unit(r.workload)} (${r.tcp.spread}) | ${r.tcp.p50us.toFixed(0)} / ${r.tcp.p99us.toFixed(0)} | ${r.ratio.toFixed(2)}x |`,
    ),
  ].join('\n');
  console.log(table);
  writeFileSync('bench/results/latest.json', JSON.stringify({ date: new Date().toISOString(), rounds, durationMs, rows, raw: results }, null, 2));
}

main()
  .catch(err => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(async () => {
    await Promise.all(running.map(r => stop(r.child)));
  });
