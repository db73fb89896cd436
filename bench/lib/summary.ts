/** Medians and spreads over rounds, ratios to ours, and the performance targets. */
import {
  type Cell,
  type CellError,
  type PeerId,
  type PeerStatus,
  type W6Result,
  W7_WORKLOADS,
  type W7Result,
  type Workload,
  WORKLOADS,
} from './types.js';

export const median = (xs: number[]): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export interface ProcSummary {
  role: string;
  /** Median over rounds, in cores. */
  cpu: number;
  /** Largest over rounds, KiB. */
  hwmKiB: number;
  processes: number;
  shared: boolean;
}

/** One series of rounds (one peer's, or one W7 placement's): medians and spreads. */
export interface RoundsSummary {
  /** Set when the series has no figure (skipped, n/a, or every round failed). */
  missing?: string;
  rounds: number;
  /** Rounds left out because the machine was disturbed during them. */
  disturbed: number;
  failures: string[];
  value: number;
  min: number;
  max: number;
  p50us?: number;
  p99us?: number;
  /** RPC: the lowest and highest p50 and p99 of a round. */
  p50Spread?: { min: number; max: number };
  p99Spread?: { min: number; max: number };
  /** W5: the slowest subscriber of each round, median over rounds, with its spread. */
  slowest?: { value: number; min: number; max: number };
  sentPerSec?: number;
  procs: ProcSummary[];
}

export interface PeerSummary extends RoundsSummary {
  peer: PeerId;
  /** ours ÷ this peer (medians); > 1 means ours is faster. */
  oursOverPeer?: number;
  /** ours ÷ this peer within each round (measured minutes apart at most), lowest and highest. */
  pairedRange?: { min: number; max: number };
}

export type Raw = Record<string, Partial<Record<PeerId, Array<Cell | CellError>>>>;

const isCell = (c: Cell | CellError): c is Cell => !('error' in c);

const spreadOf = (xs: number[]) => ({ min: Math.min(...xs), max: Math.max(...xs) });

/** Medians over the rounds that count: the undisturbed ones, or all measured ones when every round was disturbed. */
export function summarizeRounds(w: Workload, cells: Array<Cell | CellError>): RoundsSummary {
  const measured = cells.filter(isCell);
  const calm = measured.filter(c => c.disturbed === undefined);
  const ok = calm.length > 0 ? calm : measured;
  const failures = cells.filter((c): c is CellError => !isCell(c)).map(c => c.error.split('\n')[0]);
  const base: RoundsSummary = {
    rounds: ok.length,
    disturbed: measured.length - ok.length,
    failures,
    value: NaN,
    min: NaN,
    max: NaN,
    procs: [],
  };
  if (ok.length === 0) return { ...base, missing: `failed: ${failures[0] ?? 'no rounds ran'}` };
  const values = ok.map(c => c.value);
  const roles = ok[0].procs.map(pr => pr.role);
  const summary: RoundsSummary = {
    ...base,
    value: median(values),
    ...spreadOf(values),
    procs: roles.map(role => {
      const samples = ok.map(c => c.procs.find(pr => pr.role === role)!).filter(Boolean);
      return {
        role,
        cpu: median(samples.map(s => s.cpu)),
        hwmKiB: Math.max(...samples.map(s => s.hwmKiB)),
        processes: samples[0].processes,
        shared: samples[0].shared === true,
      };
    }),
  };
  if (w.kind === 'rpc') {
    const p50 = ok.map(c => c.p50us ?? NaN);
    const p99 = ok.map(c => c.p99us ?? NaN);
    summary.p50us = median(p50);
    summary.p99us = median(p99);
    summary.p50Spread = spreadOf(p50);
    summary.p99Spread = spreadOf(p99);
  } else {
    summary.sentPerSec = median(ok.map(c => c.sentPerSec ?? NaN));
  }
  if (w.kind === 'fanout') {
    const slowest = ok.map(c => Math.min(...(c.perSubscriber ?? [NaN])));
    summary.slowest = { value: median(slowest), ...spreadOf(slowest) };
  }
  return summary;
}

export function summarize(w: Workload, raw: Raw, peers: PeerStatus[], notApplicable: Partial<Record<PeerId, string>>): PeerSummary[] {
  const rows = peers.map((p): PeerSummary => {
    const series = summarizeRounds(w, raw[w.id]?.[p.id] ?? []);
    const missing = p.skipped !== undefined ? `skipped: ${p.skipped}` : (notApplicable[p.id] ?? series.missing);
    return { peer: p.id, ...series, ...(missing !== undefined ? { missing } : {}) };
  });
  const ours = rows.find(r => r.peer === 'wsrelay');
  const oursCells = raw[w.id]?.wsrelay ?? [];
  for (const r of rows) {
    if (ours === undefined || ours.missing !== undefined || r.missing !== undefined) continue;
    r.oursOverPeer = ours.value / r.value;
    const peerCells = raw[w.id]?.[r.peer] ?? [];
    const paired = oursCells.flatMap((o, i) => {
      const p = peerCells[i];
      return p !== undefined && isCell(o) && isCell(p) && o.disturbed === undefined && p.disturbed === undefined ? [o.value / p.value] : [];
    });
    if (paired.length > 0) r.pairedRange = { min: Math.min(...paired), max: Math.max(...paired) };
  }
  return rows;
}

/** A cross ÷ same ratio: of the medians, and the lowest and highest within one round (both placements undisturbed). */
export interface W7Ratio {
  median: number;
  perRound?: { min: number; max: number };
}

export interface W7Summary {
  workload: Workload['id'];
  title: string;
  same: RoundsSummary;
  cross: RoundsSummary;
  /** Below 1 for req/s, above 1 for the latencies: what the hop through relay A and Redis costs. */
  crossOverSame?: { rps: W7Ratio; p50us: W7Ratio; p99us: W7Ratio };
}

export function summarizeW7(result: W7Result): W7Summary[] {
  return W7_WORKLOADS.map(w => {
    const cells = result.raw[w.id] ?? { same: [], cross: [] };
    const same = summarizeRounds(w, cells.same);
    const cross = summarizeRounds(w, cells.cross);
    const row: W7Summary = { workload: w.id, title: w.title, same, cross };
    if (same.missing !== undefined || cross.missing !== undefined) return row;
    const ratio = (pick: (c: RoundsSummary | Cell) => number | undefined): W7Ratio => {
      const paired = cells.same.flatMap((s, i) => {
        const c = cells.cross[i];
        return c !== undefined && isCell(s) && isCell(c) && s.disturbed === undefined && c.disturbed === undefined
          ? [(pick(c) ?? NaN) / (pick(s) ?? NaN)]
          : [];
      });
      return { median: (pick(cross) ?? NaN) / (pick(same) ?? NaN), ...(paired.length > 0 ? { perRound: spreadOf(paired) } : {}) };
    };
    row.crossOverSame = { rps: ratio(c => c.value), p50us: ratio(c => c.p50us), p99us: ratio(c => c.p99us) };
    return row;
  });
}

export interface Target {
  workload: string;
  target: string;
  measured: string;
  /** undefined: not measured. */
  met: boolean | undefined;
  note?: string;
}

const ratio = (rows: PeerSummary[], peer: PeerId) => rows.find(r => r.peer === peer)?.oursOverPeer;
const x = (rows: PeerSummary[], peer: PeerId) => {
  const r = rows.find(row => row.peer === peer);
  const v = r?.oursOverPeer;
  if (v === undefined || !Number.isFinite(v)) return 'n/a';
  return `${v.toFixed(2)}x${r?.pairedRange ? ` (per round ${r.pairedRange.min.toFixed(2)}–${r.pairedRange.max.toFixed(2)})` : ''}`;
};

export function targets(summaries: Record<string, PeerSummary[]>, w6: Array<W6Result | { relay: string; error: string }>): Target[] {
  const out: Target[] = [];
  const vsTcp = (id: string, min: number) => {
    const r = ratio(summaries[id] ?? [], 'nest-tcp');
    out.push({
      workload: id,
      target: `≥ ${min.toFixed(1)}x Nest TCP`,
      measured: x(summaries[id] ?? [], 'nest-tcp'),
      met: r === undefined ? undefined : r >= min,
    });
  };
  vsTcp('W1', 0.8);
  vsTcp('W2', 1.0);
  const w2 = summaries.W2 ?? [];
  const oursP99 = w2.find(r => r.peer === 'wsrelay')?.p99us;
  const tcpP99 = w2.find(r => r.peer === 'nest-tcp')?.p99us;
  out.push({
    workload: 'W2',
    target: 'p99 no worse than Nest TCP',
    measured: oursP99 === undefined || tcpP99 === undefined ? 'n/a' : `${oursP99.toFixed(0)} µs vs ${tcpP99.toFixed(0)} µs`,
    met: oursP99 === undefined || tcpP99 === undefined || !Number.isFinite(oursP99 + tcpP99) ? undefined : oursP99 <= tcpP99,
  });
  vsTcp('W3', 0.8);
  vsTcp('W4', 1.5);
  const w4 = summaries.W4?.find(r => r.peer === 'wsrelay');
  const w5 = summaries.W5?.find(r => r.peer === 'wsrelay');
  const share = w4 && w5?.slowest ? w5.slowest.value / w4.value : undefined;
  out.push({
    workload: 'W5',
    target: 'each of 8 subscribers ≥ 0.5x W4 single',
    measured:
      share === undefined ? 'n/a' : `slowest ${w5!.slowest!.value.toFixed(0)}/s = ${share.toFixed(2)}x of ${w4!.value.toFixed(0)}/s`,
    met: share === undefined || !Number.isFinite(share) ? undefined : share >= 0.5,
  });
  const ours6 = w6.find((r): r is W6Result => r.relay === 'wsrelay' && !('error' in r));
  out.push({
    workload: 'W6',
    target: '20,000 idle connections, ≤ 16 KiB RSS each',
    measured: ours6 === undefined ? 'n/a' : `${ours6.perConnectionKiB.toFixed(1)} KiB each at ${ours6.established} connections`,
    met: ours6 === undefined ? undefined : ours6.perConnectionKiB <= 16,
    ...(ours6 !== undefined && ours6.established < 20_000
      ? {
          note:
            ours6.attempted < ours6.requested
              ? `${ours6.established} connections, not ${ours6.requested}: the relay's open-file limit is ${ours6.relayFdLimit}`
              : `${ours6.established} connections (BENCH_W6_CONNECTIONS=${ours6.requested})`,
        }
      : {}),
  });
  out.push({
    workload: 'W6',
    target: 'heartbeat CPU ≤ 5% of a core',
    measured:
      ours6 === undefined
        ? 'n/a'
        : `${ours6.relayCpuPct.toFixed(1)}% at a ${ours6.heartbeatMs} ms heartbeat (≈ ${ours6.relayCpuPctAt10s.toFixed(1)}% at the 10 s default)`,
    met: ours6 === undefined ? undefined : ours6.relayCpuPct <= 5,
    ...(ours6 !== undefined && ours6.relayCpuPct > 5 && ours6.relayCpuPctAt10s <= 5
      ? { note: 'met only at the 10 s default heartbeat, and that figure is extrapolated' }
      : {}),
  });
  for (const id of ['W1', 'W2', 'W3']) {
    for (const peer of ['nest-nats', 'nest-redis'] as const) {
      const r = ratio(summaries[id] ?? [], peer);
      out.push({
        workload: id,
        target: `≥ 2x ${peer === 'nest-nats' ? 'Nest NATS' : 'Nest Redis'}`,
        measured: x(summaries[id] ?? [], peer),
        met: r === undefined ? undefined : r >= 2,
      });
    }
  }
  return out;
}

export const WORKLOAD_IDS = WORKLOADS.map(w => w.id);
