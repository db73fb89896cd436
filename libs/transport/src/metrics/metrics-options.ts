import { DEFAULT_METRICS_BUCKETS, DEFAULT_METRICS_PREFIX } from '../constants.js';
import type { WsRelayMetricsOptions, WsRelayMetricsRegistry } from '../interfaces/ws-relay-options.interface.js';

/** A Prometheus metric name's start: letters, digits, `_` and `:`, not a digit first (empty: no prefix). */
const PREFIX = /^(?:[a-zA-Z_:][a-zA-Z0-9_:]*)?$/;
const MAX_BUCKETS = 64;

/** The `metrics` option, defaults applied. */
export interface ResolvedMetricsOptions {
  registry: WsRelayMetricsRegistry;
  prefix: string;
  buckets: number[];
}

export function resolveMetricsOptions(options: WsRelayMetricsOptions): ResolvedMetricsOptions {
  return {
    registry: options.registry,
    prefix: options.prefix ?? DEFAULT_METRICS_PREFIX,
    buckets: [...(options.buckets ?? DEFAULT_METRICS_BUCKETS)],
  };
}

/** What is wrong with a `metrics` option, each naming its field (none: an empty list). */
export function metricsProblems(value: unknown): string[] {
  if (typeof value !== 'object' || value === null) return ['metrics must be an object with a prom-client "registry"'];
  const { registry, prefix, buckets } = value as Record<string, unknown>;
  const problems: string[] = [];
  const methods = ['registerMetric', 'getSingleMetric'];
  if (
    typeof registry !== 'object' ||
    registry === null ||
    methods.some(m => typeof (registry as Record<string, unknown>)[m] !== 'function')
  ) {
    problems.push('metrics.registry must be a prom-client Registry (an object with registerMetric() and getSingleMetric())');
  }
  if (prefix !== undefined && (typeof prefix !== 'string' || !PREFIX.test(prefix))) {
    problems.push('metrics.prefix must be a Prometheus metric name prefix (letters, digits, "_" and ":", not a digit first)');
  }
  if (buckets !== undefined && !isBuckets(buckets)) {
    problems.push(`metrics.buckets must be 1 to ${MAX_BUCKETS} increasing positive finite numbers (seconds)`);
  }
  return problems;
}

function isBuckets(value: unknown): boolean {
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_BUCKETS) return false;
  return value.every((b, i) => typeof b === 'number' && Number.isFinite(b) && b > 0 && (i === 0 || b > (value[i - 1] as number)));
}
