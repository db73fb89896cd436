/** A second: the window each kind of line is limited in. */
const WINDOW_MS = 1000;

/**
 * At most `perWindow` log lines of each kind per second. Past that the lines
 * are only counted, and once the second is over `report` is told how many
 * were left out (so a flood writes a bounded number of lines, and says so).
 * Nothing is allocated for a line left out.
 */
export class LogLimiter {
  private readonly windowStart: Float64Array;
  private readonly written: Float64Array;
  private readonly suppressed: Float64Array;
  private readonly timers: Array<NodeJS.Timeout | undefined>;

  constructor(
    kinds: number,
    private readonly perWindow: number,
    private readonly report: (kind: number, suppressed: number) => void,
    private readonly now: () => number = Date.now,
  ) {
    this.windowStart = new Float64Array(kinds).fill(-Infinity);
    this.written = new Float64Array(kinds);
    this.suppressed = new Float64Array(kinds);
    this.timers = new Array<NodeJS.Timeout | undefined>(kinds).fill(undefined);
  }

  /** Whether a line of `kind` may be written now (counted as left out otherwise). */
  allow(kind: number): boolean {
    const now = this.now();
    if (now - this.windowStart[kind] >= WINDOW_MS) {
      // A new second: what the last one left out is told first.
      this.flush(kind);
      this.windowStart[kind] = now;
      this.written[kind] = 0;
    }
    if (this.written[kind] < this.perWindow) {
      this.written[kind]++;
      return true;
    }
    this.suppressed[kind]++;
    if (this.timers[kind] === undefined) {
      this.timers[kind] = setTimeout(() => this.flush(kind), this.windowStart[kind] + WINDOW_MS - now);
      this.timers[kind].unref();
    }
    return false;
  }

  /** Reports every count of lines left out now (the relay is stopping). */
  flushAll(): void {
    for (let kind = 0; kind < this.suppressed.length; kind++) this.flush(kind);
  }

  private flush(kind: number): void {
    clearTimeout(this.timers[kind]);
    this.timers[kind] = undefined;
    const n = this.suppressed[kind];
    if (n === 0) return;
    this.suppressed[kind] = 0;
    this.report(kind, n);
  }
}
