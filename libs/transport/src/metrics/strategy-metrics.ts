import { RelayErrorCode } from '@wsrelay/protocol';
import type { RelayLinks } from '../connection/relay-links.js';
import type { WsRelayMetricsOptions } from '../interfaces/ws-relay-options.interface.js';
import type { HandlerWork, WorkObserver } from '../server/handler-work.js';
import type { InFlight } from '../server/in-flight.js';
import { config, connectionMetrics, type Family, type FamilyContext, summedGauge } from './metric-families.js';
import { FAILED, NodeMetrics, OK, secondsSince } from './node-metrics.js';
import type { CounterLike, HistogramLike } from './prom-client.js';

interface ServerFamily extends Family {
  requests: CounterLike;
  durations: HistogramLike;
  events: CounterLike;
}

/** The `outcome` label of a request, and of an event. */
const REQUEST = {
  ok: { outcome: 'ok' },
  error: { outcome: 'error' },
  cancelled: { outcome: 'cancelled' },
  timeout: { outcome: 'timeout' },
  disconnected: { outcome: 'disconnected' },
} as const;
const EVENT_OK = { outcome: 'ok' } as const;
const EVENT_FAILED = { outcome: 'error' } as const;

function serverFamily(ctx: FamilyContext): ServerFamily {
  const { prom } = ctx;
  const family = connectionMetrics(ctx, 'strategies');
  summedGauge(ctx, 'requests_in_flight', 'Requests being handled (their handler running, or their answer streaming).', s => s.inFlight);
  return {
    ...family,
    requests: new prom.Counter(
      config(
        ctx,
        'requests_total',
        'Requests handled, by outcome: ok, error (the answer was an error), cancelled (by the caller), timeout or disconnected (the relay connection was lost).',
        ['outcome'],
      ),
    ),
    durations: new prom.Histogram({
      ...config(ctx, 'request_duration_seconds', "Time from a request's arrival to its last answer (or its end), by result: ok or error.", [
        'result',
      ]),
      buckets: ctx.buckets,
    }),
    events: new prom.Counter(
      config(ctx, 'events_total', 'Events handled, by outcome: ok, or error (a handler failed, or the event could not be read).', [
        'outcome',
      ]),
    ),
  };
}

/** A request stopped before its answer: why. */
function stopped(entry: InFlight): { outcome: string } {
  switch (entry.stopCode) {
    case RelayErrorCode.TIMEOUT:
      return REQUEST.timeout;
    case RelayErrorCode.PROVIDER_DISCONNECTED:
      return REQUEST.disconnected;
    default:
      return REQUEST.cancelled;
  }
}

/** A WsRelayStrategy's metrics: its requests and events as they end (heard from its HandlerWork), its connections as they are scraped. */
export class StrategyMetrics extends NodeMetrics<ServerFamily> implements WorkObserver {
  /** When each request in flight started (`performance.now()`). */
  private readonly starts = new Map<InFlight, number>();

  constructor(options: WsRelayMetricsOptions, links: RelayLinks, work: HandlerWork) {
    super(options, links, 'server', serverFamily);
    work.observer = this;
  }

  requestStarted(entry: InFlight): void {
    this.inFlight++;
    this.starts.set(entry, performance.now());
  }

  requestEnded(entry: InFlight, failed: boolean): void {
    this.inFlight--;
    const start = this.starts.get(entry);
    this.starts.delete(entry);
    const family = this.family;
    if (family === undefined || start === undefined) return;
    const outcome = entry.cancelled ? stopped(entry) : failed ? REQUEST.error : REQUEST.ok;
    family.requests.inc(outcome);
    family.durations.observe(outcome === REQUEST.ok ? OK : FAILED, secondsSince(start));
  }

  eventEnded(failed: boolean): void {
    this.family?.events.inc(failed ? EVENT_FAILED : EVENT_OK);
  }
}
