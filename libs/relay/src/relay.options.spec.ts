import { resolveRelayOptions } from './relay.options.js';

describe('resolveRelayOptions', () => {
  it('applies defaults', () => {
    const o = resolveRelayOptions();
    expect(o).toMatchObject({
      path: '/relay',
      maxPayloadBytes: 1048576,
      heartbeatIntervalMs: 10000,
      handshakeTimeoutMs: 5000,
      maxBadFrames: 100,
    });
    expect(o.relayId).toMatch(/[0-9a-f-]{36}/);
    expect(o.cluster).toEqual({ heartbeatIntervalMs: 1000, timeoutMs: 3000 });
    // The timeout follows a longer heartbeat: three beats.
    expect(resolveRelayOptions({ cluster: { redis: 'redis://r', heartbeatIntervalMs: 2000 } }).cluster).toMatchObject({ timeoutMs: 6000 });
  });

  it('takes rateLimit false as no limit, and a perSecond alone as its own burst', () => {
    expect(resolveRelayOptions().rateLimit).toEqual({ perSecond: 100_000, burst: 100_000 });
    expect(resolveRelayOptions({ rateLimit: false }).rateLimit).toBe(false);
    expect(resolveRelayOptions({ rateLimit: { perSecond: 50 } }).rateLimit).toEqual({ perSecond: 50, burst: 50 });
  });

  it('applies the relay-wide budgets and the WAIT cap, each default alone', () => {
    expect(resolveRelayOptions()).toMatchObject({
      maxWaitTimeoutMs: 300_000,
      budgets: { waitBytes: 32 << 20, heldBytes: 64 << 20, retainedBytes: 64 << 20, unsentBytes: 128 << 20, routeCacheBytes: 32 << 20 },
    });
    const o = resolveRelayOptions({ maxWaitTimeoutMs: 1000, budgets: { unsentBytes: 0 } });
    expect(o.maxWaitTimeoutMs).toBe(1000);
    expect(o.budgets).toMatchObject({ unsentBytes: 0, waitBytes: 32 << 20 });
  });

  it.each([
    [{ maxPayloadBytes: 10 }, /maxPayloadBytes/],
    [{ heartbeatIntervalMs: 0 }, /heartbeatIntervalMs/],
    [{ handshakeTimeoutMs: 1.5 }, /handshakeTimeoutMs/],
    [{ maxBadFrames: -1 }, /maxBadFrames/],
    [{ path: 'relay' }, /path must start with/],
    [{ cluster: { redis: 'localhost:6379' } }, /cluster.redis must be a redis:\/\//],
    [{ cluster: { redis: 'redis://r', backplane: {} as never } }, /cluster.redis and cluster.backplane/],
    [{ cluster: { heartbeatIntervalMs: 1000, timeoutMs: 500 } }, /cluster.timeoutMs \(500\) must be longer/],
    [{ cluster: { heartbeatIntervalMs: 5 } }, /cluster.heartbeatIntervalMs/],
    [{ maxWaitTimeoutMs: 0 }, /maxWaitTimeoutMs/],
    [{ budgets: 5 as never }, /budgets must be an object/],
    [{ budgets: { unsentBytes: -1 } }, /budgets.unsentBytes/],
    [{ budgets: { waitBytes: 1.5, routeCacheBytes: 'x' as never } }, /budgets.waitBytes.*budgets.routeCacheBytes/],
  ])('rejects %p naming the option', (options, message) => {
    expect(() => resolveRelayOptions(options)).toThrow(message);
  });
});
