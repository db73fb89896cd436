/** The markdown report: one table per workload, W6, W7 and the targets. */
import type { PeerSummary, ProcSummary, RoundsSummary, Target, W7Ratio, W7Summary } from './summary.js';
import {
  PEER_LABELS,
  type PeerStatus,
  type W6Result,
  W7_PLACEMENT_LABELS,
  W7_PLACEMENTS,
  type W7Result,
  W7_WORKLOADS,
  type Workload,
  WORKLOADS,
} from './types.js';

/** What W7 came to: its figures, or why there are none. */
export type W7Report = { skipped: string } | { error: string } | { cluster: W7Result['cluster']; summaries: W7Summary[]; repeated: number };

export interface ReportInput {
  header: string;
  peers: PeerStatus[];
  summaries: Record<string, PeerSummary[]>;
  w6: Array<W6Result | { relay: string; error: string }>;
  w6Skipped?: string;
  w7: W7Report;
  targets: Target[];
}

const int = (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : 'n/a');
const fixed = (v: number, d: number) => (Number.isFinite(v) ? v.toFixed(d) : 'n/a');

function value(w: Workload, v: number): string {
  return w.metric === 'mbps' ? `${fixed(v, 1)} MB/s` : w.metric === 'rps' ? `${int(v)} req/s` : `${int(v)}/s`;
}

function spread(w: Workload, min: number, max: number): string {
  return w.metric === 'mbps' ? `${fixed(min, 1)}–${fixed(max, 1)}` : `${int(min)}–${int(max)}`;
}

function procs(list: ProcSummary[], pick: (p: ProcSummary) => string): string {
  const byRole = (roles: string[]) => list.find(p => roles.includes(p.role));
  const cells = [byRole(['load']), byRole(['relay', 'broker']), byRole(['provider', 'subscribers'])];
  return cells.map(p => (p === undefined ? '—' : `${pick(p)}${p.shared ? '*' : ''}`)).join(' · ');
}

const cpu = (list: ProcSummary[]) => procs(list, p => fixed(p.cpu, 2));
const rss = (list: ProcSummary[]) => procs(list, p => fixed(p.hwmKiB / 1024, 0));

function workloadTable(w: Workload, rows: PeerSummary[]): string[] {
  const lines = [`### ${w.id} — ${w.title}`, ''];
  const ratio = (r: PeerSummary) =>
    r.oursOverPeer === undefined
      ? '—'
      : r.peer === 'wsrelay'
        ? '1.00x'
        : `${r.oursOverPeer.toFixed(2)}x${r.pairedRange ? ` (${r.pairedRange.min.toFixed(2)}–${r.pairedRange.max.toFixed(2)})` : ''}`;
  const missing = (r: PeerSummary, cols: number) => `| ${PEER_LABELS[r.peer]} | ${r.missing} |${' |'.repeat(cols - 2)}`;
  const failed = (r: PeerSummary) =>
    (r.failures.length > 0 ? ` (${r.failures.length} round(s) failed)` : '') +
    (r.disturbed > 0 ? ` (${r.disturbed} disturbed round(s) left out)` : '');
  const subs = w.kind === 'fanout' ? '8 subscribers (Σ CPU, max RSS)' : w.kind === 'events' ? 'subscriber' : 'provider';
  if (w.kind === 'rpc') {
    lines.push(
      `| peer | ${w.metric === 'mbps' ? 'MB/s' : 'req/s'} median (min–max) | p50 / p99 µs | wsrelay ÷ peer | CPU cores: load · hop · ${subs} | peak RSS MiB: load · hop · ${subs} |`,
      '| --- | --- | --- | --- | --- | --- |',
    );
    for (const r of rows) {
      if (r.missing !== undefined) lines.push(missing(r, 6));
      else
        lines.push(
          `| ${PEER_LABELS[r.peer]} | ${value(w, r.value)} (${spread(w, r.min, r.max)})${failed(r)} | ${int(r.p50us ?? NaN)} / ${int(r.p99us ?? NaN)} | ${ratio(r)} | ${cpu(r.procs)} | ${rss(r.procs)} |`,
        );
    }
  } else if (w.kind === 'events') {
    lines.push(
      `| peer | delivered/s at the subscriber, median (min–max) | sent/s | wsrelay ÷ peer | CPU cores: load · hop · ${subs} | peak RSS MiB: load · hop · ${subs} |`,
      '| --- | --- | --- | --- | --- | --- |',
    );
    for (const r of rows) {
      if (r.missing !== undefined) lines.push(missing(r, 6));
      else
        lines.push(
          `| ${PEER_LABELS[r.peer]} | ${value(w, r.value)} (${spread(w, r.min, r.max)})${failed(r)} | ${int(r.sentPerSec ?? NaN)} | ${ratio(r)} | ${cpu(r.procs)} | ${rss(r.procs)} |`,
        );
    }
  } else {
    lines.push(
      `| peer | delivered/s per subscriber, mean of 8, median (min–max) | slowest subscriber, median (min–max) | wsrelay ÷ peer | CPU cores: load · hop · ${subs} | peak RSS MiB: load · hop · ${subs} |`,
      '| --- | --- | --- | --- | --- | --- |',
    );
    for (const r of rows) {
      if (r.missing !== undefined) lines.push(missing(r, 6));
      else
        lines.push(
          `| ${PEER_LABELS[r.peer]} | ${value(w, r.value)} (${spread(w, r.min, r.max)})${failed(r)} | ${value(w, r.slowest!.value)} (${spread(w, r.slowest!.min, r.slowest!.max)}) | ${ratio(r)} | ${cpu(r.procs)} | ${rss(r.procs)} |`,
        );
    }
  }
  return [...lines, ''];
}

function w6Table(input: ReportInput): string[] {
  const lines = ['### W6 — idle connections with heartbeats, one relay', ''];
  if (input.w6Skipped !== undefined) return [...lines, `skipped: ${input.w6Skipped}`, ''];
  lines.push(
    "| relay | connections | relay RSS before → after (MiB) | RSS per connection | relay CPU, idle window | ≈ at the 10 s default heartbeat | connection holders' CPU | dropped / unanswered pings |",
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
  );
  for (const r of input.w6) {
    const label = r.relay === 'wsrelay' ? PEER_LABELS.wsrelay : PEER_LABELS['raw-ws'];
    if ('error' in r) {
      lines.push(`| ${label} | failed: ${r.error.split('\n')[0]} | | | | | | |`);
      continue;
    }
    lines.push(
      `| ${label} | ${int(r.established)}${r.failed ? ` (+${r.failed} failed)` : ''} | ${fixed(r.rssBeforeKiB / 1024, 0)} → ${fixed(r.rssAfterIdleKiB / 1024, 0)} | ${fixed(r.perConnectionKiB, 1)} KiB | ${fixed(r.relayCpuPct, 1)}% of a core | ${fixed(r.relayCpuPctAt10s, 1)}% | ${fixed(r.generatorCpuPct, 0)}% (${r.generators} processes) | ${r.dropped} / ${r.unansweredPings} |`,
    );
  }
  const first = input.w6.find((r): r is W6Result => !('error' in r));
  if (first !== undefined) {
    lines.push(
      '',
      `Heartbeat ${first.heartbeatMs} ms at the relay (RELAY_HEARTBEAT_INTERVAL_MS) and at every node, idle window ${first.idleMs / 1000} s after one interval of settling; the relay's open-file limit was ${first.relayFdLimit}. ` +
        "The connections are unauthenticated for now (the relay runs with auth off: no RELAY_JWT_* set). Each completes the HELLO/WELCOME handshake (our relay) or sends an empty SUB (raw relay), and answers the relay's pings, pinging it only after two silent intervals, as a node does. " +
        'The 10 s column scales the measured CPU by interval/10 s, an estimate. Nest TCP, NATS and Redis are not measured here: TCP has no heartbeat and the brokers are shared services.',
    );
  }
  return [...lines, ''];
}

const W7_ROLES = [['load'], ['relay A'], ['relay B'], ['broker'], ['provider']];

function w7Procs(list: ProcSummary[], pick: (p: ProcSummary) => string): string {
  return W7_ROLES.map(roles => list.find(p => roles.includes(p.role)))
    .map(p => (p === undefined ? '—' : `${pick(p)}${p.shared ? '*' : ''}`))
    .join(' · ');
}

const times = (r: W7Ratio) => `${fixed(r.median, 2)}x${r.perRound ? ` (${fixed(r.perRound.min, 2)}–${fixed(r.perRound.max, 2)})` : ''}`;

const latency = (median: number | undefined, spread: { min: number; max: number } | undefined) =>
  `${int(median ?? NaN)}${spread ? ` (${int(spread.min)}–${int(spread.max)})` : ''}`;

function w7Table(input: ReportInput): string[] {
  const lines = ['### W7 — client on relay A, provider on relay B (two relays clustered over Redis)', ''];
  const w7 = input.w7;
  if ('skipped' in w7) return [...lines, `skipped: ${w7.skipped}`, ''];
  if ('error' in w7) return [...lines, `failed: ${w7.error.split('\n')[0]}`, ''];
  const procs = 'load · relay A · relay B · Redis · provider';
  lines.push(
    `| workload | placement | req/s median (min–max) | p50 / p99 µs, median (min–max) | CPU cores: ${procs} | peak RSS MiB: ${procs} |`,
    '| --- | --- | --- | --- | --- | --- |',
  );
  const series = (r: RoundsSummary) =>
    r.missing !== undefined
      ? `${r.missing} | | | |`
      : `${int(r.value)} req/s (${int(r.min)}–${int(r.max)})${r.failures.length > 0 ? ` (${r.failures.length} round(s) failed)` : ''}${
          r.disturbed > 0 ? ` (${r.disturbed} disturbed round(s) left out)` : ''
        } | ${latency(r.p50us, r.p50Spread)} / ${latency(r.p99us, r.p99Spread)} | ${w7Procs(r.procs, p => fixed(p.cpu, 2))} | ${w7Procs(r.procs, p => fixed(p.hwmKiB / 1024, 0))}`;
  for (const row of w7.summaries) {
    W7_PLACEMENTS.forEach((placement, i) => {
      lines.push(`| ${i === 0 ? `${row.workload} — ${row.title} ` : ''}| ${W7_PLACEMENT_LABELS[placement]} | ${series(row[placement])} |`);
    });
    const r = row.crossOverSame;
    lines.push(
      r === undefined
        ? '| | cross ÷ same | n/a | n/a | | |'
        : `| | **cross ÷ same** | ${times(r.rps)} | ${times(r.p50us)} / ${times(r.p99us)} | | |`,
    );
  }
  const standalone = W7_WORKLOADS.flatMap(w => {
    const ours = input.summaries[w.id]?.find(r => r.peer === 'wsrelay');
    return ours === undefined || ours.missing !== undefined ? [] : [`${w.id} ${int(ours.value)} req/s`];
  });
  lines.push(
    '',
    `Relays ${w7.cluster.relays.join(' (A) and ')} (B): two relay processes (\`wsrelay-relay\`) with RELAY_REDIS_URL=${w7.cluster.redis} and this run's own RELAY_CLUSTER_PREFIX (${w7.cluster.channelPrefix}), one provider connected to relay B. ` +
      'The load generator of W1/W2, a fresh process per measurement, connects to relay B (same relay) or to relay A (cross-relay: each request goes A → Redis → B and the reply back). ' +
      'The two placements take turns going first, round by round; both relays and Redis (* shared, see below) are measured in either placement. ' +
      'Cross ÷ same: median ÷ median; in brackets the lowest and highest ratio within one round. Below 1 for req/s and above 1 for latency is what the second relay costs. ' +
      `The same-relay figure is that of a relay in a cluster${
        standalone.length > 0 ? `; a relay without one measured ${standalone.join(', ')} above, earlier in this run` : ''
      }.${w7.repeated > 0 ? ` ${w7.repeated} W7 measurement(s) were taken again because the machine was disturbed.` : ''}`,
  );
  return [...lines, ''];
}

export function markdown(input: ReportInput): string {
  const lines = [input.header, ''];
  const skipped = input.peers.filter(p => p.skipped !== undefined);
  for (const p of skipped) lines.push(`- ${p.label}: skipped: ${p.skipped}`);
  if (skipped.length > 0) lines.push('');
  for (const w of WORKLOADS) {
    if (input.summaries[w.id] !== undefined) lines.push(...workloadTable(w, input.summaries[w.id]));
  }
  lines.push(...w6Table(input));
  lines.push(...w7Table(input));
  lines.push(
    'wsrelay ÷ peer: median ÷ median, above 1 means ours is faster; in brackets the lowest and highest ratio within one round. Hop: our relay, the raw relay or the broker (* a shared nats-server/redis-server: its CPU is all it did in the window, its peak RSS is over its lifetime). ' +
      'CPU is user+sys seconds per second of the measured window, from /proc/<pid>/stat; peak RSS is VmHWM (the load generator: its own maxRSS). ' +
      'Events: our relay and the raw relay ACK each event and Redis answers each PUBLISH, so up to 1,000 events wait for that answer; Nest TCP and NATS emit() completes at the local write, so up to 1,000 events wait until the subscriber has counted them. Delivered/s is counted by the subscriber itself.',
    '',
  );
  lines.push('### Targets', '', '| workload | target | measured | met |', '| --- | --- | --- | --- |');
  for (const t of input.targets) {
    const met = t.met === undefined ? 'not measured' : t.met ? 'yes' : 'no';
    lines.push(`| ${t.workload} | ${t.target} | ${t.measured} | ${met}${t.note ? ` (${t.note})` : ''} |`);
  }
  return `${lines.join('\n')}\n`;
}
