/**
 * What the taps add per request, counted rather than measured end to end
 * (end-to-end req/s on a shared 2-core machine swings far more than the taps
 * cost): the time of each kind of work a tap does, timed here in a loop, times
 * how often a request makes the taps do it.
 */
import { traceNumberOf } from './marks.js';

export interface TapWorkEstimate {
  /** ns per marker search of an unmarked frame. */
  searchNs: number;
  /** ns per process.hrtime.bigint(). */
  clockNs: number;
  /** ns a rest-args wrapper adds to a method call. */
  wrapNs: number;
  /** µs of CPU per request over the three processes, at most (no batching). */
  perRequestUs: number;
}

/** Per request, over the three processes: 4 frames sent and 4 received, each searched once; a socket read per received frame; a wrapped call per send, 'message', write and flush. */
const SEARCHES = 8;
const CLOCK_READS = 4;
const WRAPPED_CALLS = 16;

function nsPer(iterations: number, body: (i: number) => unknown): number {
  let sink = 0;
  for (let i = 0; i < iterations / 10; i++) if (body(i) === undefined) sink++;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) if (body(i) === undefined) sink++;
  const ns = Number(process.hrtime.bigint() - t0) / iterations;
  return sink < 0 ? NaN : ns;
}

export function estimateTapWork(iterations = 300_000): TapWorkEstimate {
  // An unmarked REQUEST-sized frame: a miss reads all of it.
  const frame = Buffer.alloc(96, 'x');
  frame[0] = 0x97;
  frame[1] = 3;
  const searchNs = nsPer(iterations, () => traceNumberOf(frame));
  const clockNs = nsPer(iterations, () => process.hrtime.bigint());
  function method(this: { calls: number }, a: unknown, b: unknown): number {
    return (this.calls += a === b ? 1 : 2);
  }
  const target = { calls: 0, method };
  const direct = nsPer(iterations, i => target.method(i, 1));
  const wrapped = {
    calls: 0,
    method(this: { calls: number }, ...args: unknown[]): number {
      return method.apply(this, args as [unknown, unknown]);
    },
  };
  const viaWrapper = nsPer(iterations, i => wrapped.method(i, 1));
  const wrapNs = Math.max(0, viaWrapper - direct);
  const perRequestUs = (SEARCHES * searchNs + CLOCK_READS * clockNs + WRAPPED_CALLS * wrapNs) / 1000;
  return { searchNs, clockNs, wrapNs, perRequestUs };
}
