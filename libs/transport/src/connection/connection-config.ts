import { randomUUID } from 'node:crypto';
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_MAX_OFFLINE_QUEUE,
  DEFAULT_RECONNECT_INITIAL_DELAY_MS,
  DEFAULT_RECONNECT_JITTER,
  DEFAULT_RECONNECT_MAX_DELAY_MS,
  DEFAULT_RECONNECT_MULTIPLIER,
} from '../constants.js';
import type { WsRelayConnectionOptions } from '../interfaces/ws-relay-options.interface.js';
import type { NodeAnnouncement, RelayConnectionConfig } from './relay-connection.js';

/** Merges validated options with their defaults, once, at construction. */
export function resolveConnectionConfig(o: WsRelayConnectionOptions, announce: () => NodeAnnouncement): RelayConnectionConfig {
  return {
    urls: [...o.urls],
    maxOfflineQueue: o.maxOfflineQueue ?? DEFAULT_MAX_OFFLINE_QUEUE,
    token: o.token,
    tokenCarrier: o.tokenCarrier ?? 'header',
    tls: o.tls,
    nodeId: o.nodeId ?? randomUUID(),
    heartbeatIntervalMs: o.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS,
    connectTimeoutMs: o.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    handshakeTimeoutMs: o.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
    reconnect: {
      initialDelayMs: o.reconnect?.initialDelayMs ?? DEFAULT_RECONNECT_INITIAL_DELAY_MS,
      maxDelayMs: o.reconnect?.maxDelayMs ?? DEFAULT_RECONNECT_MAX_DELAY_MS,
      multiplier: o.reconnect?.multiplier ?? DEFAULT_RECONNECT_MULTIPLIER,
      jitter: o.reconnect?.jitter ?? DEFAULT_RECONNECT_JITTER,
    },
    announce,
  };
}
