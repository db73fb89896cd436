import { randomUUID } from 'node:crypto';
import { subscriptionProblem } from '@wsrelay/protocol';
import type {
  RelayAuthOptions,
  RelayClusterOptions,
  RelayModuleOptions,
  RelayPermissions,
  ResolvedRelayOptions,
} from './interfaces/relay-options.interface.js';

export const DEFAULT_RELAY_PATH = '/relay';
export const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024;
export const DEFAULT_RELAY_HEARTBEAT_INTERVAL_MS = 10_000;
export const DEFAULT_RELAY_HANDSHAKE_TIMEOUT_MS = 5_000;
export const DEFAULT_MAX_BAD_FRAMES = 100;
export const DEFAULT_MAX_CONNECTIONS = 50_000;
export const DEFAULT_RATE_LIMIT = { perSecond: 100_000, burst: 100_000 } as const;
export const DEFAULT_MAX_IN_FLIGHT = 10_000;
export const DEFAULT_NODE_ID_RESERVATION_MS = 60_000;
export const DEFAULT_CLUSTER_HEARTBEAT_INTERVAL_MS = 1000;
export const DEFAULT_RELAY_DRAIN_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_BUFFERED_BYTES = 16 * 1024 * 1024;
export const DEFAULT_EVENT_ACK_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_EVENT_ATTEMPTS = 3;
export const DEFAULT_CLUSTER_TIMEOUT_MS = 3000;
/** The nodes' default maximum reconnect delay: a restarted relay's nodes are back within it. */
export const DEFAULT_STARTUP_GRACE_MS = 5000;
export const ALL_PERMISSIONS: Readonly<RelayPermissions> = Object.freeze({ call: ['>'], serve: ['>'], publish: ['>'], subscribe: ['>'] });

/** Injection token of the resolved relay options. */
export const RELAY_OPTIONS = Symbol('wsrelay:relay_options');

/** Where the adapter's upgrade gate leaves a connection's identity on the upgrade request. */
export const CONNECTION_IDENTITY = Symbol.for('wsrelay:identity');

/** Set on every `ws` server `RelayWsAdapter` creates, so the gateway can tell it is in place. */
export const RELAY_ADAPTER_MARK = Symbol.for('wsrelay:adapter');

function positiveInt(name: string, v: number | undefined, min = 1): void {
  if (v !== undefined && (!Number.isInteger(v) || v < min)) {
    throw new TypeError(`RelayModule: ${name} must be an integer of at least ${min}, got ${String(v)}`);
  }
}

/** Applies defaults once and rejects bad values, naming the option. */
export function resolveRelayOptions(o: RelayModuleOptions = {}): ResolvedRelayOptions {
  positiveInt('maxPayloadBytes', o.maxPayloadBytes, 64);
  positiveInt('heartbeatIntervalMs', o.heartbeatIntervalMs, 10);
  positiveInt('handshakeTimeoutMs', o.handshakeTimeoutMs);
  positiveInt('maxBadFrames', o.maxBadFrames);
  positiveInt('maxConnections', o.maxConnections);
  positiveInt('maxInFlightPerConnection', o.maxInFlightPerConnection);
  positiveInt('nodeIdReservationMs', o.nodeIdReservationMs, 0);
  positiveInt('drainTimeoutMs', o.drainTimeoutMs, 0);
  positiveInt('maxBufferedBytes', o.maxBufferedBytes, 1024);
  positiveInt('eventAckTimeoutMs', o.eventAckTimeoutMs);
  positiveInt('maxEventAttempts', o.maxEventAttempts);
  positiveInt('startupGraceMs', o.startupGraceMs, 0);
  if (o.rateLimit) {
    positiveInt('rateLimit.perSecond', o.rateLimit.perSecond);
    positiveInt('rateLimit.burst', o.rateLimit.burst);
  }
  if (o.auth) checkAuth(o.auth);
  const cluster = resolveCluster(o.cluster);
  if (o.isServerConnection !== undefined && typeof o.isServerConnection !== 'function') {
    throw new TypeError('RelayModule: isServerConnection must be a function (claims, request) => boolean');
  }
  if (o.allowedOrigins !== undefined && !(Array.isArray(o.allowedOrigins) && o.allowedOrigins.every(x => typeof x === 'string'))) {
    throw new TypeError('RelayModule: allowedOrigins must be an array of origins like "https://app.example.com"');
  }
  if (o.defaultPermissions !== undefined) {
    const problem = permissionsProblem(o.defaultPermissions);
    if (problem) throw new TypeError(`RelayModule: defaultPermissions ${problem}`);
  }
  const path = o.path ?? DEFAULT_RELAY_PATH;
  if (!path.startsWith('/')) throw new TypeError(`RelayModule: path must start with "/", got "${path}"`);
  return {
    path,
    maxPayloadBytes: o.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES,
    heartbeatIntervalMs: o.heartbeatIntervalMs ?? DEFAULT_RELAY_HEARTBEAT_INTERVAL_MS,
    handshakeTimeoutMs: o.handshakeTimeoutMs ?? DEFAULT_RELAY_HANDSHAKE_TIMEOUT_MS,
    maxBadFrames: o.maxBadFrames ?? DEFAULT_MAX_BAD_FRAMES,
    relayId: o.relayId ?? randomUUID(),
    auth: o.auth ?? false,
    isServerConnection: o.isServerConnection,
    permissionsClaim: o.permissionsClaim ?? 'perms',
    defaultPermissions: o.defaultPermissions ?? ALL_PERMISSIONS,
    tenantClaim: o.tenantClaim ?? 'tenant',
    maxConnections: o.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
    rateLimit:
      o.rateLimit === false
        ? false
        : o.rateLimit
          ? { perSecond: o.rateLimit.perSecond, burst: o.rateLimit.burst ?? o.rateLimit.perSecond }
          : { ...DEFAULT_RATE_LIMIT },
    maxInFlightPerConnection: o.maxInFlightPerConnection ?? DEFAULT_MAX_IN_FLIGHT,
    allowedOrigins: o.allowedOrigins,
    perMessageDeflate: o.perMessageDeflate ?? false,
    nodeIdReservationMs: o.nodeIdReservationMs ?? DEFAULT_NODE_ID_RESERVATION_MS,
    cluster,
    drainTimeoutMs: o.drainTimeoutMs ?? DEFAULT_RELAY_DRAIN_TIMEOUT_MS,
    maxBufferedBytes: o.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES,
    eventAckTimeoutMs: o.eventAckTimeoutMs ?? DEFAULT_EVENT_ACK_TIMEOUT_MS,
    maxEventAttempts: o.maxEventAttempts ?? DEFAULT_MAX_EVENT_ATTEMPTS,
    startupGraceMs: o.startupGraceMs ?? DEFAULT_STARTUP_GRACE_MS,
  };
}

function resolveCluster(c: RelayClusterOptions = {}): ResolvedRelayOptions['cluster'] {
  if (c.redis !== undefined && c.backplane !== undefined) {
    throw new TypeError('RelayModule: cluster.redis and cluster.backplane cannot be used together; give one');
  }
  if (
    c.redis !== undefined &&
    (typeof c.redis !== 'string' ? typeof c.redis !== 'object' || c.redis === null : !/^rediss?:\/\//.test(c.redis))
  ) {
    throw new TypeError(
      `RelayModule: cluster.redis must be a redis:// or rediss:// URL or ioredis options, got ${JSON.stringify(c.redis)}`,
    );
  }
  positiveInt('cluster.heartbeatIntervalMs', c.heartbeatIntervalMs, 10);
  positiveInt('cluster.timeoutMs', c.timeoutMs, 1);
  const heartbeatIntervalMs = c.heartbeatIntervalMs ?? DEFAULT_CLUSTER_HEARTBEAT_INTERVAL_MS;
  const timeoutMs = c.timeoutMs ?? Math.max(DEFAULT_CLUSTER_TIMEOUT_MS, 3 * heartbeatIntervalMs);
  if (timeoutMs <= heartbeatIntervalMs) {
    throw new TypeError(
      `RelayModule: cluster.timeoutMs (${timeoutMs}) must be longer than cluster.heartbeatIntervalMs (${heartbeatIntervalMs})`,
    );
  }
  return { ...c, heartbeatIntervalMs, timeoutMs };
}

function checkAuth(a: RelayAuthOptions): void {
  const keys = [a.secret, a.publicKey, a.jwks].filter(k => k !== undefined && k !== '');
  if (keys.length !== 1) {
    throw new TypeError('RelayModule: auth needs exactly one of secret, publicKey or jwks');
  }
  if (a.algorithms?.some(alg => alg.toLowerCase() === 'none')) {
    throw new TypeError('RelayModule: auth.algorithms must not include "none"');
  }
  positiveInt('auth.clockToleranceSec', a.clockToleranceSec, 0);
  positiveInt('auth.jwksCooldownMs', a.jwksCooldownMs, 0);
  positiveInt('auth.expiryWarningMs', a.expiryWarningMs, 0);
}

/** Why a permissions object is unusable, or null. */
export function permissionsProblem(p: unknown): string | null {
  if (typeof p !== 'object' || p === null || Array.isArray(p)) return 'must be an object of subject lists';
  for (const [key, list] of Object.entries(p)) {
    if (!['call', 'serve', 'publish', 'subscribe'].includes(key)) return `has an unknown action "${key}"`;
    if (!Array.isArray(list) || !list.every(x => typeof x === 'string' && x.length > 0)) {
      return `"${key}" must be an array of non-empty subjects`;
    }
    for (const subject of list as string[]) {
      const problem = subscriptionProblem(subject);
      if (problem) return `"${key}": ${problem}`;
    }
  }
  return null;
}
