/**
 * `npm run bench`: our transport (Nest client -> relay -> Nest provider)
 * against Nest TCP (direct), Nest NATS (nats-server at 127.0.0.1:4222), Nest
 * Redis (127.0.0.1:6379) and a raw `ws` relay (the practical limit), every
 * relay, provider and load generator in its own process. W1–W5 run for
 * several rounds, alternating the peer order; W6 (idle connections) runs once
 * per relay; W7 (client on relay A, provider on relay B, against both on one
 * relay) runs W1 and W2 on two relays clustered over the Redis at
 * 127.0.0.1:6379, for as many rounds (see lib/w7.ts). A peer whose server
 * cannot be reached is reported as skipped, and so is W7 without Redis.
 *
 * Prints markdown tables and writes bench/results/latest.{json,md,svg}.
 *
 * BENCH_ROUNDS (3), BENCH_DURATION_MS (2000), BENCH_WARMUP_MS (1000),
 * BENCH_PEERS (all: wsrelay,nest-tcp,nest-nats,nest-redis,raw-ws),
 * BENCH_WORKLOADS (all: W1,...,W7), BENCH_EVENT_WINDOW (1000),
 * BENCH_W6_CONNECTIONS (20000), BENCH_W6_HEARTBEAT_MS (2000), BENCH_W6_IDLE_MS (5 heartbeats),
 * BENCH_MAX_OTHER_CORES (0.3) and BENCH_ATTEMPTS (3): a measurement during
 * which more CPU than that was busy outside the bench's processes is taken
 * again after the rounds, up to that many attempts in all (see lib/cells.ts
 * `disturbance`),
 * BENCH_TS_LOADER=1 (run the processes through the TypeScript loader instead
 * of compiling them first, see scripts/compile.ts), BENCH_RELAY_NODE_ARGS
 * (Node flags added to our relays' own, RELAY_NODE_FLAGS: `--cpu-prof`,
 * `--trace-gc`).
 *
 * `--smoke` (`npm run bench -- --smoke`, run in CI): every workload once,
 * briefly (1 round × 300 ms, W5 with 2 subscribers, W6 with 300
 * connections; lib/smoke.ts), results in a temporary directory instead of
 * bench/results; exits non-zero when anything that could run failed. The
 * variables above still override its defaults.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { type CellSettings, describeCell, disturbance, runCell } from './lib/cells.js';
import { chart } from './lib/chart.js';
import { liveChildren, runCompiled } from './lib/child.js';
import { compileProject } from '../scripts/compile.js';
import { type Peer, probe, REDIS_HOST, REDIS_PORT, ServerDownError, startPeer } from './lib/peers.js';
import { markdown, type W7Report } from './lib/report.js';
import { benchArgs, SMOKE_DEFAULTS, smokeVerdict } from './lib/smoke.js';
import { median, type PeerSummary, type Raw, summarize, summarizeW7, targets } from './lib/summary.js';
import {
  type Cell,
  type CellError,
  type PeerId,
  FANOUT_SUBSCRIBERS,
  PEER_IDS,
  PEER_LABELS,
  type PeerStatus,
  type W6Result,
  type W7Result,
  type Workload,
  WORKLOADS,
} from './lib/types.js';
import { runW6 } from './lib/w6.js';
import { runW7 } from './lib/w7.js';

const num = (name: string, fallback: number) => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new TypeError(`${name} must be a non-negative number, got "${raw}"`);
  return n;
};
const list = (name: string, all: readonly string[]) => {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return [...all];
  const picked = raw.split(',').map(s => s.trim());
  const unknown = picked.filter(p => !all.includes(p));
  if (unknown.length > 0) throw new TypeError(`${name}: unknown ${unknown.join(', ')} (known: ${all.join(', ')})`);
  return picked;
};

const { smoke } = benchArgs(process.argv.slice(2));
const defaults = {
  rounds: 3,
  durationMs: 2000,
  warmupMs: 1000,
  attempts: 3,
  fanoutSubscribers: FANOUT_SUBSCRIBERS,
  w6Connections: 20_000,
  w6HeartbeatMs: 2000,
  w6IdleBeats: 5,
  ...(smoke ? SMOKE_DEFAULTS : {}),
};
const rounds = num('BENCH_ROUNDS', defaults.rounds);
const durationMs = num('BENCH_DURATION_MS', defaults.durationMs);
const warmupMs = num('BENCH_WARMUP_MS', defaults.warmupMs);
const window = num('BENCH_EVENT_WINDOW', 1000);
const maxOtherCores = num('BENCH_MAX_OTHER_CORES', 0.3);
const attempts = Math.max(1, num('BENCH_ATTEMPTS', defaults.attempts));
const peerIds = list('BENCH_PEERS', PEER_IDS) as PeerId[];
const workloadIds = list('BENCH_WORKLOADS', [...WORKLOADS.map(w => w.id), 'W6', 'W7']);
// Not a variable: the report's titles and targets say 8, so only a smoke run (whose report is not kept) uses fewer.
const fanoutSubscribers = defaults.fanoutSubscribers;
const w6Connections = num('BENCH_W6_CONNECTIONS', defaults.w6Connections);
const w6HeartbeatMs = num('BENCH_W6_HEARTBEAT_MS', defaults.w6HeartbeatMs);
const w6IdleMs = num('BENCH_W6_IDLE_MS', defaults.w6IdleBeats * w6HeartbeatMs);
/** Where the processes run from, compiled; a smoke run (CI) has its own, so that it never rewrites a full run's. */
const compiledDir = `node_modules/.cache/wsrelay-bench${smoke ? `-smoke-${process.pid}` : ''}`;
// Subjects and channels (W7: the relays' cluster channels too) of this run only, so nothing else on the shared NATS or Redis sees them.
const prefix = `bench.${Date.now().toString(36)}${randomBytes(3).toString('hex')}.`;
const log = (line: string) => console.error(line);

/** Which code was measured: the commit, and any uncommitted change to the relay or transport. */
function codeState(): { commit: string; dirty: string[] } {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD']).toString().trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'libs'])
      .toString()
      .split('\n')
      .filter(Boolean)
      .map(l => l.slice(3));
    return { commit, dirty };
  } catch {
    return { commit: 'unknown', dirty: [] };
  }
}

function header(started: Date): string {
  const cpus = os.cpus();
  return (
    `wsrelay bench${smoke ? ` (smoke run: figures not to be quoted; W5 with ${fanoutSubscribers} subscribers)` : ''} — ${started.toISOString().slice(0, 10)}, ${cpus.length} × ${cpus[0]?.model.trim() ?? 'cpu'}, ` +
    `Node ${process.version}, ${rounds} rounds × ${durationMs} ms (after ${warmupMs} ms warm-up), peer order alternating; medians (min–max)`
  );
}

/** W7, or why it did not run: not selected, no wsrelay, or no Redis (skipped, as a peer without its server is). */
async function measureW7(settings: CellSettings): Promise<{ report: W7Report; result?: W7Result }> {
  if (!workloadIds.includes('W7')) return { report: { skipped: 'not selected (BENCH_WORKLOADS)' } };
  if (!peerIds.includes('wsrelay')) return { report: { skipped: 'wsrelay is not in BENCH_PEERS' } };
  const down = await probe(REDIS_HOST, REDIS_PORT);
  if (down !== undefined) {
    log(`W7: skipped: the relay cluster needs Redis: ${down}`);
    return { report: { skipped: `the relay cluster needs Redis: ${down}` } };
  }
  try {
    const result = await runW7({ cell: settings, rounds, maxOtherCores, attempts }, log);
    const summaries = summarizeW7(result);
    for (const row of summaries) {
      const r = row.crossOverSame;
      log(
        r === undefined
          ? `W7 ${row.workload}: no figure (${row.same.missing ?? row.cross.missing})`
          : `W7 ${row.workload}: cross ÷ same ${r.rps.median.toFixed(2)}x req/s, ${r.p50us.median.toFixed(2)}x p50, ${r.p99us.median.toFixed(2)}x p99`,
      );
    }
    return { report: { cluster: result.cluster, summaries, repeated: result.repeated.length }, result };
  } catch (err) {
    log(`W7: FAILED ${(err as Error).message}`);
    return { report: { error: (err as Error).message } };
  }
}

/** Starts each selected peer; one that cannot run is skipped, with the reason (`unreachable`: its server did not answer). */
async function startPeers(): Promise<{ peers: Peer[]; statuses: PeerStatus[]; unreachable: Set<PeerId> }> {
  const peers: Peer[] = [];
  const statuses: PeerStatus[] = [];
  const unreachable = new Set<PeerId>();
  for (const id of peerIds) {
    const t0 = performance.now();
    try {
      peers.push(await startPeer(id, prefix, fanoutSubscribers));
      statuses.push({ id, label: PEER_LABELS[id] });
      log(`bench: ${PEER_LABELS[id]} up in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    } catch (err) {
      const reason = (err as Error).message.split('\n')[0];
      statuses.push({ id, label: PEER_LABELS[id], skipped: reason });
      if (err instanceof ServerDownError) unreachable.add(id);
      log(`bench: ${PEER_LABELS[id]} skipped: ${(err as Error).message}`);
    }
  }
  return { peers, statuses, unreachable };
}

/** W6 on each selected relay (ours, the raw one), or why it did not run. */
async function measureW6(): Promise<{ w6: Array<W6Result | { relay: string; error: string }>; w6Skipped?: string }> {
  if (!workloadIds.includes('W6')) return { w6: [], w6Skipped: 'not selected (BENCH_WORKLOADS)' };
  const relays = (['wsrelay', 'raw-ws'] as const).filter(id => peerIds.includes(id));
  if (relays.length === 0) return { w6: [], w6Skipped: 'neither wsrelay nor raw-ws is in BENCH_PEERS' };
  const w6: Array<W6Result | { relay: string; error: string }> = [];
  for (const relay of relays) {
    try {
      const r = await runW6(relay, { prefix, connections: w6Connections, heartbeatMs: w6HeartbeatMs, idleMs: w6IdleMs }, log);
      w6.push(r);
      log(
        `W6 ${relay}: ${r.established} connections, ${r.perConnectionKiB.toFixed(1)} KiB each, relay CPU ${r.relayCpuPct.toFixed(1)}% at ${r.heartbeatMs} ms heartbeat, ${r.dropped} dropped`,
      );
    } catch (err) {
      w6.push({ relay, error: (err as Error).message });
      log(`W6 ${relay}: FAILED ${(err as Error).message}`);
    }
  }
  return { w6 };
}

async function main(): Promise<void> {
  const started = new Date();
  const code = codeState();
  const settings: CellSettings = { prefix, durationMs, warmupMs, window };
  const throughput = WORKLOADS.filter(w => workloadIds.includes(w.id));
  if (process.env.BENCH_TS_LOADER === '1') {
    log('bench: processes run through the TypeScript loader (BENCH_TS_LOADER=1); their RSS includes it');
  } else {
    runCompiled(await compileProject(compiledDir));
  }
  log(
    `bench: run ${prefix} — ${peerIds.join(', ')}; ${[...throughput.map(w => w.id), ...workloadIds.filter(id => id === 'W6' || id === 'W7')].join(', ')}`,
  );

  const { peers, statuses, unreachable } =
    throughput.length > 0
      ? await startPeers()
      : { peers: [], statuses: peerIds.map((id): PeerStatus => ({ id, label: PEER_LABELS[id] })), unreachable: new Set<PeerId>() };

  const raw: Raw = {};
  /** Measurements that were disturbed and taken again (kept in the JSON, left out of the statistics). */
  const repeated: Array<{ round: number; workload: string; peer: PeerId; reason: string; cell: unknown }> = [];
  /** Disturbed cells, measured again after the rounds: what disturbs a run here (a test suite) lasts a while. */
  const makeUp: Array<{ round: number; w: Workload; peer: Peer }> = [];

  const measure = async (round: number, w: Workload, peer: Peer): Promise<Cell | CellError> => {
    try {
      const c = await runCell(peer, w, settings);
      const trouble = disturbance(c, maxOtherCores);
      if (trouble !== undefined) c.disturbed = trouble;
      log(`round ${round + 1}/${rounds} ${w.id} ${peer.id}: ${describeCell(w, c)}${trouble ? ` DISTURBED: ${trouble}` : ''}`);
      return c;
    } catch (err) {
      log(`round ${round + 1}/${rounds} ${w.id} ${peer.id}: FAILED ${(err as Error).message}`);
      return { error: (err as Error).message };
    }
  };

  for (let round = 0; round < rounds && throughput.length > 0; round++) {
    const order = round % 2 === 0 ? peers : [...peers].reverse();
    for (const w of throughput) {
      for (const peer of order) {
        if (w.kind === 'fanout' && peer.noFanout !== undefined) continue;
        const c = await measure(round, w, peer);
        ((raw[w.id] ??= {})[peer.id] ??= [])[round] = c;
        if ('disturbed' in c && c.disturbed !== undefined) makeUp.push({ round, w, peer });
      }
    }
  }
  if (makeUp.length > 0 && attempts > 1) log(`bench: measuring ${makeUp.length} disturbed cell(s) again`);
  for (const { round, w, peer } of makeUp) {
    const cells = raw[w.id][peer.id]!;
    for (let attempt = 2; attempt <= attempts; attempt++) {
      const old = cells[round] as Cell;
      await new Promise(r => setTimeout(r, 2000));
      const c = await measure(round, w, peer);
      if ('error' in c) continue;
      repeated.push({ round: round + 1, workload: w.id, peer: peer.id, reason: old.disturbed!, cell: old });
      cells[round] = c;
      if (c.disturbed === undefined) break;
    }
  }
  await Promise.all(peers.flatMap(p => p.children).map(c => c.stop()));

  const { w6, w6Skipped } = await measureW6();

  const { report: w7, result: w7Result } = await measureW7(settings);

  const summaries: Record<string, PeerSummary[]> = {};
  for (const w of throughput) {
    const notApplicable: Partial<Record<PeerId, string>> = {};
    for (const p of peers) if (w.kind === 'fanout' && p.noFanout) notApplicable[p.id] = p.noFanout;
    summaries[w.id] = summarize(w, raw, statuses, notApplicable);
  }
  const goals = targets(summaries, w6);
  const cells = Object.values(raw).flatMap(byPeer => Object.values(byPeer).flat());
  const steal = cells.flatMap(c => ('machine' in c ? [c.machine.stealPct] : []));
  const machineNote =
    steal.length === 0
      ? ''
      : ` CPU stolen by the hypervisor during the measured windows: median ${median(steal).toFixed(1)}%, max ${Math.max(...steal).toFixed(1)}% of the machine.`;
  const kept = cells.filter(c => 'disturbed' in c && c.disturbed !== undefined).length;
  const repeatNote =
    repeated.length === 0
      ? ''
      : ` ${repeated.length} measurement(s) were taken again after the rounds because the machine was disturbed (another program used the CPU)${
          kept > 0 ? `; ${kept} still disturbed after ${attempts} attempts, left out where the peer has undisturbed rounds` : ''
        }.`;
  const codeNote = ` Code: ${code.commit}${code.dirty.length > 0 ? ` with uncommitted changes in ${code.dirty.join(', ')}` : ''}.`;
  const md = markdown({
    header: `${header(started)}.${codeNote}${machineNote}${repeatNote}`,
    peers: statuses,
    summaries,
    w6,
    w6Skipped,
    w7,
    targets: goals,
  });
  if (!smoke) console.log(`\n${md}`);

  // A smoke run's figures are not to be kept: they go to a temporary directory, never over the committed ones.
  const out = smoke ? mkdtempSync(join(os.tmpdir(), 'wsrelay-bench-smoke-')) : 'bench/results';
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'latest.md'), md);
  writeFileSync(
    join(out, 'latest.json'),
    `${JSON.stringify(
      {
        date: started.toISOString(),
        code,
        machine: {
          cpus: os.cpus().length,
          model: os.cpus()[0]?.model.trim(),
          node: process.version,
          platform: `${os.type()} ${os.release()}`,
        },
        settings: {
          rounds,
          durationMs,
          warmupMs,
          eventWindow: window,
          prefix,
          w6: { connections: w6Connections, heartbeatMs: w6HeartbeatMs, idleMs: w6IdleMs },
        },
        peers: statuses,
        summaries,
        w6,
        w7:
          'summaries' in w7 && w7Result !== undefined
            ? { cluster: w7.cluster, summaries: w7.summaries, raw: w7Result.raw, repeated: w7Result.repeated }
            : w7,
        targets: goals,
        raw,
        repeated,
      },
      null,
      2,
    )}\n`,
  );
  const w7Rows = 'summaries' in w7 ? w7.summaries : [];
  if (throughput.some(w => w.id !== 'W5') || w7Rows.length > 0) {
    const titles = Object.fromEntries(WORKLOADS.map(w => [w.id, w.title.replace(/, ≤1000 in flight/, '')]));
    writeFileSync(
      join(out, 'latest.svg'),
      chart(
        summaries,
        titles,
        `${started.toISOString().slice(0, 10)}, ${os.cpus().length} × ${os.cpus()[0]?.model.trim() ?? 'cpu'}, Node ${process.version}, ${rounds} rounds × ${durationMs} ms, peers in separate processes.\n` +
          'W5 (fan-out: Nest TCP cannot) and W6 (idle connections) are in the tables. Bars: median of the peer ÷ median of Nest TCP.' +
          (w7Rows.some(r => r.crossOverSame !== undefined)
            ? '\nW7: our req/s with the client on relay A and the provider on relay B ÷ both on relay B, medians; the line spans the per-round ratios.'
            : ''),
        w7Rows,
      ),
    );
  }
  const seconds = (Date.now() - started.getTime()) / 1000;
  log(`bench: done in ${seconds.toFixed(0)} s; ${out}/latest.{md,json,svg}`);
  if (smoke) {
    const verdict = smokeVerdict(
      { statuses, unreachable, throughput, raw, w6Selected: workloadIds.includes('W6'), w6, w6Skipped, w7, w7Result },
      seconds,
    );
    verdict.problems.forEach(p => log(`bench smoke: ${p}`));
    console.log(verdict.line);
    if (!verdict.ok) process.exitCode = 1;
  }
}

async function stopAll(): Promise<void> {
  await Promise.all([...liveChildren].map(c => c.stop()));
  if (smoke) rmSync(compiledDir, { recursive: true, force: true });
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`bench: ${signal}, stopping every process it started`);
    void stopAll().finally(() => process.exit(130));
  });
}

main()
  .catch(err => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(stopAll);
