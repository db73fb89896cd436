/** What `on()` reports, with each listener's arguments. */
export interface RelayClientEvents {
  /** A session is established (the relay answered HELLO). */
  connected: () => void;
  /** The session ended; `reason` says why when it was not `close()`. */
  disconnected: (reason?: Error) => void;
  /** The next attempt starts after `delayMs`; `attempt` counts the retries since the last session (0: the move at once after the relay's GOAWAY). */
  reconnecting: (attempt: number, delayMs: number) => void;
  /** A failure no call reports: a refused HELLO or token refresh, an unreadable frame, a listener that threw. */
  error: (error: Error) => void;
  /** The relay accepted a token refreshed on the open connection; its expiry (ms since the epoch, 0 for none). */
  token_refreshed: (expiresAt: number) => void;
}

/** What an `onEvent` listener gets besides the subject and the data. */
export interface RelayEventMeta {
  /** The emitter's node id (null when the relay did not name it). */
  peer: string | null;
  /** The headers the emitter set. */
  headers: Record<string, string>;
}

/** An `onEvent` listener; when it returns a promise, a handler ack waits for it. */
export type RelayEventListener = (subject: string, data: unknown, meta: RelayEventMeta) => void | Promise<void>;
