/**
 * ClientMetrics without a relay: each call's end (ok, a RelayError code, a
 * handler's error answer, the caller leaving) is counted and timed once, the
 * gauges are read on each scrape, and clients sharing a registry share the
 * metrics. A real prom-client Registry, real rxjs Observables and real
 * (never connected) relay links.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { RelayError, RelayErrorCode } from '@wsrelay/protocol';
import { Registry } from 'prom-client';
import { firstValueFrom, lastValueFrom, NEVER, of, Subject, throwError } from 'rxjs';
import { resolveConnectionConfig } from '../connection/connection-config.js';
import { RelayLinks } from '../connection/relay-links.js';
import { ClientMetrics } from './client-metrics.js';

const NOTHING = { service: null, patterns: [], events: [], queue: null };

/** A sample's value in `registry` (a histogram's `_count` and `_sum` by their names), or undefined when it has none. */
async function sample(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  for (const metric of await registry.getMetricsAsJSON()) {
    for (const v of metric.values as Array<{ value: number; labels: Record<string, unknown>; metricName?: string }>) {
      if ((v.metricName ?? metric.name) !== name) continue;
      if (Object.entries(labels).every(([k, l]) => v.labels[k] === l) && Object.keys(v.labels).length === Object.keys(labels).length) {
        return v.value;
      }
    }
  }
  return undefined;
}

describe('ClientMetrics', () => {
  const links: RelayLinks[] = [];

  afterEach(async () => {
    await Promise.all(links.splice(0).map(l => l.close()));
  });

  async function metrics(registry: Registry, prefix?: string): Promise<ClientMetrics> {
    // Port 9 (discard) is never dialled: nothing calls ready().
    const config = resolveConnectionConfig({ urls: ['ws://127.0.0.1:9/relay'] }, () => NOTHING);
    const l = new RelayLinks(config, 'failover', { onFrame: () => undefined, onLost: () => undefined }, 'spec');
    links.push(l);
    const m = new ClientMetrics({ registry, prefix }, l);
    await m.loaded;
    return m;
  }

  it('counts and times each call by how it ended', async () => {
    const registry = new Registry();
    const m = await metrics(registry);
    await lastValueFrom(m.call(of(1, 2, 3)));
    await lastValueFrom(m.call(of('x')));
    const offline = new RelayError(RelayErrorCode.MICROSERVICE_OFFLINE, 'no provider');
    await expect(firstValueFrom(m.call(throwError(() => offline)))).rejects.toBe(offline);
    // A handler's error answer arrives as the value the provider sent.
    await expect(firstValueFrom(m.call(throwError(() => ({ status: 'error', message: 'boom' }))))).rejects.toEqual({
      status: 'error',
      message: 'boom',
    });
    await expect(firstValueFrom(m.call(throwError(() => new TypeError('serializer failed'))))).rejects.toThrow('serializer failed');
    m.call(NEVER).subscribe().unsubscribe();
    // Leaving at the first value (firstValueFrom) is not a cancellation: the caller has its answer.
    expect(await firstValueFrom(m.call(of('first', 'second')))).toBe('first');

    expect(await sample(registry, 'wsrelay_client_calls_total', { outcome: 'ok' })).toBe(3);
    expect(await sample(registry, 'wsrelay_client_calls_total', { outcome: 'MICROSERVICE_OFFLINE' })).toBe(1);
    expect(await sample(registry, 'wsrelay_client_calls_total', { outcome: 'handler_error' })).toBe(1);
    expect(await sample(registry, 'wsrelay_client_calls_total', { outcome: 'client_error' })).toBe(1);
    expect(await sample(registry, 'wsrelay_client_calls_total', { outcome: 'cancelled' })).toBe(1);
    expect(await sample(registry, 'wsrelay_client_call_duration_seconds_count', { result: 'ok' })).toBe(3);
    expect(await sample(registry, 'wsrelay_client_call_duration_seconds_count', { result: 'error' })).toBe(4);
    expect(await sample(registry, 'wsrelay_client_calls_in_flight')).toBe(0);
  });

  it('counts a call once, in flight from its subscription to its end', async () => {
    const registry = new Registry();
    const m = await metrics(registry);
    const answers = new Subject<number>();
    const values: number[] = [];
    const sub = m.call(answers).subscribe(v => values.push(v));
    expect(await sample(registry, 'wsrelay_client_calls_in_flight')).toBe(1);
    answers.next(1);
    answers.complete();
    // Leaving after the end is not a cancellation.
    sub.unsubscribe();
    expect(values).toEqual([1]);
    expect(await sample(registry, 'wsrelay_client_calls_in_flight')).toBe(0);
    expect(await sample(registry, 'wsrelay_client_calls_total', { outcome: 'ok' })).toBe(1);
    expect(await sample(registry, 'wsrelay_client_calls_total', { outcome: 'cancelled' })).toBeUndefined();
  });

  it('counts emits by their ACK or their error code', async () => {
    const registry = new Registry();
    const m = await metrics(registry);
    m.event(Promise.resolve({ recipients: 2 }));
    const failed = Promise.reject(new RelayError(RelayErrorCode.HANDLER_FAILED, 'a handler failed'));
    m.event(failed);
    await failed.catch(() => undefined);
    expect(await sample(registry, 'wsrelay_client_events_total', { outcome: 'ok' })).toBe(1);
    expect(await sample(registry, 'wsrelay_client_events_total', { outcome: 'HANDLER_FAILED' })).toBe(1);
  });

  it('reports the connections by state, every state present, and none connected', async () => {
    const registry = new Registry();
    await metrics(registry, 'app_');
    expect(await sample(registry, 'app_client_connected')).toBe(0);
    expect(await sample(registry, 'app_client_connections', { state: 'idle' })).toBe(1);
    expect(await sample(registry, 'app_client_connections', { state: 'connected' })).toBe(0);
    expect(await sample(registry, 'app_client_offline_queue_depth')).toBe(0);
    expect(await sample(registry, 'app_client_reconnects_total')).toBe(0);
  });

  it('shares the metrics of one registry and prefix: counters add up, gauges sum over the clients', async () => {
    const registry = new Registry();
    const [a, b] = [await metrics(registry), await metrics(registry)];
    await lastValueFrom(a.call(of(1)));
    await lastValueFrom(b.call(of(1)));
    b.call(NEVER).subscribe();
    expect(await sample(registry, 'wsrelay_client_calls_total', { outcome: 'ok' })).toBe(2);
    expect(await sample(registry, 'wsrelay_client_calls_in_flight')).toBe(1);
    expect(await sample(registry, 'wsrelay_client_connections', { state: 'idle' })).toBe(2);
    // Another prefix is a family of its own.
    const c = await metrics(registry, 'other_');
    await lastValueFrom(c.call(of(1)));
    expect(await sample(registry, 'other_client_calls_total', { outcome: 'ok' })).toBe(1);
    expect(await sample(registry, 'wsrelay_client_calls_total', { outcome: 'ok' })).toBe(2);
  });

  it('registers its metrics again in a registry that was cleared', async () => {
    const registry = new Registry();
    await metrics(registry);
    registry.clear();
    const m = await metrics(registry);
    await lastValueFrom(m.call(of(1)));
    expect(await sample(registry, 'wsrelay_client_calls_total', { outcome: 'ok' })).toBe(1);
  });

  it('fails to load where a metric of the same name is not its own, saying which', async () => {
    const registry = new Registry();
    const { Counter } = await import('prom-client');
    new Counter({ name: 'wsrelay_client_reconnects_total', help: 'the app’s own', registers: [registry] });
    const config = resolveConnectionConfig({ urls: ['ws://127.0.0.1:9/relay'] }, () => NOTHING);
    const l = new RelayLinks(config, 'failover', { onFrame: () => undefined, onLost: () => undefined }, 'spec');
    links.push(l);
    await expect(new ClientMetrics({ registry }, l).loaded).rejects.toThrow(/wsrelay_client_reconnects_total/);
  });
});
