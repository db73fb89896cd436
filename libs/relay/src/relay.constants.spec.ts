import { resolveRelayOptions } from './relay.constants.js';

describe('resolveRelayOptions', () => {
  it('applies defaults', () => {
    const o = resolveRelayOptions();
    expect(o).toMatchObject({ path: '/relay', maxPayloadBytes: 1048576, heartbeatIntervalMs: 10000, handshakeTimeoutMs: 5000, maxBadFrames: 100 });
    expect(o.relayId).toMatch(/[0-9a-f-]{36}/);
  });

  it.each([
    [{ maxPayloadBytes: 10 }, /maxPayloadBytes/],
    [{ heartbeatIntervalMs: 0 }, /heartbeatIntervalMs/],
    [{ handshakeTimeoutMs: 1.5 }, /handshakeTimeoutMs/],
    [{ maxBadFrames: -1 }, /maxBadFrames/],
    [{ path: 'relay' }, /path must start with/],
  ])('rejects %p naming the option', (options, message) => {
    expect(() => resolveRelayOptions(options)).toThrow(message);
  });
});
