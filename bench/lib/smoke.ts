/**
 * `npm run bench -- --smoke`: every workload once, briefly, against every
 * peer that can run, to prove the bench still works end to end (in CI). It
 * asserts that everything ran and nothing failed, never a figure: one short
 * round on a shared machine says nothing about speed. A peer or W7 skipped
 * because its server does not answer is a skip, not a failure; a disturbed
 * measurement is kept as it is (not taken again).
 */
import type { W7Report } from './report.js';
import type { Raw } from './summary.js';
import type { Cell, CellError, PeerId, PeerStatus, W6Result, W7Result, Workload } from './types.js';

export const SMOKE_FLAG = '--smoke';

/** The command line: `--smoke` or nothing (an unknown argument throws, so a typo never starts a full run). */
export function benchArgs(argv: readonly string[]): { smoke: boolean } {
  const unknown = argv.filter(a => a !== SMOKE_FLAG);
  if (unknown.length > 0) throw new TypeError(`bench: unknown argument(s) ${unknown.join(' ')} (known: ${SMOKE_FLAG})`);
  return { smoke: argv.includes(SMOKE_FLAG) };
}

/** What `--smoke` changes in the run's defaults (each BENCH_* variable still overrides its own). */
export const SMOKE_DEFAULTS = {
  rounds: 1,
  durationMs: 300,
  warmupMs: 200,
  /** A disturbed measurement is not taken again. */
  attempts: 1,
  /** W5's subscribers (8 in a full run): each is a process of its own, and their start is most of a smoke run's CPU. */
  fanoutSubscribers: 2,
  w6Connections: 300,
  w6HeartbeatMs: 1000,
  w6IdleBeats: 2,
} as const;

export interface SmokeInput {
  statuses: readonly PeerStatus[];
  /** Peers skipped because their server (nats-server, redis-server) did not answer. */
  unreachable: ReadonlySet<PeerId>;
  throughput: readonly Workload[];
  raw: Raw;
  /** W6 was selected (BENCH_WORKLOADS). */
  w6Selected: boolean;
  w6: ReadonlyArray<W6Result | { relay: string; error: string }>;
  w6Skipped?: string;
  w7: W7Report;
  w7Result?: W7Result;
}

export interface SmokeVerdict {
  ok: boolean;
  /** What failed, one line each. */
  problems: string[];
  /** The last line the run prints. */
  line: string;
}

const isCell = (c: Cell | CellError | undefined): c is Cell => c !== undefined && !('error' in c);
const firstLine = (s: string) => s.split('\n')[0];

/** W1–W5: peers that did not start (their server answering), failed cells, workloads without a figure of ours. */
function throughputProblems(s: SmokeInput): string[] {
  const problems: string[] = [];
  if (s.throughput.length === 0) return problems;
  for (const p of s.statuses) {
    if (p.skipped !== undefined && !s.unreachable.has(p.id)) problems.push(`${p.label} did not start: ${p.skipped}`);
  }
  for (const w of s.throughput) {
    for (const [peer, cells] of Object.entries(s.raw[w.id] ?? {})) {
      for (const c of cells ?? []) if (c !== undefined && !isCell(c)) problems.push(`${w.id} ${peer}: FAILED ${firstLine(c.error)}`);
    }
    if (!(s.raw[w.id]?.wsrelay ?? []).some(isCell)) problems.push(`${w.id}: no result for wsrelay`);
  }
  return problems;
}

function w6Problems(s: SmokeInput): string[] {
  if (!s.w6Selected) return [];
  const problems: string[] = [];
  for (const r of s.w6) {
    if ('error' in r) problems.push(`W6 ${r.relay}: FAILED ${firstLine(r.error)}`);
    else if (r.failed > 0 || r.established === 0) problems.push(`W6 ${r.relay}: ${r.failed} of ${r.attempted} connections failed`);
  }
  if (!s.w6.some(r => r.relay === 'wsrelay' && !('error' in r)))
    problems.push(`W6: no result for wsrelay${s.w6Skipped ? ` (${s.w6Skipped})` : ''}`);
  return problems;
}

function w7Problems(s: SmokeInput): string[] {
  if ('skipped' in s.w7) return [];
  if ('error' in s.w7) return [`W7: FAILED ${firstLine(s.w7.error)}`];
  const problems: string[] = [];
  for (const [workload, placements] of Object.entries(s.w7Result?.raw ?? {})) {
    for (const [placement, cells] of Object.entries(placements)) {
      for (const c of cells) if (!isCell(c)) problems.push(`W7 ${workload} ${placement}: FAILED ${firstLine(c.error)}`);
      if (!cells.some(isCell)) problems.push(`W7 ${workload} ${placement}: no result`);
    }
  }
  return problems;
}

/** Measurements made (W1–W5 cells, W6 relays, W7 cells) and how many of them were disturbed. */
function counted(s: SmokeInput): { cells: number; disturbed: number } {
  const all = [
    ...Object.values(s.raw).flatMap(byPeer => Object.values(byPeer).flatMap(cells => cells ?? [])),
    ...Object.values(s.w7Result?.raw ?? {}).flatMap(byPlacement => Object.values(byPlacement).flat()),
  ].filter(isCell);
  return { cells: all.length + s.w6.filter(r => !('error' in r)).length, disturbed: all.filter(c => c.disturbed !== undefined).length };
}

/** Whether the smoke run passed, and its last line: `bench smoke: OK — N cells, M skipped (reasons)`. */
export function smokeVerdict(s: SmokeInput, seconds: number): SmokeVerdict {
  const problems = [...throughputProblems(s), ...w6Problems(s), ...w7Problems(s)];
  const skips = [
    ...s.statuses.filter(p => p.skipped !== undefined && s.unreachable.has(p.id)).map(p => `${p.id}: ${p.skipped}`),
    ...(s.w6Selected && s.w6Skipped !== undefined ? [`W6: ${s.w6Skipped}`] : []),
    ...('skipped' in s.w7 && s.w7.skipped !== 'not selected (BENCH_WORKLOADS)' ? [`W7: ${s.w7.skipped}`] : []),
  ];
  const { cells, disturbed } = counted(s);
  const tally =
    `${cells} cells, ${skips.length} skipped${skips.length > 0 ? ` (${skips.join('; ')})` : ''}` +
    `${disturbed > 0 ? `, ${disturbed} disturbed (kept)` : ''}, ${seconds.toFixed(0)} s`;
  const ok = problems.length === 0;
  return { ok, problems, line: ok ? `bench smoke: OK — ${tally}` : `bench smoke: FAILED — ${problems.length} problem(s); ${tally}` };
}
