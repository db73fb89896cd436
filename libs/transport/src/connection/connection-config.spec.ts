import { resolveConnectionConfig } from './connection-config.js';

const none = () => ({ service: null, patterns: [], events: [], queue: null });

describe('resolveConnectionConfig', () => {
  it("gives every option the README's default", () => {
    const c = resolveConnectionConfig({ urls: ['ws://relay/relay'] }, none);
    expect(c).toMatchObject({
      heartbeatIntervalMs: 10_000,
      connectTimeoutMs: 10_000,
      handshakeTimeoutMs: 5_000,
      maxOfflineQueue: 1000,
      tokenCarrier: 'header',
      reconnect: { initialDelayMs: 100, maxDelayMs: 5000, multiplier: 2, jitter: 0.5 },
    });
    expect(c.nodeId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('keeps what is given, and a copy of the URLs', () => {
    const urls = ['ws://a/relay'];
    const c = resolveConnectionConfig({ urls, heartbeatIntervalMs: 250, nodeId: 'n', reconnect: { jitter: 0 } }, none);
    urls.push('ws://b/relay');
    expect(c).toMatchObject({
      urls: ['ws://a/relay'],
      heartbeatIntervalMs: 250,
      nodeId: 'n',
      reconnect: { jitter: 0, initialDelayMs: 100 },
    });
  });
});
