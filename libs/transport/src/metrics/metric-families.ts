import type { ConnectionState } from '../connection/connection-state.js';
import type { RelayLinks } from '../connection/relay-links.js';
import type { CounterLike, GaugeLike, MetricConfig, PromClient } from './prom-client.js';

/** Every state a relay connection can be in: the `state` label's values, each reported (0 included) on every scrape. */
const STATES: readonly ConnectionState[] = ['idle', 'connecting', 'handshaking', 'connected', 'waiting', 'closed'];

/** A client or a strategy, as the gauges read it on each scrape. */
export interface MetricsSource {
  readonly links: RelayLinks;
  /** Calls (a client) or requests (a strategy) in flight. */
  readonly inFlight: number;
}

/**
 * The nodes that share a family of metrics, held weakly: a client the app
 * dropped is not kept alive by the registry, and leaves the gauges once collected.
 */
export class Sources implements Iterable<MetricsSource> {
  private readonly refs = new Set<WeakRef<MetricsSource>>();

  add(source: MetricsSource): void {
    this.refs.add(new WeakRef(source));
  }

  *[Symbol.iterator](): Iterator<MetricsSource> {
    for (const ref of this.refs) {
      const source = ref.deref();
      if (source === undefined) this.refs.delete(ref);
      else yield source;
    }
  }

  /** The sum of `read` over the nodes. */
  sum(read: (source: MetricsSource) => number): number {
    let total = 0;
    for (const source of this) total += read(source);
    return total;
  }
}

/** What a role's metrics are made with. */
export interface FamilyContext {
  prom: PromClient;
  /** The metric's full name: the prefix, the role (`client_`, `server_`), then `suffix`. */
  name: (suffix: string) => string;
  registers: unknown[];
  buckets: number[];
  sources: Sources;
}

/** What every role has: the nodes it reads, reconnects, and the connection gauges. */
export interface Family {
  readonly sources: Sources;
  readonly reconnects: CounterLike;
}

/** A family made in a registry, with the metric that tells whether the registry still holds it. */
interface Made {
  family: Family;
  probe: unknown;
  probeName: string;
}

/** The families made in each registry, by name prefix. */
const made = new WeakMap<object, Map<string, Made>>();

/**
 * The family of metrics named `start` in `registry`: made once, then shared
 * by every node given the same registry and prefix (their counters add up,
 * their gauges sum over them). Made anew when the registry was cleared since.
 */
export function familyIn<F extends Family>(
  registry: { getSingleMetric(name: string): unknown },
  start: string,
  make: (sources: Sources) => F,
): F {
  let byStart = made.get(registry);
  if (byStart === undefined) made.set(registry, (byStart = new Map<string, Made>()));
  const known = byStart.get(start);
  if (known !== undefined && registry.getSingleMetric(known.probeName) === known.probe) return known.family as F;
  const sources = new Sources();
  const family = make(sources);
  byStart.set(start, { family, probe: family.reconnects, probeName: `${start}reconnects_total` });
  return family;
}

/** Reconnects, and the connection state gauges, of a role's nodes (`nodes`: 'clients' or 'strategies', for the help texts). */
export function connectionMetrics(ctx: FamilyContext, nodes: string): Family {
  const { prom, name, registers, sources } = ctx;
  const reconnects = new prom.Counter({
    name: name('reconnects_total'),
    help: `Sessions with a relay that ${nodes} established again after an earlier one ended (a restart, a lost connection, a GOAWAY).`,
    registers,
  });
  summedGauge(ctx, 'connected', `How many of the ${nodes} are connected to a relay (welcomed by it, ready to send and serve).`, s =>
    s.links.isConnected ? 1 : 0,
  );
  new prom.Gauge({
    name: name('connections'),
    help: `Relay connections of the ${nodes}, by state (one per relay URL in 'all' mode, else one each).`,
    labelNames: ['state'],
    registers,
    collect(this: GaugeLike) {
      const counts = new Map<ConnectionState, number>(STATES.map(s => [s, 0]));
      for (const source of sources) for (const c of source.links.connections) counts.set(c.state, (counts.get(c.state) ?? 0) + 1);
      for (const [state, count] of counts) this.set({ state }, count);
    },
  });
  return { sources, reconnects };
}

/** A gauge read on each scrape: the sum of `read` over the nodes. */
export function summedGauge(ctx: FamilyContext, suffix: string, help: string, read: (source: MetricsSource) => number): void {
  const { sources } = ctx;
  new ctx.prom.Gauge({
    name: ctx.name(suffix),
    help,
    registers: ctx.registers,
    collect(this: GaugeLike) {
      this.set(sources.sum(read));
    },
  });
}

/** Counts each session a connection of `links` establishes after its first one. */
export function watchReconnects(links: RelayLinks, counted: () => void): void {
  for (const connection of links.connections) {
    let sessions = 0;
    connection.events.on('connected', () => {
      if (sessions++ > 0) counted();
    });
  }
}

/** A metric's configuration in the registry (helper for the roles' own metrics). */
export function config(ctx: FamilyContext, suffix: string, help: string, labelNames: string[]): MetricConfig {
  return { name: ctx.name(suffix), help, labelNames, registers: ctx.registers };
}
