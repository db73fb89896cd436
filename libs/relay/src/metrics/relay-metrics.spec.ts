import { describe, expect, it } from '@jest/globals';
import { FrameCodec, FrameType, RelayErrorCode } from '@wsrelay/protocol';
import { Counter, Registry } from 'prom-client';
import type { RelayStatus } from '../core/relay-status.js';
import { EventDrop, RefusalReason, RequestOutcome } from '../observe/relay-observer.js';
import { RelayTally } from '../observe/relay-tally.js';
import { RelayMetrics } from './relay-metrics.js';

const budget = { used: 0, limit: 1, refused: 0 };

/** The relay's side the metrics read: its status (counted, to see it is read once per scrape) and whether it accepts. */
function fakeCore(over: Partial<RelayStatus> = {}) {
  const core = {
    accepting: true,
    reads: 0,
    status(): RelayStatus {
      core.reads++;
      return {
        relayId: 'r',
        connections: 3,
        nodes: 2,
        inFlight: 5,
        memory: { rssBytes: 1, heapUsedBytes: 1 },
        cluster: { instanceId: 'i', backplane: 'in-memory', healthy: true, synced: true, transfers: {} as never, relays: [] },
        budgets: {
          waitBytes: budget,
          heldBytes: budget,
          retainedBytes: budget,
          unsentBytes: { ...budget, used: 4096 },
          routeCacheBytes: budget,
        },
        readiness: { ready: true },
        ...over,
      };
    },
  };
  return core;
}

/** The value of one sample line (`name{labels} value`) of a scrape. */
function sample(text: string, line: string): number | undefined {
  const found = text.split('\n').find(l => l.startsWith(`${line} `));
  return found === undefined ? undefined : Number(found.slice(line.length + 1));
}

describe('RelayMetrics', () => {
  it("reads the relay's counts at scrape time, with fixed label values", async () => {
    const tally = new RelayTally();
    const metrics = new RelayMetrics(tally, fakeCore());
    tally.frameIn(FrameType.Request);
    tally.frameOut(
      new FrameCodec({ webSocketHeader: true }).encode({
        type: FrameType.Event,
        id: 0,
        pattern: 'e',
        payload: new Uint8Array(),
        peer: null,
        ext: null,
        claims: null,
      }),
    );
    tally.frameRefused(RefusalReason.BadFrame, RelayErrorCode.BAD_FRAME, 'bad', { sessionId: 's' });
    tally.requestFailed(RequestOutcome.Timeout);
    tally.eventDropped(EventDrop.Unreachable, 2);
    tally.connectionAccepted({ role: 'client', session: 's', subject: null, address: undefined });
    const text = await metrics.registry.metrics();
    expect(sample(text, 'wsrelay_relay_frames_received_total{type="request"}')).toBe(1);
    expect(sample(text, 'wsrelay_relay_frames_received_total{type="hello"}')).toBe(0);
    expect(sample(text, 'wsrelay_relay_events_delivered_total')).toBe(1);
    expect(sample(text, 'wsrelay_relay_refusals_total{stage="frame",reason="bad_frame"}')).toBe(1);
    expect(sample(text, 'wsrelay_relay_refusals_total{stage="upgrade",reason="bad_frame"}')).toBe(0);
    expect(sample(text, 'wsrelay_relay_requests_total{outcome="timeout"}')).toBe(1);
    expect(sample(text, 'wsrelay_relay_events_dropped_total{reason="unreachable"}')).toBe(2);
    expect(sample(text, 'wsrelay_relay_connections{role="client"}')).toBe(1);
    expect(sample(text, 'wsrelay_relay_connections{role="server"}')).toBe(0);
    expect(sample(text, 'wsrelay_relay_unsent_bytes')).toBe(4096);
    expect(sample(text, 'wsrelay_relay_nodes')).toBe(2);
    expect(sample(text, 'wsrelay_relay_ready')).toBe(1);
    expect(sample(text, 'wsrelay_relay_draining')).toBe(0);
    expect(text).toContain('# TYPE wsrelay_relay_requests_total counter');
    expect(text).toContain('# TYPE wsrelay_relay_in_flight gauge');
  });

  it('counters stay counters across scrapes (each scrape reads the totals again)', async () => {
    const tally = new RelayTally();
    const metrics = new RelayMetrics(tally, fakeCore());
    tally.eventPublished();
    expect(sample(await metrics.registry.metrics(), 'wsrelay_relay_events_published_total')).toBe(1);
    tally.eventPublished();
    expect(sample(await metrics.registry.metrics(), 'wsrelay_relay_events_published_total')).toBe(2);
  });

  it('reads the status once per scrape, however many metrics use it', async () => {
    const core = fakeCore();
    const metrics = new RelayMetrics(new RelayTally(), core);
    await metrics.registry.metrics();
    expect(core.reads).toBe(1);
    await metrics.registry.metrics();
    expect(core.reads).toBe(2);
  });

  it('prints the request duration histogram: cumulative buckets in seconds, +Inf, sum and count', async () => {
    const tally = new RelayTally();
    const metrics = new RelayMetrics(tally, fakeCore());
    tally.requestSettled(RequestOutcome.Ok, performance.now());
    tally.requestSettled(RequestOutcome.Ok, performance.now() - 20_000);
    const text = await metrics.registry.metrics();
    expect(text).toContain('# TYPE wsrelay_relay_request_duration_seconds histogram');
    expect(sample(text, 'wsrelay_relay_request_duration_seconds_bucket{le="0.0005"}')).toBe(1);
    expect(sample(text, 'wsrelay_relay_request_duration_seconds_bucket{le="10"}')).toBe(1);
    expect(sample(text, 'wsrelay_relay_request_duration_seconds_bucket{le="30"}')).toBe(2);
    expect(sample(text, 'wsrelay_relay_request_duration_seconds_bucket{le="+Inf"}')).toBe(2);
    expect(sample(text, 'wsrelay_relay_request_duration_seconds_count')).toBe(2);
    expect(sample(text, 'wsrelay_relay_request_duration_seconds_sum')).toBeGreaterThanOrEqual(20);
  });

  it("draining and not ready read the relay's state", async () => {
    const core = { ...fakeCore({ readiness: { ready: false, reason: 'draining' } }), accepting: false };
    const text = await new RelayMetrics(new RelayTally(), core).registry.metrics();
    expect(sample(text, 'wsrelay_relay_draining')).toBe(1);
    expect(sample(text, 'wsrelay_relay_ready')).toBe(0);
  });

  it("adds Node's process metrics once per process; several relays' registries hold them, and merge with an app's own", async () => {
    const a = new RelayMetrics(new RelayTally(), fakeCore()).withProcessMetrics();
    const b = new RelayMetrics(new RelayTally(), fakeCore()).withProcessMetrics().withProcessMetrics();
    for (const metrics of [a, b]) {
      const text = await metrics.registry.metrics();
      expect(text).toMatch(/^process_cpu_user_seconds_total \d/m);
      expect(text).toMatch(/^nodejs_heap_size_total_bytes \d/m);
    }
    const app = new Registry();
    new Counter({ name: 'app_things_total', help: 'the app', registers: [app] });
    const merged = Registry.merge([app, new RelayMetrics(new RelayTally(), fakeCore()).registry]);
    const text = await merged.metrics();
    expect(text).toContain('app_things_total 0');
    expect(text).toContain('wsrelay_relay_requests_routed_total 0');
    // Nothing in prom-client's global registry.
    const { register } = await import('prom-client');
    expect(register.getMetricsAsArray().filter(m => m.name.startsWith('wsrelay_') || m.name.startsWith('process_'))).toEqual([]);
  });
});
