import type { LatencyBuckets } from '../observe/latency-buckets.js';

/** One line of a histogram as prom-client's Registry prints it. */
interface Sample {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}

/**
 * A Prometheus histogram whose counts the relay keeps itself, in
 * `LatencyBuckets`. prom-client's own Histogram is fed one `observe()` at a
 * time, each building a label object and its hash: not something to do per
 * request. This metric has the shape prom-client's Registry reads (name,
 * help, type, `get()`), so it is registered, printed and merged like the
 * others, and its numbers are read only when scraped.
 */
export class BucketsHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly buckets: LatencyBuckets,
  ) {}

  get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Sample[] }> {
    const { cumulative, sumSeconds } = this.buckets.read();
    const bucket = `${this.name}_bucket`;
    const values: Sample[] = this.buckets.boundsSeconds.map((le, i) => ({ metricName: bucket, labels: { le }, value: cumulative[i] }));
    const count = cumulative[cumulative.length - 1];
    values.push(
      { metricName: bucket, labels: { le: '+Inf' }, value: count },
      { metricName: `${this.name}_sum`, labels: {}, value: sumSeconds },
      { metricName: `${this.name}_count`, labels: {}, value: count },
    );
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }

  /** `Registry.resetMetrics()`: the relay's counts are its own and are not reset from outside. */
  reset(): void {}
}
