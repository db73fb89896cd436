/** The protocol version this build speaks best. */
export const PROTOCOL_VERSION = 1;

/** Every protocol version this build can speak, newest first. */
export const SUPPORTED_PROTOCOL_VERSIONS: readonly number[] = [1];

/**
 * Optional features a node and a relay agree on in HELLO and WELCOME; a
 * feature is used on a connection only when WELCOME lists it.
 */
export const Capability = {
  /** Flow control of streamed results: REQUEST's `window` and the CREDIT frame. */
  CREDIT: 'credit',
} as const;

/** Every capability this build speaks. */
export const SUPPORTED_CAPABILITIES: readonly string[] = [Capability.CREDIT];

/** The most capabilities a HELLO or WELCOME may list. */
export const MAX_CAPABILITIES = 32;

/** The largest stream window or credit grant. */
export const MAX_CREDIT = 0x7fff_ffff;

/**
 * WebSocket close codes used by the relay and the nodes (4000–4999 is the
 * range RFC 6455 leaves to applications). The last three digits echo the
 * HTTP-like status of the matching error code.
 */
export const CloseCode = {
  /** Normal shutdown of either side. */
  NORMAL: 1000,
  /** The relay is going away (shutdown). */
  GOING_AWAY: 1001,
  /** The peer kept sending frames that failed validation. */
  BAD_FRAME: 4400,
  /** The connection's token expired and was not refreshed, or a refresh was refused. */
  UNAUTHORIZED: 4401,
  /** HELLO asked for something the connection may not do (serve, subscribe, a foreign node id). */
  FORBIDDEN: 4403,
  /** The node id is already held by another live connection. */
  NODE_ID_CONFLICT: 4409,
  /** The peer kept sending far past its frame rate limit (more than the relay holds while it stops reading). */
  RATE_LIMITED: 4429,
  /** The node never completed the handshake in time. */
  HANDSHAKE_TIMEOUT: 4408,
  /** No protocol version in common. */
  PROTOCOL_MISMATCH: 4426,
  /** The peer missed its heartbeats. */
  HEARTBEAT_TIMEOUT: 4504,
  /** The peer stopped reading: more than the relay's byte budget waited unsent. */
  SLOW_CONSUMER: 4507,
} as const;
