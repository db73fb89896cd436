/**
 * The relay under abuse: its CPU (from /proc, the relay in a process of its
 * own, run from its documented environment) and a steady caller's calls
 * (one at a time, 2 s deadline) while one connection floods it, and what a
 * frame the relay refuses costs next to one it serves.
 *
 *   npm run bench:abuse            (about 40 s; BENCH_ABUSE_SECONDS per phase, default 5)
 *
 * Prints one line per phase and writes bench/results/abuse.json.
 */
import 'reflect-metadata';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessagePattern, type MicroserviceOptions, Payload } from '@nestjs/microservices';
import { encodePayload, FrameCodec, FrameType } from '@wsrelay/protocol';
import { WsRelayClient, WsRelayStrategy } from '@wsrelay/transport';
import { execSync, fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { firstValueFrom } from 'rxjs';
import WebSocket from 'ws';
import { spawnRelay, type RelayProcess } from '../test/support/relay-process.js';
import { cpuSeconds, memory } from './lib/proc.js';

const SECONDS = Number(process.env.BENCH_ABUSE_SECONDS ?? 5);
const codec = new FrameCodec();
const PING = codec.encode({ type: FrameType.Ping });
/** A PING whose trailing field is 8 nested arrays: as small as PING, refused (BAD_FRAME) for its depth. */
const DEEP_PING = new Uint8Array([0x92, FrameType.Ping, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x90]);
/** A 1 MB PING of a million nested arrays. */
const BOMB = (() => {
  const b = new Uint8Array(1_000_000);
  b.set([0x92, FrameType.Ping]);
  b.fill(0x91, 2, b.length - 1);
  b[b.length - 1] = 0x90;
  return b;
})();

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
  steadyOk: number;
  steadyFailed: number;
  steadyP50Ms: number;
  /** Frames the flooder got an answer to (PONG or ERROR), per second. */
  answeredPerSec?: number;
  /** Relay CPU per answered frame, µs. */
  usPerFrame?: number;
  /** The relay's resident set at the end of the phase, and its growth during it, MiB. */
  relayRssMiB: number;
  relayRssGrowthMiB: number;
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

/**
 * A raw connection in a process of its own (so that its writing does not
 * starve the caller measured here) writing `frame` as fast as its socket
 * takes it, in batches that leave time to read (or `perSecond`), counting
 * the relay's answers.
 */
type FloodKind = 'ping' | 'deep' | 'bomb' | 'request' | 'waits' | 'stall' | 'churn';

async function flooder(url: string, frame: FloodKind, perSecond?: number) {
  const child = fork(fileURLToPath(import.meta.url), [], {
    env: { ...process.env, ABUSE_FLOODER: JSON.stringify({ url, frame, perSecond }) },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  let answered = 0;
  child.on('message', (m: { answered: number }) => (answered = m.answered));
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', code => reject(new Error(`flooder exited (${code})`)));
  });
  return {
    answered: () => answered,
    stop: () => {
      child.removeAllListeners('exit');
      child.kill('SIGKILL');
    },
  };
}

/** Served requests for comparison: 64 in flight to the provider's `work`, each answer followed by a new request. */
async function requester(url: string): Promise<void> {
  const socket = new WebSocket(url);
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  let answered = 0;
  let id = 0;
  const payload = encodePayload(1);
  const send = () =>
    socket.send(
      codec.encode({ type: FrameType.Request, id: ++id, pattern: 'work', payload, timeoutMs: 10_000, peer: null, ext: null, claims: null }),
    );
  socket.on('message', (data: Buffer) => {
    if (codec.decode(data).type !== FrameType.Response) return;
    answered++;
    send();
  });
  socket.send(
    codec.encode({
      type: FrameType.Hello,
      versions: [1],
      nodeId: `requester-${process.pid}`,
      service: null,
      patterns: [],
      events: [],
      queue: null,
    }),
  );
  setInterval(() => process.send?.({ answered }), 100);
  process.send?.({ answered });
  for (let i = 0; i < 64; i++) send();
}

/** Counts answers and reports them to the bench every 100 ms. */
function reportEvery100ms(count: () => number): void {
  setInterval(() => process.send?.({ answered: count() }), 100);
  process.send?.({ answered: count() });
}

function hello(nodeId: string): Uint8Array {
  return codec.encode({ type: FrameType.Hello, versions: [1], nodeId, service: null, patterns: [], events: [], queue: null });
}

async function open(url: string): Promise<WebSocket> {
  const socket = new WebSocket(url);
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  return socket;
}

/** 10,000 WAITs for 4 KB patterns nothing serves, each with the longest timeout (24 days), on one connection. */
async function waiter(url: string): Promise<void> {
  const socket = await open(url);
  let answered = 0;
  socket.on('message', () => answered++);
  socket.send(hello(`waiter-${process.pid}`));
  for (let id = 1; id <= 10_000; id++) {
    const pattern = `w.${id}.${'p'.repeat(4096 - 16)}`;
    socket.send(codec.encode({ type: FrameType.Wait, id, pattern, timeoutMs: 0x7fff_ffff }));
  }
  reportEvery100ms(() => answered);
}

/** 20 connections that ask for 256 KiB answers (32 each) and never read them. */
async function stallers(url: string): Promise<void> {
  const payload = encodePayload(256 * 1024);
  for (let n = 0; n < 20; n++) {
    const socket = await open(url);
    socket.send(hello(`staller-${process.pid}-${n}`));
    for (let id = 1; id <= 32; id++) {
      socket.send(
        codec.encode({ type: FrameType.Request, id, pattern: 'big', payload, timeoutMs: 60_000, peer: null, ext: null, claims: null }),
      );
    }
    (socket as unknown as { _socket: { pause(): void } })._socket.pause();
  }
  reportEvery100ms(() => 0);
}

/** Sockets that never say HELLO, reopened as soon as the relay closes them, up to 500 at once; answered counts refused upgrades. */
function churner(url: string): Promise<void> {
  let refused = 0;
  const one = (): void => {
    const socket = new WebSocket(url);
    socket.on('error', () => undefined);
    socket.on('unexpected-response', () => refused++);
    socket.on('close', () => setImmediate(one));
  };
  for (let n = 0; n < 500; n++) one();
  reportEvery100ms(() => refused);
  return Promise.resolve();
}

/** The flooder process: connects, says HELLO, floods, reports its answer count every 100 ms. */
async function runFlooder(spec: { url: string; frame: FloodKind; perSecond?: number }): Promise<void> {
  if (spec.frame === 'request') return requester(spec.url);
  if (spec.frame === 'waits') return waiter(spec.url);
  if (spec.frame === 'stall') return stallers(spec.url);
  if (spec.frame === 'churn') return churner(spec.url);
  const frame = { ping: PING, deep: DEEP_PING, bomb: BOMB }[spec.frame];
  const socket = new WebSocket(spec.url);
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  let answered = 0;
  socket.on('message', () => answered++);
  socket.send(
    codec.encode({
      type: FrameType.Hello,
      versions: [1],
      nodeId: `flooder-${process.pid}`,
      service: null,
      patterns: [],
      events: [],
      queue: null,
    }),
  );
  setInterval(() => process.send?.({ answered }), 100);
  process.send?.({ answered });
  const pump = (): void => {
    if (socket.readyState !== WebSocket.OPEN) return;
    if (spec.perSecond !== undefined) {
      socket.send(frame);
      setTimeout(pump, 1000 / spec.perSecond);
      return;
    }
    for (let i = 0; i < 256 && socket.bufferedAmount < 1024 * 1024; i++) socket.send(frame);
    setImmediate(pump);
  };
  pump();
}

async function phase(
  relay: RelayProcess,
  client: WsRelayClient | undefined,
  name: string,
  flood?: () => ReturnType<typeof flooder>,
): Promise<Phase> {
  const f = flood === undefined ? undefined : await flood();
  const steady = client === undefined ? undefined : steadyCaller(client);
  const pid = relay.child.pid as number;
  const rss0 = memory(pid)?.rssKiB ?? NaN;
  const cpu0 = cpuSeconds(pid) as number;
  const t0 = performance.now();
  const a0 = f?.answered() ?? 0;
  await new Promise(r => setTimeout(r, SECONDS * 1000));
  const wall = (performance.now() - t0) / 1000;
  const cpu = (cpuSeconds(pid) as number) - cpu0;
  const rss = memory(pid)?.rssKiB ?? NaN;
  const answered = (f?.answered() ?? 0) - a0;
  f?.stop();
  const s = (await steady?.stop()) ?? { ok: 0, failed: 0, p50: NaN };
  const row: Phase = {
    phase: name,
    relayCpuPct: (cpu / wall) * 100,
    steadyOk: s.ok,
    steadyFailed: s.failed,
    steadyP50Ms: s.p50,
    relayRssMiB: rss / 1024,
    relayRssGrowthMiB: (rss - rss0) / 1024,
  };
  if (f !== undefined)
    Object.assign(row, { answeredPerSec: answered / wall, usPerFrame: answered > 0 ? (cpu * 1e6) / answered : undefined });
  console.log(
    `${name.padEnd(44)} relay cpu ${row.relayCpuPct.toFixed(1).padStart(5)}%  rss ${row.relayRssMiB.toFixed(0)} MiB (${row.relayRssGrowthMiB >= 0 ? '+' : ''}${row.relayRssGrowthMiB.toFixed(0)})` +
      `  steady ${s.ok} ok ${s.failed} failed p50 ${s.p50.toFixed(2)} ms` +
      (f === undefined
        ? ''
        : `  answered ${row.answeredPerSec?.toFixed(0)}/s, ${row.usPerFrame?.toFixed(2) ?? '-'} µs relay cpu per answered frame`),
  );
  return row;
}

async function withRelay(env: Record<string, string>, run: (relay: RelayProcess, client: WsRelayClient) => Promise<Phase[]>) {
  const relay = await spawnRelay({ RELAY_MAX_BAD_FRAMES: '1000000000', ...env });
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

async function main(): Promise<void> {
  const rows: Phase[] = [];
  rows.push(
    ...(await withRelay({ RELAY_RATE_LIMIT: '100' }, async (relay, client) => [
      await phase(relay, client, 'baseline (rate limit 100/s)'),
      await phase(relay, client, 'PING flood over the rate limit', () => flooder(relay.url, 'ping')),
    ])),
  );
  rows.push(
    ...(await withRelay({}, async (relay, client) => [
      await phase(relay, undefined, 'cost: served PING', () => flooder(relay.url, 'ping')),
      await phase(relay, undefined, 'cost: served REQUEST (with its RESPONSE)', () => flooder(relay.url, 'request')),
      await phase(relay, undefined, 'cost: refused nested PING (BAD_FRAME)', () => flooder(relay.url, 'deep')),
      await phase(relay, client, '1 MB nested PINGs, 12/s', () => flooder(relay.url, 'bomb', 12)),
    ])),
  );
  // Memory attacks against the default budgets.
  rows.push(
    ...(await withRelay({}, async (relay, client) => [
      await phase(relay, client, '10,000 WAITs of 4 KB patterns, 24-day timeout', () => flooder(relay.url, 'waits')),
      await phase(relay, client, '20 connections that stop reading', () => flooder(relay.url, 'stall')),
      await phase(relay, client, 'sockets that never say HELLO, reopened', () => flooder(relay.url, 'churn')),
    ])),
  );
  const cost = (prefix: string) => rows.find(r => r.phase.startsWith(prefix))?.usPerFrame ?? NaN;
  const refused = cost('cost: refused');
  console.log(
    `a refused frame costs ${(refused / cost('cost: served REQUEST')).toFixed(2)}x a served request, ${(refused / cost('cost: served PING')).toFixed(2)}x a served PING`,
  );
  const commit = execSync('git rev-parse --short HEAD').toString().trim();
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/abuse.json', `${JSON.stringify({ commit, seconds: SECONDS, rows }, null, 2)}\n`);
}

const flooderSpec = process.env.ABUSE_FLOODER;
(flooderSpec === undefined ? main() : runFlooder(JSON.parse(flooderSpec) as Parameters<typeof runFlooder>[0])).then(
  () => {
    if (flooderSpec === undefined) process.exit(0);
  },
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
