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

  it('reads the WAIT cap and the relay-wide budgets, leaving unset ones to their defaults', () => {
    const c = relayConfigFromEnv({
      RELAY_MAX_WAIT_TIMEOUT_MS: '60000',
      RELAY_BUDGET_WAIT_BYTES: '1000',
      RELAY_BUDGET_HELD_BYTES: '2000',
      RELAY_BUDGET_RETAINED_BYTES: '3000',
      RELAY_BUDGET_UNSENT_BYTES: '0',
      RELAY_BUDGET_ROUTE_CACHE_BYTES: '5000',
    });
    expect(c.relay.maxWaitTimeoutMs).toBe(60_000);
    expect(c.relay.budgets).toEqual({ waitBytes: 1000, heldBytes: 2000, retainedBytes: 3000, unsentBytes: 0, routeCacheBytes: 5000 });
    expect(relayConfigFromEnv({ RELAY_BUDGET_UNSENT_BYTES: '4096' }).relay.budgets).toEqual({ unsentBytes: 4096 });
    expect(relayConfigFromEnv({}).relay).not.toHaveProperty('budgets');
    expect(() => relayConfigFromEnv({ RELAY_BUDGET_WAIT_BYTES: '-1' })).toThrow(/RELAY_BUDGET_WAIT_BYTES must be an integer of at least 0/);
    expect(() => relayConfigFromEnv({ RELAY_MAX_WAIT_TIMEOUT_MS: '0' })).toThrow(/RELAY_MAX_WAIT_TIMEOUT_MS/);
  });

  it('reads fair admission settings, leaving unset ones to their defaults', () => {
    const c = relayConfigFromEnv({
      RELAY_MAX_CONNECTIONS_PER_SUBJECT: '50',
      RELAY_MAX_CONNECTIONS_PER_IP: '500',
      RELAY_MAX_HANDSHAKES_PER_SUBJECT: '4',
      RELAY_MAX_HANDSHAKES_PER_IP: '40',
      RELAY_TRUST_PROXY: 'TRUE',
      RELAY_UPGRADE_TIMEOUT_MS: '2000',
    });
    expect(c.relay).toMatchObject({
      maxConnectionsPerSubject: 50,
      maxConnectionsPerIp: 500,
      maxHandshakesPerSubject: 4,
      maxHandshakesPerIp: 40,
      trustProxy: true,
      upgradeTimeoutMs: 2000,
    });
    expect(relayConfigFromEnv({ RELAY_TRUST_PROXY: '0' }).relay.trustProxy).toBe(false);
    expect(relayConfigFromEnv({}).relay).not.toHaveProperty('trustProxy');
    expect(relayConfigFromEnv({}).relay).not.toHaveProperty('maxConnectionsPerIp');
    expect(() => relayConfigFromEnv({ RELAY_TRUST_PROXY: 'maybe' })).toThrow(/RELAY_TRUST_PROXY must be true or false/);
    expect(() => relayConfigFromEnv({ RELAY_MAX_HANDSHAKES_PER_IP: '0' })).toThrow(/RELAY_MAX_HANDSHAKES_PER_IP/);
  });

  it('reads RELAY_TRACING as a flag, off when unset', () => {
    expect(relayConfigFromEnv({ RELAY_TRACING: 'true' }).relay.tracing).toBe(true);
    expect(relayConfigFromEnv({}).relay).not.toHaveProperty('tracing');
    expect(() => relayConfigFromEnv({ RELAY_TRACING: 'on' })).toThrow(/RELAY_TRACING must be true or false/);
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

describe('relayConfigFromEnv status and cluster message settings', () => {
  it('reads the status token (empty: none) and the largest cluster message', () => {
    expect(relayConfigFromEnv({ RELAY_STATUS_TOKEN: 's3cret-status' }).statusToken).toBe('s3cret-status');
    expect(relayConfigFromEnv({ RELAY_STATUS_TOKEN: '' }).statusToken).toBeUndefined();
    const c = relayConfigFromEnv({ RELAY_REDIS_URL: 'redis://x', RELAY_CLUSTER_MAX_MESSAGE_BYTES: '1048576' });
    expect(c.relay.cluster?.maxMessageBytes).toBe(1_048_576);
    expect(() => relayConfigFromEnv({ RELAY_CLUSTER_MAX_MESSAGE_BYTES: '1048576' })).toThrow(/RELAY_REDIS_URL/);
    expect(() => relayConfigFromEnv({ RELAY_REDIS_URL: 'redis://x', RELAY_CLUSTER_MAX_MESSAGE_BYTES: '10' })).toThrow(
      /RELAY_CLUSTER_MAX_MESSAGE_BYTES/,
    );
  });
});

describe('relayConfigFromEnv metrics and log settings', () => {
  it('reads the metrics path (false or off: none) and token, leaving unset ones to their defaults', () => {
    expect(relayConfigFromEnv({ RELAY_METRICS_PATH: '/internal/metrics', RELAY_METRICS_TOKEN: 'scraper-token' })).toMatchObject({
      metricsPath: '/internal/metrics',
      metricsToken: 'scraper-token',
    });
    expect(relayConfigFromEnv({ RELAY_METRICS_PATH: 'false' }).metricsPath).toBe(false);
    expect(relayConfigFromEnv({ RELAY_METRICS_PATH: 'OFF' }).metricsPath).toBe(false);
    const none = relayConfigFromEnv({ RELAY_METRICS_PATH: '', RELAY_METRICS_TOKEN: '' });
    expect(none).not.toHaveProperty('metricsPath');
    expect(none).not.toHaveProperty('metricsToken');
    expect(() => relayConfigFromEnv({ RELAY_METRICS_PATH: 'metrics' })).toThrow(/RELAY_METRICS_PATH must be a path starting with "\/"/);
  });

  it('reads the log format and level (any case), and refuses others', () => {
    expect(relayConfigFromEnv({ RELAY_LOG_FORMAT: 'json', RELAY_LOG_LEVEL: 'DEBUG' }).log).toEqual({ format: 'json', level: 'debug' });
    expect(relayConfigFromEnv({ RELAY_LOG_LEVEL: 'warn' }).log).toEqual({ level: 'warn' });
    expect(relayConfigFromEnv({}).log).toBeUndefined();
    expect(() => relayConfigFromEnv({ RELAY_LOG_FORMAT: 'xml' })).toThrow(/RELAY_LOG_FORMAT must be one of text, json, got "xml"/);
    expect(() => relayConfigFromEnv({ RELAY_LOG_LEVEL: 'fatal' })).toThrow(
      /RELAY_LOG_LEVEL must be one of error, warn, log, debug, verbose/,
    );
  });
});
