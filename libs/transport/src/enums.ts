import type { WsRelayUrlStatus } from './connection/url-status.js';

/** Connection status reported by `status` and `on()`. */
export enum WsRelayStatus {
  CONNECTED = 'connected',
  DISCONNECTED = 'disconnected',
  RECONNECTING = 'reconnecting',
}

/** Events reported through `on()`. */
export type WsRelayEvents = {
  connected: () => void;
  disconnected: (reason?: Error) => void;
  reconnecting: (attempt: number, delayMs: number) => void;
  error: (err: Error) => void;
  /** The relay accepted a token refreshed in-band; its new expiry (ms since the epoch, 0 for none). */
  token_refreshed: (expiresAt: number) => void;
  /** A relay URL's state changed: `connecting`, `connected`, `error` or `not_connected`. */
  relay_status: (url: string, status: WsRelayUrlStatus) => void;
};
