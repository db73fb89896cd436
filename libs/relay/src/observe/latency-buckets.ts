/** Upper bounds of the request duration buckets, in seconds (Prometheus' `le`): half a millisecond to a minute. */
export const REQUEST_DURATION_BUCKETS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

/**
 * A histogram of durations kept as plain numbers: observing one is a short
 * scan of the bounds and three additions, nothing allocated. Read out as a
 * Prometheus histogram at scrape time.
 */
export class LatencyBuckets {
  /** The upper bounds, in milliseconds. */
  private readonly boundsMs: Float64Array;
  /** Observations per bucket, not cumulative; the last holds those past every bound. */
  private readonly counts: Float64Array;
  /** Sum of the observations, in milliseconds. */
  private sumMs = 0;

  constructor(readonly boundsSeconds: readonly number[] = REQUEST_DURATION_BUCKETS) {
    this.boundsMs = Float64Array.from(boundsSeconds, s => s * 1000);
    this.counts = new Float64Array(boundsSeconds.length + 1);
  }

  observe(ms: number): void {
    const bounds = this.boundsMs;
    let i = 0;
    while (i < bounds.length && ms > bounds[i]) i++;
    this.counts[i]++;
    this.sumMs += ms;
  }

  /** Cumulative counts per bound (observations at or under it), the last being every observation; and the sum in seconds. */
  read(): { cumulative: number[]; sumSeconds: number } {
    const cumulative: number[] = [];
    let acc = 0;
    for (const n of this.counts) cumulative.push((acc += n));
    return { cumulative, sumSeconds: this.sumMs / 1000 };
  }
}
