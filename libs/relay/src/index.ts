export { type PermissionAction, Permissions } from './auth/permissions.js';
export { type ConnectionIdentity, OPEN_IDENTITY, RelayAuthService, TokenRefusal } from './auth/relay-auth.service.js';
export { selectProtocol, TOKEN_PROTOCOL_PREFIX, tokenOf } from './auth/token.js';
export type { Backplane, BackplaneListener } from './cluster/backplane.js';
export { CLUSTER_PROTOCOL_VERSION } from './cluster/cluster-protocol.js';
export { InMemoryBackplane, InMemoryHub } from './cluster/in-memory.backplane.js';
export { RedisBackplane, type RedisBackplaneOptions, type RelayRedisOptions } from './cluster/redis.backplane.js';
export { type ClusterStatus, RelayCluster } from './cluster/relay-cluster.js';
export { RelayCore } from './core/relay-core.js';
export type { NodeDiagnostics, RelayDiagnostics, RelayReadiness, RelayStatus, WorldDiagnostics } from './core/relay-status.js';
export { FramePolicy } from './gateway/frame-policy.js';
export type { BudgetStatus } from './internal/budget.js';
export { FramePolicyGuard } from './gateway/frame-policy.guard.js';
export { RelayExceptionFilter } from './gateway/relay-exception.filter.js';
export { RelayGateway } from './gateway/relay.gateway.js';
export { RelayWsAdapter } from './gateway/relay-ws.adapter.js';
export type {
  RelayAuthOptions,
  RelayBudgetOptions,
  RelayClaims,
  RelayClusterOptions,
  RelayModuleOptions,
  RelayPermissions,
  RelayRateLimit,
  ResolvedRelayOptions,
} from './interfaces/relay-options.interface.js';
export {
  createRelayApp,
  DEFAULT_LIVEZ_PATH,
  DEFAULT_METRICS_PATH,
  DEFAULT_READYZ_PATH,
  DEFAULT_STATUS_DETAIL_PATH,
  DEFAULT_STATUS_PATH,
  type RelayAppOptions,
  type RelayEndpointOptions,
} from './relay.bootstrap.js';
export { DEFAULT_LOG_LINES_PER_SECOND, RelayLog } from './logs/relay-log.js';
export { createRelayLogger, type RelayLogFormat, type RelayLoggerOptions, type RelayLogLevel } from './logs/relay-logger.js';
export { RELAY_METRICS_PREFIX, RelayMetrics } from './metrics/relay-metrics.js';
export { REQUEST_DURATION_BUCKETS } from './observe/latency-buckets.js';
export {
  type AcceptedConnection,
  type AnnouncedNode,
  type BackplaneChange,
  type ClusterMember,
  type ConnectionRole,
  type DrainEnd,
  type DrainStart,
  EventDrop,
  type FrameSender,
  type GoneNode,
  type LostMember,
  REFUSAL_REASONS,
  RefusalReason,
  type RefusedConnection,
  type RelayLifecycleListener,
  type RelayObserver,
  RequestOutcome,
  REQUEST_OUTCOMES,
  type SlowConsumer,
} from './observe/relay-observer.js';
export { RelayTally } from './observe/relay-tally.js';
export {
  ALL_PERMISSIONS,
  CONNECTION_IDENTITY,
  DEFAULT_MAX_BAD_FRAMES,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION,
  DEFAULT_MAX_PAYLOAD_BYTES,
  DEFAULT_NODE_ID_RESERVATION_MS,
  DEFAULT_RATE_LIMIT,
  DEFAULT_RELAY_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_RELAY_HEARTBEAT_INTERVAL_MS,
  DEFAULT_RELAY_PATH,
  RELAY_OPTIONS,
} from './relay.constants.js';
export { RelayModule } from './relay.module.js';
export { resolveRelayOptions } from './relay.options.js';
export { DEFAULT_RELAY_HOST, DEFAULT_RELAY_PORT, type RelayAppConfig, relayConfigFromEnv } from './standalone/relay-env.config.js';
export { type RunningRelay, runRelay, type RunRelayOptions } from './standalone/run-relay.js';
