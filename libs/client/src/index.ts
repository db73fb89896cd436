export { RelayClient, type CallOptions, type EmitAck, type EmitOptions } from './relay-client.js';
export type { RelayClientOptions, RelayClientReconnectOptions, RelayClientToken } from './options.js';
export type { RelayClientEvents, RelayEventListener, RelayEventMeta } from './events.js';
export type { ClientState } from './state.js';
export type { RelayPattern } from './pattern.js';
export type { WebSocketConstructor, WebSocketLike } from './socket.js';
export { RelayError, RelayErrorCode, type FailedDelivery, type NodeInfo } from '@wsrelay/protocol';
