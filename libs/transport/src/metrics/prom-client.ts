/**
 * prom-client is an optional peer dependency: it is imported only when a
 * client or a strategy is given the `metrics` option, and only here. Its types
 * stay out of this package's declarations (an app without it must compile), so
 * the part used is described below.
 */

/** Label values by label name. */
export type Labels = Record<string, string>;

/** What a metric is made with (prom-client's metric configuration, as used here). */
export interface MetricConfig {
  name: string;
  help: string;
  labelNames?: string[];
  buckets?: number[];
  registers: unknown[];
  /** Called on each scrape, before the metric is read, with the metric as `this`. */
  collect?: (this: GaugeLike) => void;
}

export interface CounterLike {
  inc(labels?: Labels): void;
}

export interface GaugeLike {
  set(labels: Labels, value: number): void;
  set(value: number): void;
}

export interface HistogramLike {
  observe(labels: Labels, value: number): void;
}

/** The metric classes of prom-client. */
export interface PromClient {
  Counter: new (config: MetricConfig) => CounterLike;
  Gauge: new (config: MetricConfig) => GaugeLike;
  Histogram: new (config: MetricConfig) => HistogramLike;
}

let loading: Promise<PromClient> | undefined;

/** Imports prom-client once; rejects, saying what to install, when it is missing. */
export function loadPromClient(): Promise<PromClient> {
  loading ??= importPromClient();
  return loading;
}

async function importPromClient(): Promise<PromClient> {
  let mod: { default?: unknown } & Partial<PromClient>;
  try {
    mod = (await import('prom-client')) as unknown as typeof mod;
  } catch (err) {
    loading = undefined;
    const missing = (err as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' || (err as { code?: string }).code === 'MODULE_NOT_FOUND';
    const why = missing ? 'which is not installed: run "npm install prom-client"' : `which failed to load: ${(err as Error).message}`;
    throw new Error(`The "metrics" option needs the "prom-client" package, ${why}`, { cause: err });
  }
  // A CommonJS module: its exports are named, and also the default export (depending on who loads it).
  return (typeof mod.Counter === 'function' ? mod : mod.default) as PromClient;
}
