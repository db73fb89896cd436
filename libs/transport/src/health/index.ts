export {
  WsRelayHealthIndicator,
  type WsRelayHealthResult,
  type WsRelayHealthSessions,
  type WsRelayNode,
} from './ws-relay-health.indicator.js';
