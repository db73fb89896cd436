import type {
  RelayAuthOptions,
  RelayBudgetOptions,
  RelayClusterOptions,
  RelayModuleOptions,
} from '../interfaces/relay-options.interface.js';
import {
  RELAY_LOG_FORMATS,
  RELAY_LOG_LEVELS,
  type RelayLogFormat,
  type RelayLoggerOptions,
  type RelayLogLevel,
} from '../logs/relay-logger.js';
import { readFileSync } from 'node:fs';

/** Where the deployable relay listens and how it routes, read from the environment. */
export interface RelayAppConfig {
  port: number;
  host: string;
  relay: RelayModuleOptions;
  /** PEM key and certificate to serve wss:// with. */
  tls?: { key: Buffer; cert: Buffer };
  /** RELAY_STATUS_TOKEN: the bearer token of GET /status/detail (not served without one). */
  statusToken?: string;
  /** RELAY_METRICS_PATH: where the Prometheus metrics are served ('false' or 'off': not at all). */
  metricsPath?: string | false;
  /** RELAY_METRICS_TOKEN: the bearer token GET /metrics asks for (open without one). */
  metricsToken?: string;
  /** RELAY_LOG_FORMAT (text | json) and RELAY_LOG_LEVEL (error | warn | log | debug | verbose). */
  log?: RelayLoggerOptions;
}

export const DEFAULT_RELAY_PORT = 8787;
export const DEFAULT_RELAY_HOST = '127.0.0.1';

function int(env: NodeJS.ProcessEnv, name: string, min: number): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    throw new TypeError(`${name} must be an integer of at least ${min}, got "${raw}"`);
  }
  return n;
}

/** A variable's value; an empty one counts as unset (as shells and container specs often leave them). */
function str(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const raw = env[name];
  return raw === undefined || raw === '' ? undefined : raw;
}

function list(env: NodeJS.ProcessEnv, name: string): string[] | undefined {
  const raw = env[name];
  if (!raw) return undefined;
  return raw
    .split(',')
    .map(s => s.trim())
    .filter(Boolean);
}

function file(env: NodeJS.ProcessEnv, name: string, read: (path: string) => Buffer): Buffer | undefined {
  const path = env[name];
  if (!path) return undefined;
  try {
    return read(path);
  } catch (err) {
    throw new TypeError(`${name}: cannot read "${path}" (${(err as Error).message})`, { cause: err });
  }
}

/**
 * JWT auth from RELAY_JWT_SECRET, RELAY_JWT_PUBLIC_KEY_FILE or RELAY_JWKS
 * (URL or file), with RELAY_JWT_ISSUER, RELAY_JWT_AUDIENCE; off when none is set.
 */
function authFromEnv(env: NodeJS.ProcessEnv, read: (path: string) => Buffer): RelayAuthOptions | undefined {
  const publicKey = file(env, 'RELAY_JWT_PUBLIC_KEY_FILE', read)?.toString('utf8');
  const secret = str(env, 'RELAY_JWT_SECRET');
  const jwks = str(env, 'RELAY_JWKS');
  if (publicKey === undefined && secret === undefined && jwks === undefined) return undefined;
  return {
    secret,
    publicKey,
    jwks,
    issuer: str(env, 'RELAY_JWT_ISSUER'),
    audience: str(env, 'RELAY_JWT_AUDIENCE'),
  };
}

/** A flag: true/1/yes or false/0/no (any case); undefined when unset or empty. */
function bool(env: NodeJS.ProcessEnv, name: string): boolean | undefined {
  const raw = str(env, name);
  if (raw === undefined) return undefined;
  if (/^(true|1|yes)$/i.test(raw)) return true;
  if (/^(false|0|no)$/i.test(raw)) return false;
  throw new TypeError(`${name} must be true or false, got "${raw}"`);
}

/**
 * Fair admission from RELAY_MAX_CONNECTIONS_PER_SUBJECT, RELAY_MAX_CONNECTIONS_PER_IP,
 * RELAY_MAX_HANDSHAKES_PER_SUBJECT, RELAY_MAX_HANDSHAKES_PER_IP, RELAY_TRUST_PROXY,
 * RELAY_UPGRADE_TIMEOUT_MS and RELAY_TRACING: only the ones set.
 */
function admissionFromEnv(env: NodeJS.ProcessEnv): Partial<RelayModuleOptions> {
  const admission: Partial<RelayModuleOptions> = {
    maxConnectionsPerSubject: int(env, 'RELAY_MAX_CONNECTIONS_PER_SUBJECT', 1),
    maxConnectionsPerIp: int(env, 'RELAY_MAX_CONNECTIONS_PER_IP', 1),
    maxHandshakesPerSubject: int(env, 'RELAY_MAX_HANDSHAKES_PER_SUBJECT', 1),
    maxHandshakesPerIp: int(env, 'RELAY_MAX_HANDSHAKES_PER_IP', 1),
    trustProxy: bool(env, 'RELAY_TRUST_PROXY'),
    tracing: bool(env, 'RELAY_TRACING'),
    upgradeTimeoutMs: int(env, 'RELAY_UPGRADE_TIMEOUT_MS', 1),
  };
  return Object.fromEntries(Object.entries(admission).filter(([, v]) => v !== undefined));
}

/** The relay-wide budgets set in the environment (RELAY_BUDGET_*), or undefined when none is. */
function budgetsFromEnv(env: NodeJS.ProcessEnv): RelayBudgetOptions | undefined {
  const budgets: RelayBudgetOptions = {};
  const names: Array<[keyof RelayBudgetOptions, string]> = [
    ['waitBytes', 'RELAY_BUDGET_WAIT_BYTES'],
    ['heldBytes', 'RELAY_BUDGET_HELD_BYTES'],
    ['retainedBytes', 'RELAY_BUDGET_RETAINED_BYTES'],
    ['unsentBytes', 'RELAY_BUDGET_UNSENT_BYTES'],
    ['routeCacheBytes', 'RELAY_BUDGET_ROUTE_CACHE_BYTES'],
  ];
  for (const [key, name] of names) {
    const n = int(env, name, 0);
    if (n !== undefined) budgets[key] = n;
  }
  return Object.keys(budgets).length > 0 ? budgets : undefined;
}

/** One of `allowed` (any case), or undefined when unset or empty. */
function oneOf<T extends string>(env: NodeJS.ProcessEnv, name: string, allowed: readonly T[]): T | undefined {
  const raw = str(env, name)?.toLowerCase();
  if (raw === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(raw))
    throw new TypeError(`${name} must be one of ${allowed.join(', ')}, got "${env[name]}"`);
  return raw as T;
}

/**
 * The app's endpoints and log: RELAY_STATUS_TOKEN, RELAY_METRICS_PATH,
 * RELAY_METRICS_TOKEN, RELAY_LOG_FORMAT and RELAY_LOG_LEVEL (only the ones set).
 */
function appFromEnv(env: NodeJS.ProcessEnv): Partial<RelayAppConfig> {
  const app: Partial<RelayAppConfig> = {};
  const statusToken = str(env, 'RELAY_STATUS_TOKEN');
  if (statusToken !== undefined) app.statusToken = statusToken;
  const metricsPath = str(env, 'RELAY_METRICS_PATH');
  if (metricsPath !== undefined && /^(false|off)$/i.test(metricsPath)) app.metricsPath = false;
  else if (metricsPath !== undefined) {
    if (!metricsPath.startsWith('/'))
      throw new TypeError(`RELAY_METRICS_PATH must be a path starting with "/" (or false), got "${metricsPath}"`);
    app.metricsPath = metricsPath;
  }
  const metricsToken = str(env, 'RELAY_METRICS_TOKEN');
  if (metricsToken !== undefined) app.metricsToken = metricsToken;
  const format = oneOf<RelayLogFormat>(env, 'RELAY_LOG_FORMAT', RELAY_LOG_FORMATS);
  const level = oneOf<RelayLogLevel>(env, 'RELAY_LOG_LEVEL', RELAY_LOG_LEVELS);
  if (format !== undefined || level !== undefined) app.log = { ...(format && { format }), ...(level && { level }) };
  return app;
}

/**
 * RELAY_PORT (8787), RELAY_HOST (127.0.0.1), RELAY_PATH (/relay),
 * RELAY_MAX_PAYLOAD_BYTES, RELAY_HEARTBEAT_INTERVAL_MS,
 * RELAY_HANDSHAKE_TIMEOUT_MS, RELAY_MAX_BAD_FRAMES, RELAY_ID,
 * RELAY_JWT_SECRET | RELAY_JWT_PUBLIC_KEY_FILE | RELAY_JWKS, RELAY_JWT_ISSUER,
 * RELAY_JWT_AUDIENCE, RELAY_ALLOWED_ORIGINS (comma-separated),
 * RELAY_MAX_CONNECTIONS, RELAY_RATE_LIMIT (frames/s per connection),
 * RELAY_MAX_IN_FLIGHT, RELAY_TLS_KEY_FILE + RELAY_TLS_CERT_FILE,
 * RELAY_REDIS_URL (join a cluster of relays over that Redis),
 * RELAY_CLUSTER_PREFIX, RELAY_CLUSTER_HEARTBEAT_INTERVAL_MS, RELAY_CLUSTER_TIMEOUT_MS,
 * RELAY_CLUSTER_MAX_MESSAGE_BYTES, RELAY_STATUS_TOKEN (bearer token of GET /status/detail),
 * RELAY_METRICS_PATH, RELAY_METRICS_TOKEN, RELAY_LOG_FORMAT, RELAY_LOG_LEVEL (see appFromEnv), RELAY_TRACING,
 * RELAY_DRAIN_TIMEOUT_MS (0: close at once on shutdown), RELAY_MAX_BUFFERED_BYTES
 * (unsent bytes before a slow consumer is closed), RELAY_EVENT_ACK_TIMEOUT_MS,
 * RELAY_MAX_EVENT_ATTEMPTS (events with handler acks), RELAY_STARTUP_GRACE_MS
 * (0: no startup grace for calls nothing serves yet), RELAY_MAX_WAIT_TIMEOUT_MS,
 * and the relay-wide budgets RELAY_BUDGET_WAIT_BYTES, RELAY_BUDGET_HELD_BYTES,
 * RELAY_BUDGET_RETAINED_BYTES, RELAY_BUDGET_UNSENT_BYTES, RELAY_BUDGET_ROUTE_CACHE_BYTES,
 * and fair admission (see admissionFromEnv).
 */
export function relayConfigFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  read: (path: string) => Buffer = path => readFileSync(path),
): RelayAppConfig {
  const rate = int(env, 'RELAY_RATE_LIMIT', 1);
  const key = file(env, 'RELAY_TLS_KEY_FILE', read);
  const cert = file(env, 'RELAY_TLS_CERT_FILE', read);
  if ((key === undefined) !== (cert === undefined)) {
    throw new TypeError('RELAY_TLS_KEY_FILE and RELAY_TLS_CERT_FILE go together');
  }
  const config: RelayAppConfig = {
    port: int(env, 'RELAY_PORT', 0) ?? DEFAULT_RELAY_PORT,
    host: str(env, 'RELAY_HOST') ?? DEFAULT_RELAY_HOST,
    relay: {
      path: str(env, 'RELAY_PATH'),
      maxPayloadBytes: int(env, 'RELAY_MAX_PAYLOAD_BYTES', 64),
      heartbeatIntervalMs: int(env, 'RELAY_HEARTBEAT_INTERVAL_MS', 10),
      handshakeTimeoutMs: int(env, 'RELAY_HANDSHAKE_TIMEOUT_MS', 1),
      maxBadFrames: int(env, 'RELAY_MAX_BAD_FRAMES', 1),
      relayId: str(env, 'RELAY_ID'),
    },
  };
  const auth = authFromEnv(env, read);
  if (auth !== undefined) config.relay.auth = auth;
  const origins = list(env, 'RELAY_ALLOWED_ORIGINS');
  if (origins !== undefined) config.relay.allowedOrigins = origins;
  const maxConnections = int(env, 'RELAY_MAX_CONNECTIONS', 1);
  if (maxConnections !== undefined) config.relay.maxConnections = maxConnections;
  Object.assign(config.relay, admissionFromEnv(env));
  if (rate !== undefined) config.relay.rateLimit = { perSecond: rate };
  const inFlight = int(env, 'RELAY_MAX_IN_FLIGHT', 1);
  if (inFlight !== undefined) config.relay.maxInFlightPerConnection = inFlight;
  if (key !== undefined && cert !== undefined) config.tls = { key, cert };
  Object.assign(config, appFromEnv(env));
  const drain = int(env, 'RELAY_DRAIN_TIMEOUT_MS', 0);
  if (drain !== undefined) config.relay.drainTimeoutMs = drain;
  const buffered = int(env, 'RELAY_MAX_BUFFERED_BYTES', 1024);
  if (buffered !== undefined) config.relay.maxBufferedBytes = buffered;
  const ackTimeout = int(env, 'RELAY_EVENT_ACK_TIMEOUT_MS', 1);
  if (ackTimeout !== undefined) config.relay.eventAckTimeoutMs = ackTimeout;
  const attempts = int(env, 'RELAY_MAX_EVENT_ATTEMPTS', 1);
  if (attempts !== undefined) config.relay.maxEventAttempts = attempts;
  const grace = int(env, 'RELAY_STARTUP_GRACE_MS', 0);
  if (grace !== undefined) config.relay.startupGraceMs = grace;
  const maxWait = int(env, 'RELAY_MAX_WAIT_TIMEOUT_MS', 1);
  if (maxWait !== undefined) config.relay.maxWaitTimeoutMs = maxWait;
  const budgets = budgetsFromEnv(env);
  if (budgets !== undefined) config.relay.budgets = budgets;
  const cluster = clusterFromEnv(env);
  if (cluster !== undefined) config.relay.cluster = cluster;
  return config;
}

/** RELAY_REDIS_URL and the RELAY_CLUSTER_* settings (which need it). */
function clusterFromEnv(env: NodeJS.ProcessEnv): RelayClusterOptions | undefined {
  const redis = str(env, 'RELAY_REDIS_URL');
  const heartbeat = int(env, 'RELAY_CLUSTER_HEARTBEAT_INTERVAL_MS', 10);
  const timeout = int(env, 'RELAY_CLUSTER_TIMEOUT_MS', 1);
  const maxMessageBytes = int(env, 'RELAY_CLUSTER_MAX_MESSAGE_BYTES', 1024);
  const clusterSet = heartbeat !== undefined || timeout !== undefined || maxMessageBytes !== undefined;
  if (redis === undefined && (clusterSet || str(env, 'RELAY_CLUSTER_PREFIX') !== undefined)) {
    throw new TypeError('RELAY_CLUSTER_* settings need RELAY_REDIS_URL (the Redis the relays share)');
  }
  if (redis === undefined) return undefined;
  const cluster: RelayClusterOptions = {
    redis,
    channelPrefix: str(env, 'RELAY_CLUSTER_PREFIX'),
    heartbeatIntervalMs: heartbeat,
    timeoutMs: timeout,
  };
  if (maxMessageBytes !== undefined) cluster.maxMessageBytes = maxMessageBytes;
  return cluster;
}
