/**
 * `npm run bench:trace`: a timeline of one request through client → relay →
 * provider → relay → client. For W1 (1 in flight) and W2 (64 in flight), 64 B
 * payloads, it runs the relay executable, bench/peers/provider.ts and
 * bench/load.ts each in its own process, with bench/trace/tap.ts preloaded
 * into all three (the product code is not changed), joins their stamps by
 * trace number, and prints where the time went, next to each process's CPU
 * per request. W2 also runs without the taps, to show what they cost
 * (TRACE_COST_PAIRS, 1: that many pairs of W2 runs, off/on then on/off; the
 * timeline is the first W2 run with taps).
 *
 * TRACE_DURATION_MS (3000) and TRACE_WARMUP_MS (1000) set each run's window;
 * TRACE_SAMPLE (50) traces 1 request in that many. Writes
 * bench/results/trace.json and bench/results/trace.md.
 */
import { type ChildProcess, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { RELAY_BIN, type Started, startNode, stop, TS_LOADER } from '../scripts/processes.js';
import { cpuSeconds } from './lib/proc.js';
import { type Joined, join as joinStamps, type Role, ROLES } from './trace/analyze.js';
import { estimateTapWork } from './trace/cost.js';
import { markdown, type Run, timeline, type TraceResult } from './trace/report.js';

const TAP = new URL('./trace/tap.ts', import.meta.url).href;
const PAYLOAD_BYTES = 64;

const numberEnv = (name: string, fallback: number): number => {
  const v = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer, got ${process.env[name]}`);
  return v;
};
const durationMs = numberEnv('TRACE_DURATION_MS', 3000);
const warmupMs = numberEnv('TRACE_WARMUP_MS', 1000);
const sampleEvery = numberEnv('TRACE_SAMPLE', 50);
const costPairs = numberEnv('TRACE_COST_PAIRS', 1);

interface Workload {
  name: string;
  inflight: number;
}

interface Snapshot {
  ns: bigint;
  cpu: Partial<Record<Role, number>>;
}

function snapshot(pids: Record<Role, number | undefined>): Snapshot {
  const cpu: Partial<Record<Role, number>> = {};
  for (const role of ROLES) {
    const pid = pids[role];
    cpu[role] = pid === undefined ? undefined : cpuSeconds(pid);
  }
  return { ns: process.hrtime.bigint(), cpu };
}

/** The env and Node flags of one process: with taps, the preload and where it writes its stamps. */
function traced(taps: boolean, file: string): { env: Record<string, string>; nodeArgs: string[] } {
  if (!taps) return { env: {}, nodeArgs: [] };
  // The loader first: the tap is TypeScript, and the relay executable does not load the loader itself.
  return { env: { TRACE: '1', TRACE_OUT: file, TRACE_SAMPLE: String(sampleEvery) }, nodeArgs: [...TS_LOADER, '--import', TAP] };
}

/** Starts the relay, a provider and a load generator, and returns the generator's RESULT with CPU snapshots around its window. */
async function drive(w: Workload, taps: boolean, files: Record<Role, string>, started: Started[]) {
  const relayTrace = traced(taps, files.relay);
  const relay = startNode(RELAY_BIN, {
    env: { RELAY_PORT: '0', RELAY_HOST: '127.0.0.1', ...relayTrace.env },
    nodeArgs: relayTrace.nodeArgs,
  });
  started.push(relay);
  const [, url] = await relay.line(/Relay listening on (ws:\/\/\S+)/);
  const providerTrace = traced(taps, files.provider);
  const provider = startNode('bench/peers/provider.ts', {
    env: { TRANSPORT: 'wsrelay', RELAY_URL: url, ...providerTrace.env },
    nodeArgs: providerTrace.nodeArgs,
  });
  started.push(provider);
  await provider.line(/READY/);
  const snapshots: Snapshot[] = [];
  const pids: Record<Role, number | undefined> = { client: undefined, relay: relay.child.pid, provider: provider.child.pid };
  const load = {
    TRANSPORT: 'wsrelay',
    RELAY_URL: url,
    MODE: 'rpc',
    INFLIGHT: String(w.inflight),
    SIZE: String(PAYLOAD_BYTES),
    WARMUP_MS: String(warmupMs),
    DURATION_MS: String(durationMs),
  };
  const clientTrace = traced(taps, files.client);
  const generator = startNode('bench/load.ts', {
    env: { ...load, ...clientTrace.env },
    nodeArgs: clientTrace.nodeArgs,
    onLine: line => {
      if (line === 'MEASURE start' || line === 'MEASURE end') snapshots.push(snapshot(pids));
    },
  });
  pids.client = generator.child.pid;
  started.push(generator);
  const [, json] = await generator.line(/^RESULT (.*)$/, warmupMs + durationMs + 60_000);
  // It exits by itself after RESULT, writing its stamps; a SIGTERM now would kill it before that.
  await exited(generator.child, 5000);
  return { result: JSON.parse(json) as { rps: number; p50us: number; p99us: number }, snapshots };
}

/** Resolves once `child` has exited, or after `ms`. */
async function exited(child: ChildProcess, ms: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([once(child, 'exit'), new Promise(r => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

function cpuPerRequest(snapshots: Snapshot[], rps: number): { windowSec: number; cpuUsPerReq: Record<Role, number> } {
  const [start, end] = snapshots;
  if (start === undefined || end === undefined) throw new Error('load.ts printed no MEASURE start/end');
  const windowSec = Number(end.ns - start.ns) / 1e9;
  const requests = rps * windowSec;
  const cpuUsPerReq = {} as Record<Role, number>;
  for (const role of ROLES) {
    const a = start.cpu[role];
    const b = end.cpu[role];
    cpuUsPerReq[role] = a === undefined || b === undefined ? NaN : ((b - a) * 1e6) / requests;
  }
  return { windowSec, cpuUsPerReq };
}

let runCount = 0;

async function runOnce(w: Workload, taps: boolean, dir: string): Promise<Run> {
  const n = ++runCount;
  const files = Object.fromEntries(ROLES.map(role => [role, join(dir, `${n}-${w.name}-${role}.txt`)])) as Record<Role, string>;
  const started: Started[] = [];
  let driven: Awaited<ReturnType<typeof drive>>;
  try {
    driven = await drive(w, taps, files, started);
  } finally {
    // Generator, provider, relay: each writes its stamps as it exits.
    for (const s of started.reverse()) await stop(s.child);
  }
  const { result, snapshots } = driven;
  const run: Run = {
    workload: w.name,
    inflight: w.inflight,
    taps,
    rps: result.rps,
    p50us: result.p50us,
    p99us: result.p99us,
    ...cpuPerRequest(snapshots, result.rps),
  };
  if (taps) run.joined = joinStamps(readStampFiles(files));
  console.error(`${w.name} taps ${taps ? 'on' : 'off'}: ${run.rps.toFixed(0)} req/s`);
  return run;
}

function readStampFiles(files: Record<Role, string>): Record<Role, string> {
  const out = {} as Record<Role, string>;
  for (const role of ROLES) {
    try {
      out[role] = readFileSync(files[role], 'utf8');
    } catch {
      throw new Error(`the ${role} wrote no stamps (${files[role]}): did it exit by SIGKILL?`);
    }
  }
  return out;
}

function commit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim();
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<void> {
  const tapWork = estimateTapWork();
  const dir = mkdtempSync(join(tmpdir(), 'wsrelay-trace-'));
  const W1: Workload = { name: 'W1', inflight: 1 };
  const W2: Workload = { name: 'W2', inflight: 64 };
  const runs: Run[] = [];
  try {
    runs.push(await runOnce(W1, true, dir));
    // The order flips each pair, so whatever drifts during the runs does not always favour the same side.
    for (let i = 0; i < costPairs; i++) runs.push(await runOnce(W2, i % 2 === 1, dir), await runOnce(W2, i % 2 === 0, dir));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const tracedRuns = runs.filter((r): r is Run & { joined: Joined } => r.joined !== undefined);
  const w1 = timeline(tracedRuns[0], tracedRuns[0].joined, new Map());
  const baseline = new Map(w1.hops.map(h => [h.label, h.stats.p50]));
  const result: TraceResult = {
    commit: commit(),
    date: new Date().toISOString(),
    node: process.version,
    cpus: availableParallelism(),
    sampleEvery,
    warmupMs,
    durationMs,
    payloadBytes: PAYLOAD_BYTES,
    loadAverage: loadavg()[0],
    tapWork,
    runs: runs.map(({ joined: _joined, ...r }) => r),
    timelines: [w1, timeline(tracedRuns[1], tracedRuns[1].joined, baseline)],
  };
  const md = markdown(result);
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/trace.json', `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync('bench/results/trace.md', md);
  console.log(md);
}

main().catch(err => {
  console.error(err);
  process.exit(1);
});
