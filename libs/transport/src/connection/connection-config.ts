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
import type {
  WsRelayConnectionOptions,
  WsRelayReconnectOptions,
  WsRelayTlsOptions,
  WsRelayToken,
  WsRelayTokenCarrier,
} from '../interfaces/ws-relay-options.interface.js';

/** What a node announces in HELLO; asked again on every (re)connect. */
export interface NodeAnnouncement {
  service: string | null;
  patterns: string[];
  events: string[];
  queue: string | null;
}

/** A relay connection's settings, defaults applied. */
export interface RelayConnectionConfig {
  urls: string[];
  /** Calls that may wait for a connection at once (the offline queue); more fail at once. */
  maxOfflineQueue: number;
  token: WsRelayToken | undefined;
  tokenCarrier: WsRelayTokenCarrier;
  tls: WsRelayTlsOptions | undefined;
  nodeId: string;
  heartbeatIntervalMs: number;
  connectTimeoutMs: number;
  handshakeTimeoutMs: number;
  reconnect: Required<WsRelayReconnectOptions>;
  announce: () => NodeAnnouncement;
}

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
