/**
 * StrategyMetrics as a strategy's HandlerWork tells it of requests and
 * events: each request counted once by how it ended (answered, answered with
 * an error, cancelled by its caller, timed out, cut off by a lost
 * connection), timed, and in flight until then. A real HandlerWork, real
 * (never connected) relay links and a real prom-client Registry.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { ResponseFlag } from '@wsrelay/protocol';
import { Registry } from 'prom-client';
import type WebSocket from 'ws';
import { resolveConnectionConfig } from '../connection/connection-config.js';
import { RelayLinks } from '../connection/relay-links.js';
import { HandlerWork } from '../server/handler-work.js';
import { StrategyMetrics } from './strategy-metrics.js';

const NOTHING = { service: null, patterns: [], events: [], queue: null };
/** Sessions are keys of the work's books; nothing is written to them. */
const SESSION = {} as WebSocket;
const OTHER_SESSION = {} as WebSocket;

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

describe('StrategyMetrics', () => {
  const links: RelayLinks[] = [];

  afterEach(async () => {
    await Promise.all(links.splice(0).map(l => l.close()));
  });

  async function observed(registry: Registry): Promise<HandlerWork> {
    const config = resolveConnectionConfig({ urls: ['ws://127.0.0.1:9/relay'] }, () => NOTHING);
    const l = new RelayLinks(config, 'failover', { onFrame: () => undefined, onLost: () => undefined }, 'spec');
    links.push(l);
    const work = new HandlerWork();
    await new StrategyMetrics({ registry }, l, work).loaded;
    return work;
  }

  it('counts and times each request by how it ended', async () => {
    const registry = new Registry();
    const work = await observed(registry);
    work.start(1, SESSION, 'a', 30_000);
    work.settle(1, SESSION, ResponseFlag.DONE);
    work.start(2, SESSION, 'a', 30_000);
    work.settle(2, SESSION, ResponseFlag.DONE | ResponseFlag.ERROR);
    // CANCEL long before the deadline: the caller left.
    work.start(3, SESSION, 'a', 30_000);
    work.cancel(3, SESSION);
    // CANCEL at the deadline (a call given no time): a timeout.
    work.start(4, SESSION, 'a', 0);
    work.cancel(4, SESSION);
    work.start(5, OTHER_SESSION, 'a', 30_000);
    work.start(6, OTHER_SESSION, 'a', 30_000);
    expect(await sample(registry, 'wsrelay_server_requests_in_flight')).toBe(2);
    work.cancelAll(OTHER_SESSION);

    expect(await sample(registry, 'wsrelay_server_requests_total', { outcome: 'ok' })).toBe(1);
    expect(await sample(registry, 'wsrelay_server_requests_total', { outcome: 'error' })).toBe(1);
    expect(await sample(registry, 'wsrelay_server_requests_total', { outcome: 'cancelled' })).toBe(1);
    expect(await sample(registry, 'wsrelay_server_requests_total', { outcome: 'timeout' })).toBe(1);
    expect(await sample(registry, 'wsrelay_server_requests_total', { outcome: 'disconnected' })).toBe(2);
    expect(await sample(registry, 'wsrelay_server_request_duration_seconds_count', { result: 'ok' })).toBe(1);
    expect(await sample(registry, 'wsrelay_server_request_duration_seconds_count', { result: 'error' })).toBe(5);
    expect(await sample(registry, 'wsrelay_server_requests_in_flight')).toBe(0);
  });

  it('counts a request once: its answer after a CANCEL is not another end', async () => {
    const registry = new Registry();
    const work = await observed(registry);
    work.start(1, SESSION, 'a', 30_000);
    work.cancel(1, SESSION);
    work.settle(1, SESSION, ResponseFlag.DONE);
    expect(await sample(registry, 'wsrelay_server_request_duration_seconds_count', { result: 'error' })).toBe(1);
    expect(await sample(registry, 'wsrelay_server_requests_total', { outcome: 'ok' })).toBeUndefined();
  });

  it('counts events by whether their handlers failed', async () => {
    const registry = new Registry();
    const work = await observed(registry);
    for (const failed of [false, false, true]) {
      work.eventStarted();
      work.eventDone(failed);
    }
    expect(await sample(registry, 'wsrelay_server_events_total', { outcome: 'ok' })).toBe(2);
    expect(await sample(registry, 'wsrelay_server_events_total', { outcome: 'error' })).toBe(1);
    expect(work.idle).toBe(true);
  });

  it('reports its connection, not connected, under the server names', async () => {
    const registry = new Registry();
    await observed(registry);
    expect(await sample(registry, 'wsrelay_server_connected')).toBe(0);
    expect(await sample(registry, 'wsrelay_server_connections', { state: 'idle' })).toBe(1);
    expect(await sample(registry, 'wsrelay_server_reconnects_total')).toBe(0);
  });
});
