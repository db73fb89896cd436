import { relayConfigFromEnv } from './relay-env.config.js';

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

  it('reads shutdown, backpressure and event-ack settings', () => {
    const c = relayConfigFromEnv({
      RELAY_DRAIN_TIMEOUT_MS: '0',
      RELAY_MAX_BUFFERED_BYTES: '65536',
      RELAY_EVENT_ACK_TIMEOUT_MS: '250',
      RELAY_MAX_EVENT_ATTEMPTS: '5',
      RELAY_STARTUP_GRACE_MS: '0',
    });
    expect(c.relay).toMatchObject({
      drainTimeoutMs: 0,
      maxBufferedBytes: 65536,
      eventAckTimeoutMs: 250,
      maxEventAttempts: 5,
      startupGraceMs: 0,
    });
    expect(() => relayConfigFromEnv({ RELAY_STARTUP_GRACE_MS: '-1' })).toThrow(/RELAY_STARTUP_GRACE_MS/);
    expect(relayConfigFromEnv({ RELAY_DRAIN_TIMEOUT_MS: '' }).relay).not.toHaveProperty('drainTimeoutMs');
    expect(() => relayConfigFromEnv({ RELAY_MAX_BUFFERED_BYTES: '100' })).toThrow(
      /RELAY_MAX_BUFFERED_BYTES must be an integer of at least 1024/,
    );
    expect(() => relayConfigFromEnv({ RELAY_MAX_EVENT_ATTEMPTS: '0' })).toThrow(/RELAY_MAX_EVENT_ATTEMPTS/);
  });

  it('names a bad variable', () => {
    expect(() => relayConfigFromEnv({ RELAY_PORT: 'eighty' })).toThrow(/RELAY_PORT must be an integer/);
    expect(() => relayConfigFromEnv({ RELAY_MAX_PAYLOAD_BYTES: '1.5' })).toThrow(/RELAY_MAX_PAYLOAD_BYTES/);
  });
});

describe('relayConfigFromEnv security settings', () => {
  const files: Record<string, string> = { '/k.pem': 'KEY', '/c.pem': 'CERT', '/pub.pem': 'PUB' };
  const read = (path: string) => {
    if (!(path in files)) throw new Error('ENOENT');
    return Buffer.from(files[path]);
  };

  it('reads auth, limits, origins and TLS', () => {
    const c = relayConfigFromEnv(
      {
        RELAY_JWT_PUBLIC_KEY_FILE: '/pub.pem',
        RELAY_JWT_ISSUER: 'iss',
        RELAY_JWT_AUDIENCE: 'aud',
        RELAY_ALLOWED_ORIGINS: 'https://a.example, https://b.example',
        RELAY_MAX_CONNECTIONS: '10',
        RELAY_RATE_LIMIT: '500',
        RELAY_MAX_IN_FLIGHT: '20',
        RELAY_TLS_KEY_FILE: '/k.pem',
        RELAY_TLS_CERT_FILE: '/c.pem',
      },
      read,
    );
    expect(c.relay.auth).toEqual({ publicKey: 'PUB', issuer: 'iss', audience: 'aud', secret: undefined, jwks: undefined });
    expect(c.relay.allowedOrigins).toEqual(['https://a.example', 'https://b.example']);
    expect(c.relay).toMatchObject({ maxConnections: 10, rateLimit: { perSecond: 500 }, maxInFlightPerConnection: 20 });
    expect(c.tls?.key.toString()).toBe('KEY');
  });

  it('names the variable whose file cannot be read', () => {
    expect(() => relayConfigFromEnv({ RELAY_TLS_KEY_FILE: '/missing', RELAY_TLS_CERT_FILE: '/c.pem' }, read)).toThrow(/RELAY_TLS_KEY_FILE/);
    expect(() => relayConfigFromEnv({ RELAY_TLS_KEY_FILE: '/k.pem' }, read)).toThrow(/go together/);
  });

  it('leaves auth off without a key', () => {
    expect(relayConfigFromEnv({}, read).relay.auth).toBeUndefined();
  });
});

describe('relayConfigFromEnv cluster settings', () => {
  it('joins a cluster over RELAY_REDIS_URL with its heartbeat settings', () => {
    const c = relayConfigFromEnv({
      RELAY_REDIS_URL: 'redis://10.0.0.5:6380',
      RELAY_CLUSTER_PREFIX: 'prod',
      RELAY_CLUSTER_HEARTBEAT_INTERVAL_MS: '250',
      RELAY_CLUSTER_TIMEOUT_MS: '1000',
    });
    expect(c.relay.cluster).toEqual({ redis: 'redis://10.0.0.5:6380', channelPrefix: 'prod', heartbeatIntervalMs: 250, timeoutMs: 1000 });
    expect(relayConfigFromEnv({}).relay.cluster).toBeUndefined();
  });

  it('refuses cluster settings without a Redis to share', () => {
    expect(() => relayConfigFromEnv({ RELAY_CLUSTER_TIMEOUT_MS: '1000' })).toThrow(/RELAY_REDIS_URL/);
    expect(() => relayConfigFromEnv({ RELAY_REDIS_URL: 'redis://x', RELAY_CLUSTER_TIMEOUT_MS: 'soon' })).toThrow(
      /RELAY_CLUSTER_TIMEOUT_MS/,
    );
  });
});
