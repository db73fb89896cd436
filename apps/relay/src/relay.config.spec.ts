import { relayConfigFromEnv } from './relay.config.js';

describe('relayConfigFromEnv', () => {
  it('defaults to 127.0.0.1:8787', () => {
    expect(relayConfigFromEnv({})).toEqual({
      port: 8787,
      host: '127.0.0.1',
      relay: {
        path: undefined,
        maxPayloadBytes: undefined,
        heartbeatIntervalMs: undefined,
        handshakeTimeoutMs: undefined,
        maxBadFrames: undefined,
        relayId: undefined,
      },
    });
  });

  it('reads every variable', () => {
    const c = relayConfigFromEnv({
      RELAY_PORT: '0',
      RELAY_HOST: '0.0.0.0',
      RELAY_PATH: '/ws',
      RELAY_MAX_PAYLOAD_BYTES: '2048',
      RELAY_HEARTBEAT_INTERVAL_MS: '500',
      RELAY_HANDSHAKE_TIMEOUT_MS: '100',
      RELAY_MAX_BAD_FRAMES: '3',
      RELAY_ID: 'r1',
    });
    expect(c).toEqual({
      port: 0,
      host: '0.0.0.0',
      relay: { path: '/ws', maxPayloadBytes: 2048, heartbeatIntervalMs: 500, handshakeTimeoutMs: 100, maxBadFrames: 3, relayId: 'r1' },
    });
  });

  it('names a bad variable', () => {
    expect(() => relayConfigFromEnv({ RELAY_PORT: 'eighty' })).toThrow(/RELAY_PORT must be an integer/);
    expect(() => relayConfigFromEnv({ RELAY_MAX_PAYLOAD_BYTES: '1.5' })).toThrow(/RELAY_MAX_PAYLOAD_BYTES/);
  });
});
