/**
 * The relay under abuse: its CPU and memory (from /proc, the relay executable
 * in a process of its own, run from its documented environment) and a steady
 * caller's calls (one at a time, 2 s deadline) while one abuser (another
 * process, bench/peers/abuser.ts) attacks it; then what a frame the relay
 * refuses costs next to one it serves.
 *
 *   npm run bench:abuse            (about a minute; BENCH_ABUSE_SECONDS per phase, default 5)
 *
 * Prints one line per phase, writes bench/results/abuse.json, and exits 1
 * when a check fails: the steady caller lost a call, the relay spent 20% of
 * a core or more under the PING flood over its rate limit, or its resident
 * memory grew past the budgets in force.
 */
import 'reflect-metadata';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessagePattern, type MicroserviceOptions, Payload } from '@nestjs/microservices';
import { WsRelayClient, WsRelayStrategy } from '@wsrelay/transport';
import { type ChildProcess, execSync, fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { firstValueFrom } from 'rxjs';
import { spawnRelay, type RelayProcess } from '../test/support/relay-process.js';
import { cpuSeconds, memory } from './lib/proc.js';
import type { AbuseKind, AbuseSpec } from './peers/abuser.js';

const SECONDS = Number(process.env.BENCH_ABUSE_SECONDS ?? 5);
const ABUSER = fileURLToPath(new URL('./peers/abuser.ts', import.meta.url));
const MiB = 1024 * 1024;
/** The CPU the relay may spend under the PING flood over its rate limit. */
const FLOOD_CPU_BOUND = 0.2;
/** Each relay-wide budget during the memory attacks, MiB. */
const BUDGET_MIB = 16;
const BUDGETS = [
  'RELAY_BUDGET_WAIT_BYTES',
  'RELAY_BUDGET_HELD_BYTES',
  'RELAY_BUDGET_RETAINED_BYTES',
  'RELAY_BUDGET_UNSENT_BYTES',
  'RELAY_BUDGET_ROUTE_CACHE_BYTES',
];

@Controller()
class WorkController {
  @MessagePattern('work')
  work(@Payload() n: number) {
    return n;
  }

  @MessagePattern('big')
  big(@Payload() bytes: number) {
    return 'x'.repeat(bytes);
  }
}

@Module({ controllers: [WorkController] })
class ProviderModule {}

interface Phase {
  phase: string;
  relayCpuPct: number;
  relayRssMiB: number;
  relayRssGrowthMiB: number;
  steadyOk: number;
  steadyFailed: number;
  steadyP50Ms: number;
  /** What the abuser got answered (or refused: churn), per second. */
  abuserAnsweredPerSec: number;
}

/** Sequential calls with a 2 s deadline until stopped. */
function steadyCaller(client: WsRelayClient) {
  const latencies: number[] = [];
  let failed = 0;
  let running = true;
  const loop = (async () => {
    for (let n = 0; running; n++) {
      const t = performance.now();
      try {
        await firstValueFrom(client.send('work', n));
        latencies.push(performance.now() - t);
      } catch {
        failed++;
      }
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      const sorted = [...latencies].sort((a, b) => a - b);
      return { ok: latencies.length, failed, p50: sorted[Math.floor(sorted.length / 2)] ?? NaN };
    },
  };
}

function startAbuser(spec: AbuseSpec): ChildProcess {
  return fork(ABUSER, [], { env: { ...process.env, ABUSE: JSON.stringify(spec) }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

/** The next IPC message of `child` that has `key`. */
function next(child: ChildProcess, key: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: Record<string, unknown>) => {
      if (!(key in m)) return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(m);
    };
    const onExit = (code: number | null) => reject(new Error(`abuser exited (${code})`));
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

async function phase(relay: RelayProcess, client: WsRelayClient, name: string, kind?: AbuseKind, perSecond?: number): Promise<Phase> {
  const abuser = kind === undefined ? undefined : startAbuser({ url: relay.url, kind, perSecond });
  let answered = 0;
  abuser?.on('message', (m: { answered?: number }) => (answered = m.answered ?? answered));
  if (abuser !== undefined) await next(abuser, 'answered');
  const pid = relay.child.pid as number;
  const steady = steadyCaller(client);
  const [rss0, cpu0, t0, a0] = [memory(pid)?.rssKiB ?? NaN, cpuSeconds(pid) ?? NaN, performance.now(), answered];
  await new Promise(r => setTimeout(r, SECONDS * 1000));
  const wall = (performance.now() - t0) / 1000;
  const [rss, cpu] = [memory(pid)?.rssKiB ?? NaN, (cpuSeconds(pid) ?? NaN) - cpu0];
  abuser?.kill('SIGKILL');
  const s = await steady.stop();
  const row: Phase = {
    phase: name,
    relayCpuPct: (cpu / wall) * 100,
    relayRssMiB: rss / 1024,
    relayRssGrowthMiB: (rss - rss0) / 1024,
    steadyOk: s.ok,
    steadyFailed: s.failed,
    steadyP50Ms: s.p50,
    abuserAnsweredPerSec: (answered - a0) / wall,
  };
  console.log(
    `${name.padEnd(50)} relay cpu ${row.relayCpuPct.toFixed(1).padStart(5)}%  rss ${row.relayRssMiB.toFixed(0)} MiB ` +
      `(${row.relayRssGrowthMiB >= 0 ? '+' : ''}${row.relayRssGrowthMiB.toFixed(0)})  steady ${s.ok} ok ${s.failed} failed ` +
      `p50 ${s.p50.toFixed(2)} ms  abuser answered ${row.abuserAnsweredPerSec.toFixed(0)}/s`,
  );
  return row;
}

/** Relay CPU per frame (µs) for `frames` frames of `kind` sent by one connection, measured until the relay handled the last. */
async function costOf(relay: RelayProcess, kind: AbuseKind, frames: number): Promise<number> {
  const abuser = startAbuser({ url: relay.url, kind, frames });
  await next(abuser, 'ready');
  const pid = relay.child.pid as number;
  const cpu0 = cpuSeconds(pid) ?? NaN;
  abuser.send('go');
  await next(abuser, 'done');
  const us = (((cpuSeconds(pid) ?? NaN) - cpu0) * 1e6) / frames;
  abuser.kill('SIGKILL');
  console.log(`${`cost: ${kind}`.padEnd(50)} ${us.toFixed(2)} µs of relay CPU per frame (${frames} frames)`);
  return us;
}

async function withRelay<T>(env: Record<string, string>, run: (relay: RelayProcess, client: WsRelayClient) => Promise<T>): Promise<T> {
  const relay = await spawnRelay(env);
  const provider = await NestFactory.createMicroservice<MicroserviceOptions>(ProviderModule, {
    strategy: new WsRelayStrategy({ urls: [relay.url] }),
    logger: false,
  });
  await provider.listen();
  const client = new WsRelayClient({ urls: [relay.url], timeoutMs: 2000 });
  await client.connect();
  try {
    return await run(relay, client);
  } finally {
    await client.close();
    await provider.close();
    await relay.stop();
  }
}

/** What went wrong, if anything: lost calls, CPU under the point-1 flood, memory past the budgets. */
function problems(rows: Phase[], memoryBoundMiB: number): string[] {
  const found: string[] = [];
  for (const r of rows) {
    if (r.steadyFailed > 0) found.push(`${r.phase}: the steady caller lost ${r.steadyFailed} call(s)`);
    if (r.relayRssGrowthMiB > memoryBoundMiB) found.push(`${r.phase}: relay RSS grew ${r.relayRssGrowthMiB.toFixed(0)} MiB`);
  }
  const flood = rows.find(r => r.phase.startsWith('PING flood'));
  if (flood !== undefined && flood.relayCpuPct >= FLOOD_CPU_BOUND * 100)
    found.push(`PING flood: relay at ${flood.relayCpuPct.toFixed(1)}%`);
  return found;
}

async function main(): Promise<void> {
  const rows: Phase[] = [];
  rows.push(
    ...(await withRelay({ RELAY_RATE_LIMIT: '100' }, async (relay, client) => [
      await phase(relay, client, 'baseline (rate limit 100/s)'),
      await phase(relay, client, 'PING flood over the rate limit (100/s)', 'ping'),
    ])),
  );
  // Memory attacks against budgets small enough to matter: 16 MiB each, 80 MiB in all.
  const budget = String(BUDGET_MIB * MiB);
  const budgets = Object.fromEntries(BUDGETS.map(name => [name, budget]));
  rows.push(
    ...(await withRelay(budgets, async (relay, client) => [
      await phase(relay, client, 'twelve 1 MB PINGs of nested arrays per second', 'bomb', 12),
      await phase(relay, client, '10,000 WAITs of 4 KB patterns, 24-day timeout', 'waits'),
      await phase(relay, client, '20 connections that stop reading', 'stall'),
      await phase(relay, client, '500 sockets that never say HELLO, reopened', 'churn'),
      await phase(relay, client, '1,500 queue members on x.>, events to new subjects', 'routes'),
    ])),
  );
  const costs = await withRelay({ RELAY_RATE_LIMIT: '1000000000', RELAY_MAX_BAD_FRAMES: '1000000000' }, async relay => ({
    servedPing: await costOf(relay, 'cost-ping', 200_000),
    servedRequest: await costOf(relay, 'cost-request', 100_000),
    refusedDeep: await costOf(relay, 'cost-deep', 200_000),
  }));
  console.log(
    `a refused frame costs ${(costs.refusedDeep / costs.servedRequest).toFixed(2)}x a served request (with its response), ` +
      `${(costs.refusedDeep / costs.servedPing).toFixed(2)}x a served PING`,
  );
  // Resident memory may grow by what the budgets in force allow, no more.
  const found = problems(rows, BUDGET_MIB * BUDGETS.length);
  const commit = execSync('git rev-parse --short HEAD').toString().trim();
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/abuse.json', `${JSON.stringify({ commit, seconds: SECONDS, rows, costs, problems: found }, null, 2)}\n`);
  for (const p of found) console.error(`FAILED ${p}`);
  process.exitCode = found.length > 0 ? 1 : 0;
}

main().then(
  () => process.exit(),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
