/** Options of `RelayModule.forRoot()`. */
export interface RelayModuleOptions {
  /**
   * HTTP path the relay accepts WebSocket upgrades on.
   * @default '/relay'
   */
  path?: string;
  /**
   * Largest frame the relay routes, in bytes. A bigger frame (up to twice
   * this) is answered with PAYLOAD_TOO_LARGE and the connection kept; a frame
   * over twice this closes the connection (WebSocket close code 1009).
   * @default 1048576 (1 MiB)
   */
  maxPayloadBytes?: number;
  /**
   * Interval of the relay's pings, in ms; a node that misses a whole
   * interval is disconnected (so a dead node is found within two intervals).
   * @default 10000
   */
  heartbeatIntervalMs?: number;
  /**
   * How long a new connection may take to send HELLO, in ms.
   * @default 5000
   */
  handshakeTimeoutMs?: number;
  /**
   * Bad frames a connection may send before the relay closes it (close code 4400).
   * @default 100
   */
  maxBadFrames?: number;
  /**
   * This relay's id, sent in WELCOME.
   * @default a random UUID
   */
  relayId?: string;
}

/** Options after defaults are applied (what the relay's parts inject). */
export type ResolvedRelayOptions = Required<RelayModuleOptions>;
