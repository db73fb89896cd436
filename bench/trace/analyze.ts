/**
 * Joins the three processes' stamps by trace number and turns them into
 * segment statistics: the request's path as points, the segments the report
 * shows, and the check that the processes' clocks agree.
 */
import { readStamps } from './marks.js';

export type Role = 'client' | 'relay' | 'provider';
export const ROLES: readonly Role[] = ['client', 'relay', 'provider'];

/** Every point a traced request passes, in order, as `<role>:<point>`. */
export const PATH = [
  'client:client.send',
  'client:req.send',
  'client:req.flush',
  'relay:req.data',
  'relay:req.message',
  'relay:req.send',
  'relay:req.flush',
  'provider:req.data',
  'provider:req.message',
  'provider:handler.start',
  'provider:handler.end',
  'provider:res.send',
  'provider:res.flush',
  'relay:res.data',
  'relay:res.message',
  'relay:res.send',
  'relay:res.flush',
  'client:res.data',
  'client:res.message',
  'client:client.resolve',
] as const;
export type PointKey = (typeof PATH)[number];

export interface Segment {
  label: string;
  from: PointKey;
  to: PointKey;
}

/** The timeline's rows: each ends where the next starts, so together they span send to resolve. */
export const SEGMENTS: readonly Segment[] = [
  { label: 'client send → relay read (client work, wire, relay loop wait)', from: 'client:client.send', to: 'relay:req.message' },
  { label: 'relay read → relay write (relay work + cork)', from: 'relay:req.message', to: 'relay:req.flush' },
  { label: 'relay write → provider read', from: 'relay:req.flush', to: 'provider:req.message' },
  { label: 'provider read → handler start (decode, Nest)', from: 'provider:req.message', to: 'provider:handler.start' },
  { label: 'handler', from: 'provider:handler.start', to: 'provider:handler.end' },
  { label: 'handler end → provider write (Nest, encode, cork)', from: 'provider:handler.end', to: 'provider:res.flush' },
  { label: 'provider write → relay read', from: 'provider:res.flush', to: 'relay:res.message' },
  { label: 'relay read → relay write (relay work + cork)', from: 'relay:res.message', to: 'relay:res.flush' },
  { label: 'relay write → client read', from: 'relay:res.flush', to: 'client:res.message' },
  { label: 'client read → resolve (decode, Nest, rxjs)', from: 'client:res.message', to: 'client:client.resolve' },
];

const STEP_LABELS: Partial<Record<string, string>> = {
  'client:client.send>client:req.send': 'ClientProxy.send → ws.send (Nest client, serialize, encode)',
  'client:req.send>client:req.flush': 'ws.send → write syscall (cork until end of tick)',
  'relay:req.message>relay:req.send': 'message handler → frame handed to the socket (decode, route, encode)',
  'relay:req.send>relay:req.flush': 'frame handed to the socket → write syscall (cork until end of tick)',
  'provider:handler.end>provider:res.send': 'handler end → ws.send (Nest, serialize, encode)',
  'provider:res.send>provider:res.flush': 'ws.send → write syscall (cork until end of tick)',
  'relay:res.message>relay:res.send': 'message handler → frame handed to the socket (decode, route, encode)',
  'relay:res.send>relay:res.flush': 'frame handed to the socket → write syscall (cork until end of tick)',
};

function stepLabel(from: PointKey, to: PointKey): string {
  const known = STEP_LABELS[`${from}>${to}`];
  if (known !== undefined) return known;
  const [fromRole, fromPoint] = from.split(':');
  const [toRole, toPoint] = to.split(':');
  if (fromRole !== toRole) return `${fromRole} write syscall → ${toRole} 'data' (kernel, wire, ${toRole} loop wait)`;
  if (fromPoint.endsWith('.data') && toPoint.endsWith('.message')) return `'data' → 'message' (ws parse, frames ahead in the same read)`;
  return `${from} → ${to}`;
}

/** The finer steps inside a segment (consecutive points of PATH), when it has more than one. */
export function stepsOf(segment: Segment): Segment[] {
  const a = PATH.indexOf(segment.from);
  const b = PATH.indexOf(segment.to);
  if (b - a < 2) return [];
  return PATH.slice(a, b).map((from, i) => ({ label: stepLabel(from, PATH[a + i + 1]), from, to: PATH[a + i + 1] }));
}

/** The receiving hops: sender's write syscall → receiver's 'data' event. */
export const HOPS: readonly Segment[] = [
  { label: 'client → relay (request)', from: 'client:req.flush', to: 'relay:req.data' },
  { label: 'relay → provider (request)', from: 'relay:req.flush', to: 'provider:req.data' },
  { label: 'provider → relay (response)', from: 'provider:res.flush', to: 'relay:res.data' },
  { label: 'relay → client (response)', from: 'relay:res.flush', to: 'client:res.data' },
];

/** Each receiving hop's 'data' → 'message' step. */
export function parseStepOf(hop: Segment): Segment {
  return { label: hop.label, from: hop.to, to: hop.to.replace(/\.data$/, '.message') as PointKey };
}

export type Joined = Map<number, Map<string, bigint>>;

/** Merges the processes' stamp files (their text) into trace number → `<role>:<point>` → ns. */
export function join(files: Record<Role, string>): Joined {
  const out: Joined = new Map();
  for (const role of ROLES) {
    for (const [trace, points] of readStamps(files[role])) {
      let all = out.get(trace);
      if (all === undefined) out.set(trace, (all = new Map<string, bigint>()));
      for (const [point, ns] of points) all.set(`${role}:${point}`, ns);
    }
  }
  return out;
}

/** The traces the client sampled (some stamps of unsampled frames could only come from elsewhere). */
export function sampled(joined: Joined): number {
  let n = 0;
  for (const points of joined.values()) if (points.has('client:client.send')) n++;
  return n;
}

/** The traces stamped at every point of PATH. */
export function complete(joined: Joined): number {
  let n = 0;
  for (const points of joined.values()) if (PATH.every(p => points.has(p))) n++;
  return n;
}

/** from → to, in µs, for every trace that has both. */
export function deltas(joined: Joined, segment: Segment): number[] {
  const out: number[] = [];
  for (const points of joined.values()) {
    const a = points.get(segment.from);
    const b = points.get(segment.to);
    if (a !== undefined && b !== undefined) out.push(Number(b - a) / 1000);
  }
  return out.sort((x, y) => x - y);
}

export interface Stats {
  n: number;
  p50: number;
  p90: number;
  min: number;
  negative: number;
}

export function stats(sorted: readonly number[]): Stats {
  const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
  return {
    n: sorted.length,
    p50: pct(0.5),
    p90: pct(0.9),
    min: sorted[0] ?? NaN,
    negative: sorted.filter(d => d < 0).length,
  };
}

export interface ClockCheck {
  /** Cross-process deltas looked at (every hop of every trace). */
  n: number;
  negative: number;
  /** The smallest of them, µs. */
  minUs: number;
}

/** Every hop's write syscall must precede the receiver's 'data': a negative delta means the clocks cannot be compared. */
export function clockCheck(joined: Joined): ClockCheck {
  const all = HOPS.flatMap(hop => deltas(joined, hop));
  return { n: all.length, negative: all.filter(d => d < 0).length, minUs: all.length === 0 ? NaN : Math.min(...all) };
}
