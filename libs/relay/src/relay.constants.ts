import type { RelayPermissions } from './interfaces/relay-options.interface.js';

export const DEFAULT_RELAY_PATH = '/relay';
export const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024;
export const DEFAULT_RELAY_HEARTBEAT_INTERVAL_MS = 10_000;
export const DEFAULT_RELAY_HANDSHAKE_TIMEOUT_MS = 5_000;
export const DEFAULT_MAX_BAD_FRAMES = 100;
export const DEFAULT_MAX_CONNECTIONS = 50_000;
export const DEFAULT_MAX_CONNECTIONS_PER_SUBJECT = 1000;
export const DEFAULT_MAX_CONNECTIONS_PER_IP = 10_000;
export const DEFAULT_MAX_HANDSHAKES_PER_SUBJECT = 32;
export const DEFAULT_MAX_HANDSHAKES_PER_IP = 1000;
export const DEFAULT_UPGRADE_TIMEOUT_MS = 10_000;
export const DEFAULT_RATE_LIMIT = { perSecond: 100_000, burst: 100_000 } as const;
export const DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION = 10_000;
export const DEFAULT_NODE_ID_RESERVATION_MS = 60_000;
export const DEFAULT_CLUSTER_HEARTBEAT_INTERVAL_MS = 1000;
export const DEFAULT_RELAY_DRAIN_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_BUFFERED_BYTES = 16 * 1024 * 1024;
export const DEFAULT_EVENT_ACK_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_EVENT_ATTEMPTS = 3;
export const DEFAULT_CLUSTER_TIMEOUT_MS = 3000;
/** The nodes' default maximum reconnect delay: a restarted relay's nodes are back within it. */
export const DEFAULT_STARTUP_GRACE_MS = 5000;
export const DEFAULT_MAX_WAIT_TIMEOUT_MS = 5 * 60_000;
export const DEFAULT_BUDGET_WAIT_BYTES = 32 * 1024 * 1024;
export const DEFAULT_BUDGET_HELD_BYTES = 64 * 1024 * 1024;
export const DEFAULT_BUDGET_RETAINED_BYTES = 64 * 1024 * 1024;
export const DEFAULT_BUDGET_UNSENT_BYTES = 128 * 1024 * 1024;
export const DEFAULT_BUDGET_ROUTE_CACHE_BYTES = 32 * 1024 * 1024;
export const DEFAULT_PERMISSIONS_CLAIM = 'perms';
export const DEFAULT_TENANT_CLAIM = 'tenant';
export const ALL_PERMISSIONS: Readonly<RelayPermissions> = Object.freeze({ call: ['>'], serve: ['>'], publish: ['>'], subscribe: ['>'] });

/** Injection token of the resolved relay options. */
export const RELAY_OPTIONS = Symbol('wsrelay:relay_options');

/** Where the adapter's upgrade gate leaves a connection's identity on the upgrade request. */
export const CONNECTION_IDENTITY = Symbol.for('wsrelay:identity');

/** Set on every `ws` server `RelayWsAdapter` creates, so the gateway can tell it is in place. */
export const RELAY_ADAPTER_MARK = Symbol.for('wsrelay:adapter');
