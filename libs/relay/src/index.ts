export { RelayExceptionFilter } from './filters/relay-exception.filter.js';
export { EstablishedSessionGuard } from './guards/established-session.guard.js';
export { EventAckInterceptor } from './interceptors/event-ack.interceptor.js';
export type { RelayModuleOptions, ResolvedRelayOptions } from './interfaces/relay-options.interface.js';
export { createRelayApp } from './relay.bootstrap.js';
export {
  DEFAULT_MAX_BAD_FRAMES,
  DEFAULT_MAX_PAYLOAD_BYTES,
  DEFAULT_RELAY_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_RELAY_HEARTBEAT_INTERVAL_MS,
  DEFAULT_RELAY_PATH,
  RELAY_OPTIONS,
  resolveRelayOptions,
} from './relay.constants.js';
export { RelayGateway } from './relay.gateway.js';
export { RelayModule } from './relay.module.js';
export { RelayWsAdapter } from './relay-ws.adapter.js';
export { RelayRouter } from './routing/relay-router.js';
