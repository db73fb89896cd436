import { FRAME_NAMES, FrameType } from '@wsrelay/protocol';
import { Counter, Gauge, type Metric, Registry } from 'prom-client';
import type { RelayStatus } from '../core/relay-status.js';
import { EVENT_DROPS, REFUSAL_REASONS, REQUEST_OUTCOMES } from '../observe/relay-observer.js';
import { CONNECTION_ROLES, REFUSAL_STAGES, type RelayTally } from '../observe/relay-tally.js';
import { BucketsHistogram } from './buckets-histogram.js';
import { processMetrics } from './process-metrics.js';

/** What every metric of the relay's own is named with. */
export const RELAY_METRICS_PREFIX = 'wsrelay_relay_';

/** What the metrics read of the relay itself when scraped. */
export interface MetricsCore {
  readonly accepting: boolean;
  status(): RelayStatus;
}

type Samples = Array<[Record<string, string>, number]>;

const FRAME_TYPES = Object.entries(FRAME_NAMES).map(([type, name]) => [Number(type), name] as const);

/** A value read once per scrape, however many metrics use it (prom-client collects them all in one synchronous pass). */
class PerScrape<T> {
  private value: T | undefined;

  constructor(private readonly read: () => T) {}

  get(): T {
    if (this.value === undefined) {
      this.value = this.read();
      queueMicrotask(() => (this.value = undefined));
    }
    return this.value;
  }
}

/**
 * The relay's Prometheus metrics, in a registry of its own (never
 * prom-client's global one), all read at scrape time: the relay counts in
 * plain numbers as it works (RelayTally) and these metrics' collect
 * callbacks read them. Labels take a few fixed values each (frame type,
 * outcome, reason, role): never a pattern, a node id or a tenant.
 * `createRelayApp` serves `registry` at `GET /metrics`; an app of its own
 * can merge it into its registry (`Registry.merge`).
 */
export class RelayMetrics {
  readonly registry = new Registry();
  private readonly state: PerScrape<RelayStatus>;

  constructor(
    private readonly tally: RelayTally,
    private readonly core: MetricsCore,
  ) {
    this.state = new PerScrape(() => core.status());
    this.traffic();
    this.requests();
    this.events();
    this.connections();
    this.cluster();
  }

  /**
   * Adds Node's default process metrics (CPU, memory, event loop, GC,
   * handles) to the registry, unprefixed as every Node exporter names them:
   * what the relay app serves. Leave them out when the registry is merged
   * into one that has them already.
   */
  withProcessMetrics(): this {
    for (const [name, metric] of processMetrics())
      if (this.registry.getSingleMetric(name) === undefined) this.registry.registerMetric(metric);
    return this;
  }

  private traffic(): void {
    const t = this.tally;
    this.counter('frames_received_total', 'Frames taken in from connections, decoded, by frame type', ['type'], () =>
      FRAME_TYPES.map(([type, name]) => [{ type: name }, t.framesIn[type]]),
    );
    this.counter('frames_sent_total', 'Frames written to connections, by frame type', ['type'], () =>
      FRAME_TYPES.map(([type, name]) => [{ type: name }, t.framesOut[type]]),
    );
    this.counter('refusals_total', 'Connections refused at the upgrade and frames refused, by stage and reason', ['stage', 'reason'], () =>
      REFUSAL_STAGES.flatMap((stage, s) => REFUSAL_REASONS.map((reason, r): Samples[number] => [{ stage, reason }, t.refusals(s, r)])),
    );
    this.counter('slow_consumer_closes_total', 'Connections closed as slow consumers (4507)', [], () => t.slowConsumerCloses);
    this.gauge(
      'unsent_bytes',
      'Bytes written to connections and not yet sent, all connections together',
      [],
      () => this.state.get().budgets.unsentBytes.used,
    );
  }

  private requests(): void {
    const t = this.tally;
    this.counter(
      'requests_routed_total',
      "Requests of this relay's nodes routed to a provider (here or on another relay)",
      [],
      () => t.routed,
    );
    this.counter('requests_total', "Requests of this relay's nodes that ended, by outcome", ['outcome'], () =>
      REQUEST_OUTCOMES.map((outcome, i) => [{ outcome }, t.requests[i]]),
    );
    const duration = new BucketsHistogram(
      `${RELAY_METRICS_PREFIX}request_duration_seconds`,
      "How long routed requests of this relay's nodes took at the relay, from routing to their end",
      t.durations,
    );
    // prom-client's Registry reads a metric through get(): this one has that shape (see BucketsHistogram).
    this.registry.registerMetric(duration as unknown as Metric);
    this.gauge(
      'in_flight',
      'Requests, handler-acked event copies, WAITs and held calls in flight through this relay',
      [],
      () => this.state.get().inFlight,
    );
  }

  private events(): void {
    const t = this.tally;
    this.counter('events_published_total', "Events published by this relay's nodes", [], () => t.published);
    this.counter('events_delivered_total', "Event copies written to this relay's nodes", [], () => t.framesOut[FrameType.Event]);
    this.counter(
      'events_dropped_total',
      'Events that reached no subscriber, and copies that could not be delivered, by reason',
      ['reason'],
      () => EVENT_DROPS.map((reason, i) => [{ reason }, t.dropped[i]]),
    );
    this.counter(
      'event_redeliveries_total',
      'Handler-acked event copies given to another member of their queue group',
      [],
      () => t.redelivered,
    );
  }

  private connections(): void {
    const t = this.tally;
    this.gauge('connections', 'Open WebSocket connections, by role', ['role'], () =>
      CONNECTION_ROLES.map((role, i) => [{ role }, t.open[i]]),
    );
    this.counter('connections_opened_total', 'WebSocket connections accepted, by role', ['role'], () =>
      CONNECTION_ROLES.map((role, i) => [{ role }, t.opened[i]]),
    );
    this.gauge('nodes', 'Connections of this relay that said HELLO', [], () => this.state.get().nodes);
    this.gauge('draining', '1 while the relay drains for shutdown', [], () => (this.core.accepting ? 0 : 1));
    this.gauge('ready', '1 while the relay should get traffic (what GET /readyz answers)', [], () =>
      this.state.get().readiness.ready ? 1 : 0,
    );
  }

  private cluster(): void {
    const t = this.tally;
    this.gauge('cluster_members', 'Other relays of the cluster this relay knows', [], () => this.state.get().cluster.relays.length);
    this.gauge('cluster_backplane_up', '1 while the backplane carries what this relay publishes (its own heartbeat comes back)', [], () =>
      this.state.get().cluster.healthy ? 1 : 0,
    );
    this.gauge('cluster_synced', '1 once this relay has the nodes of the other relays', [], () =>
      this.state.get().cluster.synced ? 1 : 0,
    );
    this.counter('cluster_members_joined_total', 'Relays that joined the cluster, as this relay saw them', [], () => t.membersJoined);
    this.counter(
      'cluster_members_lost_total',
      'Relays that left the cluster or were lost, as this relay saw them',
      [],
      () => t.membersLost,
    );
    this.counter(
      'cluster_backplane_losses_total',
      'Times the backplane stopped carrying what this relay publishes',
      [],
      () => t.backplaneLosses,
    );
  }

  /** A counter read from the relay's numbers at each scrape. */
  private counter(name: string, help: string, labelNames: string[], read: () => number | Samples): void {
    new Counter({
      name: RELAY_METRICS_PREFIX + name,
      help,
      labelNames,
      registers: [this.registry],
      collect(this: Counter) {
        this.reset();
        const value = read();
        if (typeof value === 'number') this.inc(value);
        else for (const [labels, n] of value) this.inc(labels, n);
      },
    });
  }

  /** A gauge read from the relay at each scrape. */
  private gauge(name: string, help: string, labelNames: string[], read: () => number | Samples): void {
    new Gauge({
      name: RELAY_METRICS_PREFIX + name,
      help,
      labelNames,
      registers: [this.registry],
      collect(this: Gauge) {
        const value = read();
        if (typeof value === 'number') this.set(value);
        else for (const [labels, n] of value) this.set(labels, n);
      },
    });
  }
}
