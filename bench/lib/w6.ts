/**
 * W6: N idle connections with heartbeats on one fresh relay. RSS per
 * connection is (relay RSS after the idle window − RSS before connecting) / N;
 * CPU is the relay's over the idle window, which spans several heartbeat
 * intervals.
 */
import { RELAY_BIN, relayNodeArgs } from '../../scripts/processes.js';
import { Child } from './child.js';
import { cpuSeconds, memory, openFileCount, openFileLimit } from './proc.js';
import type { W6Result } from './types.js';

export interface W6Settings {
  prefix: string;
  connections: number;
  heartbeatMs: number;
  idleMs: number;
}

const sleep = (ms: number) => new Promise(r => setTimeout(r, ms));
/** Open files a generator keeps for itself besides its sockets. */
const GENERATOR_RESERVE = 256;
/** Open files the relay needs besides the bench's sockets (its own, plus a few spare). */
const RELAY_SPARE = 32;

export async function runW6(relayKind: 'wsrelay' | 'raw-ws', s: W6Settings, log: (line: string) => void): Promise<W6Result> {
  const wanted = s.connections + 1024;
  const relay =
    relayKind === 'wsrelay'
      ? new Child('w6 relay', RELAY_BIN, {
          nodeArgs: relayNodeArgs(),
          env: {
            RELAY_PORT: '0',
            RELAY_HOST: '127.0.0.1',
            RELAY_HEARTBEAT_INTERVAL_MS: String(s.heartbeatMs),
            // Every idle connection comes from this host: lift the per-address quotas above the connection count.
            RELAY_MAX_CONNECTIONS_PER_IP: String(s.connections + RELAY_SPARE),
            RELAY_MAX_HANDSHAKES_PER_IP: String(s.connections + RELAY_SPARE),
          },
          fdLimit: wanted,
        })
      : new Child('w6 raw relay', 'bench/peers/raw-relay.ts', {
          env: { RAW_PORT: '0', RELAY_HEARTBEAT_INTERVAL_MS: String(s.heartbeatMs) },
          fdLimit: wanted,
        });
  const generators: Child[] = [];
  try {
    const [, url] = await relay.next(/listening on (ws:\/\/\S+)/, 60_000);
    await sleep(1000);
    const relayFdLimit = openFileLimit(relay.pid) ?? 1024;
    const attempted = Math.min(s.connections, relayFdLimit - openFileCount(relay.pid) - RELAY_SPARE);
    if (attempted < s.connections) {
      log(
        `W6 ${relayKind}: the relay's open-file limit is ${relayFdLimit} (ulimit -n could not raise it), so ${attempted} connections instead of ${s.connections}`,
      );
    }
    const ownLimit = openFileLimit(process.pid) ?? 1024;
    const perGenerator = Math.max(1000, ownLimit - GENERATOR_RESERVE);
    const count = Math.max(2, Math.ceil(attempted / perGenerator));
    const rssBeforeKiB = memory(relay.pid)!.rssKiB;
    const t0 = performance.now();
    for (let i = 0; i < count; i++) {
      const n = Math.floor(attempted / count) + (i < attempted % count ? 1 : 0);
      generators.push(
        new Child(`w6 connections ${i + 1}`, 'bench/peers/idle-connections.ts', {
          env: {
            URL: url,
            PROTOCOL: relayKind === 'wsrelay' ? 'wsrelay' : 'raw',
            COUNT: String(n),
            HEARTBEAT_MS: String(s.heartbeatMs),
            ID_PREFIX: `${s.prefix}w6-${i + 1}`,
          },
          fdLimit: n + GENERATOR_RESERVE,
        }),
      );
    }
    const opened = await Promise.all(generators.map(g => g.next(/^OPEN (\d+) (\d+)$/, 300_000)));
    const connectSeconds = (performance.now() - t0) / 1000;
    const established = opened.reduce((sum, m) => sum + Number(m[1]), 0);
    const failed = opened.reduce((sum, m) => sum + Number(m[2]), 0);
    log(`W6 ${relayKind}: ${established} connections open (${failed} failed) in ${connectSeconds.toFixed(1)} s; idle for ${s.idleMs} ms`);
    // One interval for every node's first ping to start, then the idle window.
    await sleep(s.heartbeatMs);
    const rssAfterConnectKiB = memory(relay.pid)!.rssKiB;
    const cpu0 = cpuSeconds(relay.pid)!;
    const gen0 = generators.reduce((sum, g) => sum + (cpuSeconds(g.pid) ?? 0), 0);
    const w0 = performance.now();
    await sleep(s.idleMs);
    const cpu1 = cpuSeconds(relay.pid)!;
    const gen1 = generators.reduce((sum, g) => sum + (cpuSeconds(g.pid) ?? 0), 0);
    const seconds = (performance.now() - w0) / 1000;
    const mem = memory(relay.pid)!;
    generators.forEach(g => g.send('STATUS'));
    const status = await Promise.all(generators.map(g => g.next(/^STATUS (\d+) (\d+) (\d+)$/, 15_000)));
    const relayCpuPct = (100 * (cpu1 - cpu0)) / seconds;
    return {
      relay: relayKind,
      requested: s.connections,
      attempted,
      established,
      failed,
      relayFdLimit,
      heartbeatMs: s.heartbeatMs,
      idleMs: s.idleMs,
      connectSeconds,
      rssBeforeKiB,
      rssAfterConnectKiB,
      rssAfterIdleKiB: mem.rssKiB,
      perConnectionKiB: established > 0 ? (mem.rssKiB - rssBeforeKiB) / established : NaN,
      relayCpuPct,
      relayCpuPctAt10s: (relayCpuPct * s.heartbeatMs) / 10_000,
      generatorCpuPct: (100 * (gen1 - gen0)) / seconds,
      generators: count,
      dropped: status.reduce((sum, m) => sum + Number(m[2]), 0),
      unansweredPings: status.reduce((sum, m) => sum + Number(m[3]), 0),
      relayHwmKiB: mem.hwmKiB,
    };
  } finally {
    await Promise.all(generators.map(g => g.stop()));
    await relay.stop();
  }
}
