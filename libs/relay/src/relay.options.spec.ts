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
  ])('rejects %p naming the option', (options, message) => {
    expect(() => resolveRelayOptions(options)).toThrow(message);
  });
});
