import type { Frame, RelayError, WelcomeFrame } from '@wsrelay/protocol';
import type WebSocket from 'ws';
import type { WsRelayEvents } from '../enums.js';

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

/**
 * What a relay connection (and the links over several) reports, with each
 * event's arguments: the public WsRelayEvents, where `connected` also carries
 * the relay's WELCOME.
 */
export type RelayConnectionEvents = { [K in Exclude<keyof WsRelayEvents, 'connected'>]: Parameters<WsRelayEvents[K]> } & {
  connected: [welcome?: WelcomeFrame];
};
