/** What a backplane hands the cluster. */
export interface BackplaneListener {
  /** A message for this relay: a broadcast (its own included) or one sent to it. */
  message(bytes: Uint8Array): void;
  /** The backend lost (false) or regained (true) its connection. */
  connection(up: boolean): void;
}

/**
 * The cluster seam: how relays reach each other. A backend only moves bytes
 * (publish to every relay, send to one); the inter-relay protocol (presence,
 * liveness, forwarding) is `RelayCluster`'s. In-memory (one process, the
 * default) and Redis (`ioredis`) backends ship with the relay.
 */
export interface Backplane {
  /** Where it connects, for logs and status (no credentials). */
  readonly description: string;
  /**
   * Loads what the backend needs (a client library) while the relay app
   * initialises; a rejection stops the relay from starting. Optional.
   */
  prepare?(): Promise<void>;
  /**
   * Starts delivering messages for relay instance `self` to `listener`.
   * Resolves once it can publish, or, when it cannot yet, after reporting
   * `connection(false)` (and `connection(true)` later); rejects only on a
   * configuration error.
   */
  start(self: string, listener: BackplaneListener): Promise<void>;
  /** To every relay, this one included. Dropped while disconnected. */
  publish(message: Uint8Array): void;
  /** To the relay instance `relay` only. Dropped while disconnected. */
  send(relay: string, message: Uint8Array): void;
  /**
   * The cluster stopped hearing its own messages back: drop whatever is
   * buffered (it would arrive stale) and reconnect. Optional.
   */
  reset?(): void;
  close(): Promise<void>;
}
