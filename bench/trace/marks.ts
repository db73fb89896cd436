/**
 * What `npm run bench:trace` shares between its processes: the marker a
 * sampled request's payload carries (MAGIC, then its trace number in DIGITS
 * decimal digits, padded to the bench's payload size with 'x'), and the stamps
 * each process keeps (trace number, point, process.hrtime.bigint()) until it
 * exits.
 *
 * The stamps live on globalThis, not in this module, so the preloaded tap and
 * the bench entry share them even if the loader gives each its own copy of
 * this file.
 */
import { writeFileSync } from 'node:fs';

export const MAGIC = 'Tr4c3#';
const MAGIC_BYTES = Buffer.from(MAGIC, 'latin1');
const DIGITS = 8;
const ZERO = 0x30;

interface Stamps {
  traces: number[];
  points: string[];
  times: bigint[];
}

const STAMPS = Symbol.for('wsrelay.bench.trace.stamps');

function stamps(): Stamps {
  const g = globalThis as unknown as Record<symbol, Stamps | undefined>;
  return (g[STAMPS] ??= { traces: [], points: [], times: [] });
}

/** Records that trace `trace` passed `point` at `ns` (now, by default). */
export function stamp(trace: number, point: string, ns: bigint = process.hrtime.bigint()): void {
  const s = stamps();
  s.traces.push(trace);
  s.points.push(point);
  s.times.push(ns);
}

/** The payload of sampled request `trace`: as long as the unsampled ones (`size`), so the echo check still holds. */
export function markedPayload(trace: number, size: number): string {
  const head = `${MAGIC}${String(trace).padStart(DIGITS, '0')}`;
  if (head.length > size) throw new Error(`SIZE must be at least ${head.length} bytes to carry a trace marker, got ${size}`);
  return head.padEnd(size, 'x');
}

/** The trace number a frame (or payload) carries, or -1: a scan of its bytes, in JavaScript (a native indexOf costs more for frames this small). */
export function traceNumberOf(data: Uint8Array): number {
  const first = MAGIC_BYTES[0];
  const last = data.length - MAGIC_BYTES.length - DIGITS;
  for (let at = 0; at <= last; at++) {
    if (data[at] !== first) continue;
    let k = 1;
    while (k < MAGIC_BYTES.length && data[at + k] === MAGIC_BYTES[k]) k++;
    if (k < MAGIC_BYTES.length) continue;
    let n = 0;
    for (let i = at + k, end = i + DIGITS; i < end; i++) n = n * 10 + (data[i] - ZERO);
    return n;
  }
  return -1;
}

/** 'req' or 'res' from a wire frame's type (a MessagePack array whose first element is the FrameType: 3 REQUEST, 4 RESPONSE). */
export function frameKind(data: Uint8Array): string {
  // 0x90-0x9f: fixarray header; frames have fewer than 16 fields.
  if (data.length < 2 || (data[0] & 0xf0) !== 0x90) return 'frame';
  return data[1] === 3 ? 'req' : data[1] === 4 ? 'res' : 'frame';
}

/** Stamps handler start and end around `handle` when `data` is a sampled payload (the provider, TRACE=1). */
export function traceHandler<T>(data: unknown, handle: (data: unknown) => T): T {
  const trace = typeof data === 'string' && data.startsWith(MAGIC) ? Number(data.slice(MAGIC.length, MAGIC.length + DIGITS)) : -1;
  if (trace < 0) return handle(data);
  stamp(trace, 'handler.start');
  const out = handle(data);
  stamp(trace, 'handler.end');
  return out;
}

export interface TracedRequest {
  payload: string;
  /** Stamps the request's send (`sentAt`, taken before ClientProxy.send) and its resolution (now). */
  resolved(sentAt: bigint): void;
}

/** The load generator's side (TRACE=1): every `every`-th request it is asked about is sampled. */
export function loadTracer(size: number, every = Number(process.env.TRACE_SAMPLE ?? 50)): { next(): TracedRequest | undefined } {
  if (!(every >= 1)) throw new Error(`TRACE_SAMPLE must be at least 1, got ${process.env.TRACE_SAMPLE}`);
  markedPayload(0, size);
  let seq = 0;
  let traces = 0;
  return {
    next() {
      if (++seq % every !== 0) return undefined;
      const trace = ++traces;
      return {
        payload: markedPayload(trace, size),
        resolved: sentAt => {
          const now = process.hrtime.bigint();
          stamp(trace, 'client.send', sentAt);
          stamp(trace, 'client.resolve', now);
        },
      };
    },
  };
}

/** Writes this process's stamps to `file` as it exits, one "trace point ns" line each. */
export function writeStampsAtExit(file: string): void {
  process.on('exit', () => {
    const s = stamps();
    const lines = s.traces.map((t, i) => `${t} ${s.points[i]} ${s.times[i]}`);
    writeFileSync(file, lines.length === 0 ? '' : `${lines.join('\n')}\n`);
  });
}

/** A stamp file as written above: trace number -> point -> ns (the first stamp of a point wins). */
export function readStamps(text: string): Map<number, Map<string, bigint>> {
  const out = new Map<number, Map<string, bigint>>();
  for (const line of text.split('\n')) {
    const [t, point, ns] = line.split(' ');
    if (ns === undefined) continue;
    const trace = Number(t);
    let points = out.get(trace);
    if (points === undefined) out.set(trace, (points = new Map<string, bigint>()));
    if (!points.has(point)) points.set(point, BigInt(ns));
  }
  return out;
}
