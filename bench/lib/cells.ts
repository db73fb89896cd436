/** Runs one workload against one peer: a fresh load generator, the window measured from outside. */
import { Child } from './child.js';
import type { Peer } from './peers.js';
import { CLK_TCK, cpuSeconds, memory, systemCpu } from './proc.js';
import type { Cell, ProcSample, Workload } from './types.js';

export interface CellSettings {
  prefix: string;
  durationMs: number;
  warmupMs: number;
  /** Events in flight for W4/W5. */
  window: number;
}

let countSeq = 0;

interface Watched {
  role: string;
  pids: number[];
  shared?: boolean;
}

function cpuOf(pids: number[]): number {
  return pids.reduce((sum, pid) => sum + (cpuSeconds(pid) ?? NaN), 0);
}

/** Asks every target how many events it had handled by t0 and by t1 (epoch ms); resolves with [n0, n1] each. */
async function askCounts(targets: Child[], t0: number, t1: number): Promise<Array<[number, number]>> {
  const seq = ++countSeq;
  const answers = targets.map(t => t.expect(new RegExp(`^COUNT ${seq} (\\d+) (\\d+)$`), 60_000));
  targets.forEach(t => t.send(`COUNT ${seq} ${t0} ${t1}`));
  const lines = await Promise.all(answers);
  return lines.map(m => [Number(m[1]), Number(m[2])] as [number, number]);
}

/** Why a measurement cannot be trusted, if it cannot: another program took CPU during the window. */
export function disturbance(c: Cell, maxOtherCores: number): string | undefined {
  if (c.machine.otherCores > maxOtherCores) {
    return `${c.machine.otherCores.toFixed(2)} cores busy outside the bench's processes`;
  }
  return undefined;
}

/** One measurement in a log line: the figure, latency or what was sent, and each process's CPU. */
export function describeCell(w: Workload, c: Cell): string {
  const shown =
    w.metric === 'rps'
      ? `${c.value.toFixed(0)} req/s, p50 ${c.p50us?.toFixed(0)} µs, p99 ${c.p99us?.toFixed(0)} µs`
      : w.metric === 'mbps'
        ? `${c.value.toFixed(1)} MB/s, p50 ${c.p50us?.toFixed(0)} µs, p99 ${c.p99us?.toFixed(0)} µs`
        : `${c.value.toFixed(0)} delivered/s${c.perSubscriber ? ` per subscriber (slowest ${Math.min(...c.perSubscriber).toFixed(0)})` : ''}, sent ${c.sentPerSec?.toFixed(0)}/s`;
  return `${shown} [cpu ${c.procs.map(p => `${p.role} ${p.cpu.toFixed(2)}`).join(', ')}]`;
}

export async function runCell(peer: Peer, w: Workload, s: CellSettings): Promise<Cell> {
  const targets = w.kind === 'fanout' ? peer.subscribers : [peer.provider];
  const events = w.kind !== 'rpc';
  const credits = w.kind === 'fanout' ? peer.subscriberCredits : [peer.providerCredit];
  const load = new Child(`${peer.id} ${w.id} load`, peer.loadEntry, {
    env: {
      ...peer.loadEnv,
      BENCH_PREFIX: s.prefix,
      MODE: events ? 'events' : 'rpc',
      INFLIGHT: String(w.inflight),
      SIZE: String(w.size),
      DURATION_MS: String(s.durationMs),
      WARMUP_MS: String(s.warmupMs),
      PATTERN: w.kind === 'fanout' ? 'fanout' : 'events',
      WINDOW: String(s.window),
      ACK: peer.eventAck,
      CREDIT_PORTS: credits.join(','),
      EXPECT_RECIPIENTS: String(targets.length),
    },
  });
  try {
    const watched: Watched[] = [{ role: 'load', pids: [load.pid] }];
    for (const hop of peer.hops) if (hop.pid !== undefined) watched.push({ role: hop.role, pids: [hop.pid], shared: hop.shared });
    watched.push({ role: w.kind === 'fanout' ? 'subscribers' : 'provider', pids: targets.map(t => t.pid) });

    await load.next(/^MEASURE start$/, s.warmupMs + 60_000);
    const epoch0 = Date.now();
    const cpu0 = watched.map(p => cpuOf(p.pids));
    const sys0 = systemCpu();
    const t0 = performance.now();
    await load.next(/^MEASURE end$/, s.durationMs + 60_000);
    const epoch1 = Date.now();
    const cpu1 = watched.map(p => cpuOf(p.pids));
    const sys1 = systemCpu();
    const seconds = (performance.now() - t0) / 1000;
    const ticks = sys1.total - sys0.total;
    const busyCores = (ticks - (sys1.idle - sys0.idle) - (sys1.steal - sys0.steal)) / CLK_TCK / seconds;
    const watchedCores = cpu1.reduce((sum, c, i) => sum + (c - cpu0[i]), 0) / seconds;
    const machine = {
      idlePct: (100 * (sys1.idle - sys0.idle)) / ticks,
      stealPct: (100 * (sys1.steal - sys0.steal)) / ticks,
      otherCores: busyCores - watchedCores,
    };
    const [, json] = await load.next(/^RESULT (.*)$/, 60_000);
    const result = JSON.parse(json) as Record<string, number>;

    const procs: ProcSample[] = watched.map((p, i) => ({
      role: p.role,
      cpu: (cpu1[i] - cpu0[i]) / seconds,
      hwmKiB: p.role === 'load' ? result.maxRssKiB : Math.max(...p.pids.map(pid => memory(pid)?.hwmKiB ?? NaN)),
      processes: p.pids.length,
      ...(p.shared ? { shared: true } : {}),
    }));
    if (!events) {
      return {
        value: w.metric === 'mbps' ? result.mbps : result.rps,
        p50us: result.p50us,
        p99us: result.p99us,
        procs,
        load: result,
        machine,
      };
    }
    const counts = await askCounts(targets, epoch0, epoch1);
    const perSubscriber = counts.map(([n0, n1]) => (n1 - n0) / ((epoch1 - epoch0) / 1000));
    const marks = counts.map(([n0, n1]) => [n0, epoch0, n1, epoch1] as [number, number, number, number]);
    const value = perSubscriber.reduce((x, y) => x + y, 0) / perSubscriber.length;
    return {
      value,
      ...(w.kind === 'fanout' ? { perSubscriber } : {}),
      sentPerSec: result.sentPerSec,
      procs,
      load: result,
      machine,
      marks,
    };
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${load.tail()}`, { cause: err });
  } finally {
    await load.stop();
  }
}
