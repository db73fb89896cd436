import { describe, expect, it } from '@jest/globals';
import WebSocket from 'ws';
import { DEFAULT_TIMEOUT_MS, resolveOptions } from './options.js';
import type { WebSocketConstructor } from './socket.js';

const base = { url: 'ws://127.0.0.1:1/relay', WebSocket: WebSocket as WebSocketConstructor };

describe('resolveOptions', () => {
  it('applies the defaults, keeping 0 where 0 is given', () => {
    const c = resolveOptions({ ...base, streamWindow: 0, reconnect: { jitter: 0 } });
    expect(c).toMatchObject({
      timeoutMs: DEFAULT_TIMEOUT_MS,
      heartbeatIntervalMs: 10_000,
      streamWindow: 0,
      subscriptions: [],
      reconnect: { initialDelayMs: 100, maxDelayMs: 5000, multiplier: 2, jitter: 0 },
    });
    expect(c.nodeId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it.each([
    [{ url: 'http://x/relay' }, /url must be a ws:\/\/ or wss:\/\/ URL/],
    [{ timeoutMs: 0 }, /timeoutMs must be an integer from 1/],
    [{ heartbeatIntervalMs: 1.5 }, /heartbeatIntervalMs must be an integer/],
    [{ streamWindow: -1 }, /streamWindow must be an integer from 0/],
    [{ reconnect: { initialDelayMs: 500, maxDelayMs: 100 } }, /reconnect.maxDelayMs must not be below reconnect.initialDelayMs/],
    [{ reconnect: { jitter: 2 } }, /reconnect.jitter must be from 0 to 1/],
    [{ subscriptions: ['orders.>.eu'] }, /event pattern "orders.>.eu" has ">" before its last token/],
    [{ nodeId: '' }, /nodeId must be a non-empty string/],
  ])('refuses %j with a TypeError naming the option', (options, message) => {
    expect(() => resolveOptions({ ...base, ...options })).toThrow(TypeError);
    expect(() => resolveOptions({ ...base, ...options })).toThrow(message);
  });

  it('needs a WebSocket where the runtime has none', () => {
    const runtime = globalThis as { WebSocket?: unknown };
    const global = runtime.WebSocket;
    delete runtime.WebSocket;
    try {
      expect(() => resolveOptions({ url: base.url })).toThrow(/WebSocket must be given where there is no global WebSocket/);
    } finally {
      if (global !== undefined) runtime.WebSocket = global;
    }
  });
});
