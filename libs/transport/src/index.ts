export { RelayError, RelayErrorCode, RELAY_ERROR_STATUS } from '@wsrelay/protocol';
export { WsRelayClient, type WsRelayEventAck } from './client/ws-relay.client.js';
/** One failed delivery in a HANDLER_FAILED error's `details`. */
export type { FailedDelivery as WsRelayFailedDelivery } from '@wsrelay/protocol';
export { WsRelayContext } from './ctx-host/ws-relay.context.js';
export { WsRelayStatus, type WsRelayEvents } from './enums.js';
export * from './interfaces/ws-relay-options.interface.js';
export {
  type WsRelayEventAckMode,
  WsRelayRecord,
  WsRelayRecordBuilder,
  type WsRelayRecordOptions,
} from './record-builders/ws-relay.record-builder.js';
export type { WsRelayUrlStatus } from './connection/url-status.js';
export { WsRelayRecordSerializer, type WsRelaySerializedPacket } from './serializers/ws-relay-record.serializer.js';
export { WS_RELAY_TRANSPORT, WsRelayStrategy } from './server/ws-relay.strategy.js';
export * from './constants.js';
