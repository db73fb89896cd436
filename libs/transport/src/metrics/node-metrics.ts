import type { RelayLinks } from '../connection/relay-links.js';
import type { WsRelayMetricsOptions } from '../interfaces/ws-relay-options.interface.js';
import { type Family, type FamilyContext, familyIn, type MetricsSource, watchReconnects } from './metric-families.js';
import { resolveMetricsOptions } from './metrics-options.js';
import { loadPromClient } from './prom-client.js';

/** The family's `result` label of a duration: `ok`, or `error` for every other outcome. */
export const OK = { result: 'ok' } as const;
export const FAILED = { result: 'error' } as const;

/**
 * One client's or strategy's metrics. prom-client is imported as this is
 * made; until it is there (connect() and listen() wait for it) nothing is
 * recorded but the in-flight count. The role's family of metrics is shared
 * with the other nodes given the same registry and prefix.
 */
export abstract class NodeMetrics<F extends Family> implements MetricsSource {
  /** Resolves once the metrics are registered; rejects when prom-client cannot be loaded. */
  readonly loaded: Promise<void>;
  inFlight = 0;
  /** The role's metrics, once loaded. */
  protected family: F | undefined;

  constructor(
    options: WsRelayMetricsOptions,
    readonly links: RelayLinks,
    role: 'client' | 'server',
    make: (ctx: FamilyContext) => F,
  ) {
    const { registry, prefix, buckets } = resolveMetricsOptions(options);
    const start = `${prefix}${role}_`;
    this.loaded = loadPromClient().then(prom => {
      this.family = familyIn(registry, start, sources =>
        make({ prom, name: suffix => start + suffix, registers: [registry], buckets, sources }),
      );
      this.family.sources.add(this);
    });
    // Reported by connect() and listen(), which wait for it.
    this.loaded.catch(() => undefined);
    watchReconnects(links, () => this.family?.reconnects.inc());
  }

  /** Runs `next` once `metrics` (if any) are loaded: connect() and listen() go on only with their metrics in place. */
  static afterLoading(metrics: { loaded: Promise<void> } | undefined, next: () => Promise<void>): Promise<void> {
    return metrics === undefined ? next() : metrics.loaded.then(next);
  }
}

/** Seconds since `start` (a `performance.now()`). */
export function secondsSince(start: number): number {
  return (performance.now() - start) / 1000;
}
