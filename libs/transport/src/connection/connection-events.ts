import type { Frame, RelayError, WelcomeFrame } from '@wsrelay/protocol';
import type WebSocket from 'ws';
import type { WsRelayUrlStatus } from './url-status.js';

/**
 * The owner of a connection (a client or a strategy) hears about frames and
 * sessions here. `via` is the socket of the session concerned: after a GOAWAY
 * a node has a new session while the old one finishes what is in flight, so
 * an answer must go back on the socket its request came in on.
 */
export interface RelayConnectionListener {
  /** A frame arrived on a session (never HELLO/WELCOME/PING/PONG/GOAWAY). */
  onFrame(frame: Frame, via: WebSocket): void;
  /** A session ended; `error` is RELAY_UNAVAILABLE. */
  onLost(error: RelayError, via: WebSocket): void;
}

/** What a relay connection (and the links over several) reports, with each event's arguments. */
export interface RelayConnectionEvents {
  connected: [welcome?: WelcomeFrame];
  disconnected: [reason?: Error];
  reconnecting: [attempt: number, delayMs: number];
  error: [err: Error];
  /** The relay accepted a token refreshed in-band; its new expiry (ms since the epoch, 0 for none). */
  token_refreshed: [expiresAt: number];
  relay_status: [url: string, status: WsRelayUrlStatus];
}
