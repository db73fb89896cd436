/** The trace bench's result: per-workload summaries (the JSON) and the markdown made from them. */
import {
  clockCheck,
  type ClockCheck,
  complete,
  deltas,
  HOPS,
  type Joined,
  parseStepOf,
  PATH,
  type Role,
  ROLES,
  sampled,
  SEGMENTS,
  type Stats,
  stats,
  stepsOf,
} from './analyze.js';
import type { TapWorkEstimate } from './cost.js';

/** One run of the relay, a provider and a load generator, as bench/trace.ts measured it. */
export interface Run {
  workload: string;
  inflight: number;
  taps: boolean;
  rps: number;
  /** load.ts's own latency percentiles, µs. */
  p50us: number;
  p99us: number;
  /** The measured window as seen from outside (between load.ts's MEASURE lines). */
  windowSec: number;
  /** CPU time (user + system) per request over that window, µs. */
  cpuUsPerReq: Record<Role, number>;
  joined?: Joined;
}

interface Row {
  label: string;
  from: string;
  to: string;
  stats: Stats;
}

export interface HopSummary extends Row {
  /** 'data' → 'message' on the receiving side. */
  parse: Stats;
  /** p50 and p90 of write syscall → 'data', less the W1 p50 of the same hop. */
  loopWait: { p50: number; p90: number };
}

export interface Timeline {
  workload: string;
  sampled: number;
  complete: number;
  clock: ClockCheck;
  /** Consecutive points of the path (same process or not) that came out of order. */
  outOfOrderSteps: number;
  segments: Array<Row & { steps: Row[] }>;
  total: Stats;
  hops: HopSummary[];
}

export interface TraceResult {
  commit: string;
  date: string;
  node: string;
  cpus: number;
  sampleEvery: number;
  warmupMs: number;
  durationMs: number;
  payloadBytes: number;
  /** 1-minute load average when the run ended. */
  loadAverage: number;
  runs: Array<Omit<Run, 'joined'>>;
  tapWork: TapWorkEstimate;
  timelines: Timeline[];
}

const row = (joined: Joined, s: { label: string; from: string; to: string }): Row => ({
  label: s.label,
  from: s.from,
  to: s.to,
  stats: stats(deltas(joined, s as Parameters<typeof deltas>[1])),
});

/** A traced run's segments and hops; `baseline` (hop label → W1 p50 of write → 'data') turns hop times into loop waits. */
export function timeline(run: Run, joined: Joined, baseline: Map<string, number>): Timeline {
  let outOfOrderSteps = 0;
  for (let i = 0; i + 1 < PATH.length; i++)
    outOfOrderSteps += stats(deltas(joined, { label: '', from: PATH[i], to: PATH[i + 1] })).negative;
  const hops = HOPS.map(hop => {
    const wire = row(joined, hop);
    const base = baseline.get(hop.label) ?? wire.stats.p50;
    return {
      ...wire,
      parse: stats(deltas(joined, parseStepOf(hop))),
      loopWait: { p50: wire.stats.p50 - base, p90: wire.stats.p90 - base },
    };
  });
  return {
    workload: run.workload,
    sampled: sampled(joined),
    complete: complete(joined),
    clock: clockCheck(joined),
    outOfOrderSteps,
    segments: SEGMENTS.map(s => ({ ...row(joined, s), steps: stepsOf(s).map(step => row(joined, step)) })),
    total: stats(deltas(joined, { label: 'total', from: 'client:client.send', to: 'client:client.resolve' })),
    hops,
  };
}

const us = (v: number): string => (Number.isNaN(v) ? '–' : Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(1));
const table = (head: string[], rows: string[][]): string[] => [
  `| ${head.join(' | ')} |`,
  `|${head.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`,
  ...rows.map(r => `| ${r.join(' | ')} |`),
];

function timelineTable(timelines: Timeline[]): string[] {
  const head = ['segment (µs)', ...timelines.flatMap(t => [`${t.workload} p50`, `${t.workload} p90`])];
  const cells = (pick: (t: Timeline) => Stats) => timelines.flatMap(t => [us(pick(t).p50), us(pick(t).p90)]);
  const rows: string[][] = [];
  SEGMENTS.forEach((s, i) => {
    rows.push([`**${s.label}**`, ...cells(t => t.segments[i].stats)]);
    stepsOf(s).forEach((step, j) => rows.push([`&nbsp;&nbsp;↳ ${step.label}`, ...cells(t => t.segments[i].steps[j].stats)]));
  });
  rows.push(['**total: client send → resolve**', ...cells(t => t.total)]);
  rows.push(['traced requests (complete / sampled)', ...timelines.flatMap(t => [`${t.complete} / ${t.sampled}`, ''])]);
  return table(head, rows);
}

function hopTable(timelines: Timeline[]): string[] {
  const head = [
    'receiving hop (µs)',
    ...timelines.flatMap(t => [
      `${t.workload} write→data p50 / p90`,
      `${t.workload} loop wait p50 / p90`,
      `${t.workload} data→message p50 / p90`,
    ]),
  ];
  const rows = HOPS.map((hop, i) => [
    hop.label,
    ...timelines.flatMap(t => {
      const h = t.hops[i];
      return [
        `${us(h.stats.p50)} / ${us(h.stats.p90)}`,
        `${us(h.loopWait.p50)} / ${us(h.loopWait.p90)}`,
        `${us(h.parse.p50)} / ${us(h.parse.p90)}`,
      ];
    }),
  ]);
  return table(head, rows);
}

function cpuTable(runs: Array<Omit<Run, 'joined'>>): string[] {
  const head = ['µs of CPU per request', ...runs.map(r => `${r.workload} (taps ${r.taps ? 'on' : 'off'})`)];
  const names: Record<Role, string> = {
    client: 'client (bench/load.ts)',
    relay: 'relay (wsrelay-relay)',
    provider: 'provider (bench/peers/provider.ts)',
  };
  return table(head, [
    ...ROLES.map(role => [names[role], ...runs.map(r => us(r.cpuUsPerReq[role]))]),
    ['**all three**', ...runs.map(r => `**${us(ROLES.reduce((sum, role) => sum + r.cpuUsPerReq[role], 0))}**`)],
    ['req/s', ...runs.map(r => r.rps.toFixed(0))],
    ['load.ts latency p50 / p99 (µs, all requests)', ...runs.map(r => `${us(r.p50us)} / ${us(r.p99us)}`)],
  ]);
}

function clockLines(timelines: Timeline[]): string[] {
  const n = timelines.reduce((s, t) => s + t.clock.n, 0);
  const negative = timelines.reduce((s, t) => s + t.clock.negative, 0);
  const outOfOrder = timelines.reduce((s, t) => s + t.outOfOrderSteps, 0);
  const min = Math.min(...timelines.map(t => t.clock.minUs));
  const verdict =
    negative === 0 && outOfOrder === 0
      ? `**holds**: all ${n} cross-process hops (sender's write syscall → receiver's 'data') were positive (smallest ${us(min)} µs), and no step of any trace ran backwards.`
      : `**FAILED**: ${negative} of ${n} cross-process hops were negative (smallest ${us(min)} µs) and ${outOfOrder} steps ran backwards: do not read the cross-process rows.`;
  return [
    `Clock: \`process.hrtime.bigint()\`, which is CLOCK_MONOTONIC on Linux (system-wide), so stamps from the three processes are compared directly. Check: ${verdict}`,
  ];
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((x, y) => x - y);
  const mid = sorted.length / 2;
  return sorted.length === 0 ? NaN : Number.isInteger(mid) ? (sorted[mid - 1] + sorted[mid]) / 2 : sorted[Math.floor(mid)];
}
const change = (from: number, to: number): string => `${to >= from ? '+' : ''}${(((to - from) / from) * 100).toFixed(1)}%`;

function tapCostLines(runs: Array<Omit<Run, 'joined'>>, work: TapWorkEstimate): string[] {
  const off = runs.filter(r => r.workload === 'W2' && !r.taps);
  const on = runs.filter(r => r.workload === 'W2' && r.taps);
  if (off.length === 0 || on.length === 0) return [];
  const rps = (rs: typeof runs) => median(rs.map(r => r.rps));
  const cpu = (rs: typeof runs) => median(rs.map(r => ROLES.reduce((s, role) => s + r.cpuUsPerReq[role], 0)));
  const list = (rs: typeof runs) => rs.map(r => r.rps.toFixed(0)).join(', ');
  const runsSaid = off.length === 1 ? 'one run each' : `${off.length} alternating runs each, medians`;
  return [
    `Tap cost (W2, ${runsSaid}): ${rps(off).toFixed(0)} req/s with taps off (${list(off)}), ${rps(on).toFixed(0)} with taps on (${list(on)}): ` +
      `${change(rps(off), rps(on))}; CPU ${us(cpu(off))} → ${us(cpu(on))} µs per request over the three processes (${change(cpu(off), cpu(on))}). ` +
      'Taps on = the preload in all three processes (wrappers on ws and net.Socket methods: a marker scan per frame, a clock read per socket read) and the TypeScript loader it needs in the relay, plus 1-in-N marked payloads. ' +
      'W2 runs of the very same setup differ by 10-30% from one to the next on a shared 2-core machine (see the load average above), so one pair cannot show a cost this small: ' +
      'TRACE_COST_PAIRS=5 alternates more runs (the order flips each pair) and compares medians.',
    '',
    `Tap cost counted instead (timed in a loop here, times how often one request makes the taps do it): a marker search of a frame ${work.searchNs.toFixed(0)} ns × 8, ` +
      `a clock read ${work.clockNs.toFixed(0)} ns × 4, a wrapped call +${work.wrapNs < 1 ? '<1' : work.wrapNs.toFixed(0)} ns × 16 = **≈ ${work.perRequestUs.toFixed(1)} µs of CPU per request** over the three processes ` +
      '(under W2 one socket read and one write syscall serve many frames, so fewer clock reads; a wrapper measured in a tight loop is inlined, in the processes it costs a few ns more).',
  ];
}

const DEFINITIONS = [
  '## Definitions',
  '',
  "- **read** (relay read, provider read, client read): ws emits 'message' for the frame, i.e. our handler starts. **write**: the first write syscall on that TCP socket after our code handed the frame over (`ws.send`; the relay writes the frames it framed itself straight to the TCP socket), i.e. `net.Socket#_writeGeneric`, at the end-of-tick uncork where the socket is corked, stamped as it is issued.",
  "- **write→data**: from the sender's write syscall to the receiver's 'data' event on its TCP socket (the earliest point the bytes are in JavaScript): kernel, loopback, and the time the receiver's event loop was busy with something else before it read the socket.",
  '- **loop wait** (event-loop wait): write→data less the W1 p50 of the same hop. At W1 every receiver is idle in epoll when the bytes arrive, so the W1 p50 is the loopback wire + wake-up baseline (its own loop wait is ~0 by this definition); what a busier workload adds on top is time the bytes sat in the socket while the receiver ran other callbacks.',
  "- **data→message**: from that 'data' event to our 'message' handler for this frame: ws parsing plus the handlers of the frames ahead of it in the same read (64 in flight means many frames per read). It is the other half of waiting in the receiver.",
  '- Segments are medians and p90s of per-request differences, so the rows do not add up exactly to the total.',
  '- CPU per request: utime + stime from /proc/<pid>/stat of each process between load.ts\'s "MEASURE start" and "MEASURE end" lines (10 ms ticks), divided by the requests in that window; it includes the taps when they are on.',
];

export function markdown(result: TraceResult): string {
  const header = [
    '# Request timeline: client → relay → provider → relay → client',
    '',
    `commit ${result.commit} · ${result.date} · Node ${result.node} · ${result.cpus} CPUs (load average ${result.loadAverage.toFixed(1)}) · ${result.payloadBytes} B payloads · ` +
      `1 in ${result.sampleEvery} requests traced over ${result.durationMs} ms after ${result.warmupMs} ms warm-up · ` +
      'W1 = 1 request in flight, W2 = 64; the relay executable (auth off), bench/peers/provider.ts and bench/load.ts each in its own process.',
    '',
  ];
  return [
    ...header,
    ...clockLines(result.timelines),
    '',
    '## Timeline',
    '',
    ...timelineTable(result.timelines),
    '',
    '## Receiving hops: where the bytes waited',
    '',
    ...hopTable(result.timelines),
    '',
    '## CPU per request',
    '',
    ...cpuTable(result.runs),
    '',
    ...tapCostLines(result.runs, result.tapWork),
    '',
    ...DEFINITIONS,
    '',
  ].join('\n');
}
