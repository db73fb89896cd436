/**
 * The `metrics` option is checked with the others at construction: a bad one
 * throws a TypeError naming each bad field, before prom-client is loaded.
 */
import { describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import { WsRelayClient } from '../client/ws-relay.client.js';
import { DEFAULT_METRICS_BUCKETS } from '../constants.js';
import type { WsRelayMetricsOptions } from '../interfaces/ws-relay-options.interface.js';
import { WsRelayStrategy } from '../server/ws-relay.strategy.js';
import { metricsProblems, resolveMetricsOptions } from './metrics-options.js';

const urls = ['ws://127.0.0.1:9/relay'];

describe('the metrics option', () => {
  it('takes a prom-client Registry, with defaults for the prefix and the buckets', () => {
    const registry = new Registry();
    expect(metricsProblems({ registry })).toEqual([]);
    expect(resolveMetricsOptions({ registry })).toEqual({ registry, prefix: 'wsrelay_', buckets: [...DEFAULT_METRICS_BUCKETS] });
    expect(metricsProblems({ registry, prefix: '', buckets: [0.5, 1] })).toEqual([]);
    expect(resolveMetricsOptions({ registry, prefix: '' }).prefix).toBe('');
  });

  it.each([
    [{ registry: {} }, /metrics\.registry must be a prom-client Registry/],
    [{ registry: new Registry(), prefix: '1abc' }, /metrics\.prefix must be a Prometheus metric name prefix/],
    [{ registry: new Registry(), prefix: 'a-b' }, /metrics\.prefix/],
    [{ registry: new Registry(), buckets: [] }, /metrics\.buckets must be 1 to 64 increasing positive finite numbers/],
    [{ registry: new Registry(), buckets: [1, 0.5] }, /metrics\.buckets/],
    [{ registry: new Registry(), buckets: [0, 1] }, /metrics\.buckets/],
    [{ registry: new Registry(), buckets: [1, Infinity] }, /metrics\.buckets/],
  ])('refuses %p at construction, naming the field', (metrics, message) => {
    const bad = metrics as unknown as WsRelayMetricsOptions;
    expect(() => new WsRelayClient({ urls, metrics: bad })).toThrow(message);
    expect(() => new WsRelayStrategy({ urls, metrics: bad })).toThrow(TypeError);
  });

  it('names every bad field at once', () => {
    const bad = { registry: null, prefix: 7, buckets: 'x' } as unknown as WsRelayMetricsOptions;
    expect(() => new WsRelayClient({ urls, metrics: bad })).toThrow(
      /WsRelayClient: invalid options: metrics\.registry .*; metrics\.prefix .*; metrics\.buckets/,
    );
    expect(() => new WsRelayClient({ urls, metrics: 'yes' as unknown as WsRelayMetricsOptions })).toThrow(
      /metrics must be an object with a prom-client "registry"/,
    );
  });
});
