import { Observable } from 'rxjs';
import type { RelayLinks } from '../connection/relay-links.js';
import type { WsRelayMetricsOptions } from '../interfaces/ws-relay-options.interface.js';
import { config, connectionMetrics, type Family, type FamilyContext, summedGauge } from './metric-families.js';
import { FAILED, NodeMetrics, OK, secondsSince } from './node-metrics.js';
import { outcomeOf } from './outcome.js';
import type { CounterLike, HistogramLike, Labels } from './prom-client.js';

interface ClientFamily extends Family {
  calls: CounterLike;
  durations: HistogramLike;
  events: CounterLike;
}

/** The `outcome` label objects, made once each (the label values are few). */
const outcomes = new Map<string, Labels>();
function outcome(value: string): Labels {
  let labels = outcomes.get(value);
  if (labels === undefined) outcomes.set(value, (labels = { outcome: value }));
  return labels;
}

function clientFamily(ctx: FamilyContext): ClientFamily {
  const { prom } = ctx;
  const family = connectionMetrics(ctx, 'clients');
  summedGauge(ctx, 'calls_in_flight', 'Calls (send()) sent and not yet ended.', s => s.inFlight);
  summedGauge(ctx, 'offline_queue_depth', 'Calls and connect() waiting for a relay connection (the offline queue).', s =>
    s.links.connections.reduce((n, c) => n + c.offline.size, 0),
  );
  return {
    ...family,
    calls: new prom.Counter(
      config(
        ctx,
        'calls_total',
        'Calls (send()) ended, by outcome: ok, a RelayError code, handler_error, client_error, or cancelled (left before any answer).',
        ['outcome'],
      ),
    ),
    durations: new prom.Histogram({
      ...config(ctx, 'call_duration_seconds', 'Time from a call (send()) to its end (its last value), by result: ok or error.', ['result']),
      buckets: ctx.buckets,
    }),
    events: new prom.Counter(
      config(ctx, 'events_total', 'Events (emit()) acknowledged or failed, by outcome: ok, a RelayError code or client_error.', [
        'outcome',
      ]),
    ),
  };
}

/** A WsRelayClient's metrics: its calls and events as they end, its connections as they are scraped. */
export class ClientMetrics extends NodeMetrics<ClientFamily> {
  constructor(options: WsRelayMetricsOptions, links: RelayLinks) {
    super(options, links, 'client', clientFamily);
  }

  /**
   * A call (send()'s cold Observable) seen on the way to each subscriber:
   * timed from the subscription to its end: its completion, its error, or
   * the subscriber leaving (`ok` once a value came, as `firstValueFrom()`
   * leaves at the first; `cancelled` before any).
   */
  call<T>(call: Observable<T>): Observable<T> {
    return new Observable<T>(subscriber => {
      const start = performance.now();
      this.inFlight++;
      let ended = false;
      let answered = false;
      const end = (result: string) => {
        if (ended) return;
        ended = true;
        this.inFlight--;
        const family = this.family;
        if (family === undefined) return;
        family.calls.inc(outcome(result));
        family.durations.observe(result === 'ok' ? OK : FAILED, secondsSince(start));
      };
      const inner = call.subscribe({
        next: value => {
          answered = true;
          subscriber.next(value);
        },
        error: (err: unknown) => {
          end(outcomeOf(err));
          subscriber.error(err);
        },
        complete: () => {
          end('ok');
          subscriber.complete();
        },
      });
      return () => {
        end(answered ? 'ok' : 'cancelled');
        inner.unsubscribe();
      };
    });
  }

  /** An emit(): counted as its ACK comes, or as it fails. */
  event(dispatched: Promise<unknown>): void {
    dispatched.then(
      () => this.family?.events.inc(outcome('ok')),
      (err: unknown) => this.family?.events.inc(outcome(outcomeOf(err))),
    );
  }
}
