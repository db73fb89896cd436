import { randomUUID } from 'node:crypto';
import type {
  RelayBudgetOptions,
  RelayClusterOptions,
  RelayModuleOptions,
  ResolvedRelayOptions,
} from './interfaces/relay-options.interface.js';
import { validateRelayOptions } from './relay.options.validation.js';
import {
  ALL_PERMISSIONS,
  DEFAULT_BUDGET_HELD_BYTES,
  DEFAULT_BUDGET_RETAINED_BYTES,
  DEFAULT_BUDGET_ROUTE_CACHE_BYTES,
  DEFAULT_BUDGET_UNSENT_BYTES,
  DEFAULT_BUDGET_WAIT_BYTES,
  DEFAULT_CLUSTER_HEARTBEAT_INTERVAL_MS,
  DEFAULT_CLUSTER_TIMEOUT_MS,
  DEFAULT_EVENT_ACK_TIMEOUT_MS,
  DEFAULT_MAX_BAD_FRAMES,
  DEFAULT_MAX_BUFFERED_BYTES,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_CONNECTIONS_PER_IP,
  DEFAULT_MAX_CONNECTIONS_PER_SUBJECT,
  DEFAULT_MAX_HANDSHAKES_PER_IP,
  DEFAULT_MAX_HANDSHAKES_PER_SUBJECT,
  DEFAULT_UPGRADE_TIMEOUT_MS,
  DEFAULT_MAX_EVENT_ATTEMPTS,
  DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION,
  DEFAULT_MAX_PAYLOAD_BYTES,
  DEFAULT_MAX_WAIT_TIMEOUT_MS,
  DEFAULT_NODE_ID_RESERVATION_MS,
  DEFAULT_PERMISSIONS_CLAIM,
  DEFAULT_RATE_LIMIT,
  DEFAULT_RELAY_DRAIN_TIMEOUT_MS,
  DEFAULT_RELAY_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_RELAY_HEARTBEAT_INTERVAL_MS,
  DEFAULT_RELAY_PATH,
  DEFAULT_STARTUP_GRACE_MS,
  DEFAULT_TENANT_CLAIM,
} from './relay.constants.js';

/** Validates the options (a TypeError names every bad one) and applies the defaults, once. */
export function resolveRelayOptions(o: RelayModuleOptions = {}): ResolvedRelayOptions {
  validateRelayOptions(o);
  return {
    path: o.path ?? DEFAULT_RELAY_PATH,
    maxPayloadBytes: o.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES,
    heartbeatIntervalMs: o.heartbeatIntervalMs ?? DEFAULT_RELAY_HEARTBEAT_INTERVAL_MS,
    handshakeTimeoutMs: o.handshakeTimeoutMs ?? DEFAULT_RELAY_HANDSHAKE_TIMEOUT_MS,
    maxBadFrames: o.maxBadFrames ?? DEFAULT_MAX_BAD_FRAMES,
    relayId: o.relayId ?? randomUUID(),
    auth: o.auth ?? false,
    isServerConnection: o.isServerConnection,
    permissionsClaim: o.permissionsClaim ?? DEFAULT_PERMISSIONS_CLAIM,
    defaultPermissions: o.defaultPermissions ?? ALL_PERMISSIONS,
    tenantClaim: o.tenantClaim ?? DEFAULT_TENANT_CLAIM,
    maxConnections: o.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
    maxConnectionsPerSubject: o.maxConnectionsPerSubject ?? DEFAULT_MAX_CONNECTIONS_PER_SUBJECT,
    maxConnectionsPerIp: o.maxConnectionsPerIp ?? DEFAULT_MAX_CONNECTIONS_PER_IP,
    maxHandshakesPerSubject: o.maxHandshakesPerSubject ?? DEFAULT_MAX_HANDSHAKES_PER_SUBJECT,
    maxHandshakesPerIp: o.maxHandshakesPerIp ?? DEFAULT_MAX_HANDSHAKES_PER_IP,
    trustProxy: o.trustProxy ?? false,
    upgradeTimeoutMs: o.upgradeTimeoutMs ?? DEFAULT_UPGRADE_TIMEOUT_MS,
    rateLimit:
      o.rateLimit === false
        ? false
        : o.rateLimit !== undefined
          ? { perSecond: o.rateLimit.perSecond, burst: o.rateLimit.burst ?? o.rateLimit.perSecond }
          : { ...DEFAULT_RATE_LIMIT },
    maxInFlightPerConnection: o.maxInFlightPerConnection ?? DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION,
    allowedOrigins: o.allowedOrigins,
    perMessageDeflate: o.perMessageDeflate ?? false,
    tracing: o.tracing ?? false,
    nodeIdReservationMs: o.nodeIdReservationMs ?? DEFAULT_NODE_ID_RESERVATION_MS,
    cluster: resolveCluster(o.cluster),
    drainTimeoutMs: o.drainTimeoutMs ?? DEFAULT_RELAY_DRAIN_TIMEOUT_MS,
    maxBufferedBytes: o.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES,
    eventAckTimeoutMs: o.eventAckTimeoutMs ?? DEFAULT_EVENT_ACK_TIMEOUT_MS,
    maxEventAttempts: o.maxEventAttempts ?? DEFAULT_MAX_EVENT_ATTEMPTS,
    startupGraceMs: o.startupGraceMs ?? DEFAULT_STARTUP_GRACE_MS,
    maxWaitTimeoutMs: o.maxWaitTimeoutMs ?? DEFAULT_MAX_WAIT_TIMEOUT_MS,
    budgets: resolveBudgets(o.budgets),
  };
}

function resolveBudgets(b: RelayBudgetOptions = {}): ResolvedRelayOptions['budgets'] {
  return {
    waitBytes: b.waitBytes ?? DEFAULT_BUDGET_WAIT_BYTES,
    heldBytes: b.heldBytes ?? DEFAULT_BUDGET_HELD_BYTES,
    retainedBytes: b.retainedBytes ?? DEFAULT_BUDGET_RETAINED_BYTES,
    unsentBytes: b.unsentBytes ?? DEFAULT_BUDGET_UNSENT_BYTES,
    routeCacheBytes: b.routeCacheBytes ?? DEFAULT_BUDGET_ROUTE_CACHE_BYTES,
  };
}

function resolveCluster(c: RelayClusterOptions = {}): ResolvedRelayOptions['cluster'] {
  const heartbeatIntervalMs = c.heartbeatIntervalMs ?? DEFAULT_CLUSTER_HEARTBEAT_INTERVAL_MS;
  const timeoutMs = c.timeoutMs ?? Math.max(DEFAULT_CLUSTER_TIMEOUT_MS, 3 * heartbeatIntervalMs);
  if (timeoutMs <= heartbeatIntervalMs) {
    throw new TypeError(
      `RelayModule: cluster.timeoutMs (${timeoutMs}) must be longer than cluster.heartbeatIntervalMs (${heartbeatIntervalMs})`,
    );
  }
  return { ...c, heartbeatIntervalMs, timeoutMs };
}
