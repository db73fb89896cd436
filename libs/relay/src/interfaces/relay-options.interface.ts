import type { IncomingMessage } from 'node:http';
import type { Backplane } from '../cluster/backplane.js';
import type { RelayRedisOptions } from '../cluster/redis.backplane.js';

/** Verified JWT claims of a connection (null when auth is off). */
export type RelayClaims = Record<string, unknown>;

/** What a connection may do, as NATS-style subject lists (`*` one token, `>` the rest). */
export interface RelayPermissions {
  /** RPC patterns it may call (and WAIT for). */
  call?: string[];
  /** RPC patterns it may serve. */
  serve?: string[];
  /** Event patterns it may emit. */
  publish?: string[];
  /** Event patterns it may subscribe to (a wildcard subscription must be covered whole). */
  subscribe?: string[];
}

/** JWT verification at the WebSocket upgrade. Give exactly one of `secret`, `publicKey`, `jwks`. */
export interface RelayAuthOptions {
  /** Shared secret for HS256/HS384/HS512. */
  secret?: string | Uint8Array;
  /** A PEM public key (SPKI) or certificate for RS*, PS*, ES* or EdDSA tokens. */
  publicKey?: string;
  /**
   * A JWKS: an `http(s)://` URL (fetched and cached; an unknown `kid` triggers a refetch),
   * a file path (re-read on an unknown `kid`), or the document itself. Keys rotate by `kid`.
   */
  jwks?: string | { keys: Record<string, unknown>[] };
  /** Accepted `alg` values. @default HS256 for a secret; the key type's usual one for a PEM; any asymmetric one for JWKS */
  algorithms?: string[];
  /** Required `iss`. */
  issuer?: string | string[];
  /** Required `aud`. */
  audience?: string | string[];
  /** Clock skew allowed for `exp`/`nbf`, in seconds. @default 5 */
  clockToleranceSec?: number;
  /** Least time between two refetches of a JWKS, in ms. @default 30000 */
  jwksCooldownMs?: number;
  /** How long before `exp` the relay sends TOKEN_EXPIRING, in ms. @default 60000 */
  expiryWarningMs?: number;
  /**
   * In-band token refreshes (AUTH) the relay refuses on one connection before
   * it closes it (4401), so that a connection cannot try tokens without end.
   * @default 5
   */
  maxRefreshFailures?: number;
}

/** Token bucket per connection. */
export interface RelayRateLimit {
  /** Frames per second a connection may sustain. */
  perSecond: number;
  /** Frames it may send in a burst. @default perSecond */
  burst?: number;
}

/**
 * Several relays behaving as one. Without `redis` or `backplane` the relay
 * is a cluster of one (in memory, nothing to install).
 */
export interface RelayClusterOptions {
  /** Redis the relays coordinate through: a `redis://` URL or ioredis options. */
  redis?: string | RelayRedisOptions;
  /** Prefix of the Redis channels, so several clusters can share one Redis. @default 'wsrelay' */
  channelPrefix?: string;
  /** A backplane of your own instead of Redis (e.g. `new InMemoryBackplane(hub)` for relays in one process). */
  backplane?: Backplane;
  /** Interval of the relays' heartbeat on the backplane, in ms. @default 1000 */
  heartbeatIntervalMs?: number;
  /**
   * A relay not heard from for this long is gone, with its nodes (requests in
   * flight to them fail with PROVIDER_DISCONNECTED); the same bound applies to
   * this relay's own heartbeat, past which it routes among its own connections only.
   * @default 3000
   */
  timeoutMs?: number;
  /**
   * The largest cluster message a relay takes, in bytes: a presence snapshot
   * (all of a relay's nodes and patterns) or a forwarded payload. Messages
   * over 256 KiB travel in chunks that the receiver pulls; one over this bound
   * is refused (and logged), and a relay that cannot get another's snapshot
   * stays not ready.
   * @default 268435456 (256 MiB)
   */
  maxMessageBytes?: number;
}

/**
 * Relay-wide memory budgets: what the relay keeps for all its connections
 * together, on top of each connection's own bounds. `/status` shows each
 * (`budgets`); what would go over one is refused with RATE_LIMITED (unsent
 * bytes: connections that stopped reading are closed instead, 4507).
 */
export interface RelayBudgetOptions {
  /**
   * Bytes pending WAITs keep (estimated: the pattern and a fixed overhead
   * each); a WAIT that would go over it gets RATE_LIMITED.
   * @default 33554432 (32 MiB)
   */
  waitBytes?: number;
  /**
   * Bytes of requests held in the startup grace (payload, pattern and a fixed
   * overhead each); a request that would go over it gets RATE_LIMITED.
   * @default 67108864 (64 MiB)
   */
  heldBytes?: number;
  /**
   * Payload bytes kept for redelivery of handler-acked events to queue
   * groups; an event that would go over it gets RATE_LIMITED.
   * @default 67108864 (64 MiB)
   */
  retainedBytes?: number;
  /**
   * Bytes written to connections and not yet sent, all connections together.
   * Over it, connections that stopped reading (more than a sixteenth of
   * `maxBufferedBytes` unsent, or unsent bytes of which it took none from one
   * heartbeat beat to the next) are closed with 4507 SLOW_CONSUMER, the one
   * stalled longest first, until it is under again.
   * @default 134217728 (128 MiB)
   */
  unsentBytes?: number;
  /**
   * Bytes of the event route cache, estimated (a cached subject costs its
   * length, a fixed overhead and a few dozen bytes per node its route names);
   * the routes used least recently make room for new ones.
   * @default 33554432 (32 MiB)
   */
  routeCacheBytes?: number;
}

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
   * Heartbeat interval, in ms: the relay pings a node it has not heard from
   * for a whole interval and disconnects one silent for one and a half (so a
   * dead node is found within two intervals); nodes ping only a relay silent
   * for two.
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
  /**
   * JWT authentication at the upgrade. Off by default: the relay then logs a
   * warning at start, since any client that reaches it can join routing.
   */
  auth?: RelayAuthOptions | false;
  /**
   * Classifies a connection: true for a server (may serve patterns, subscribe
   * to events and answer requests), false for a passive client (may call and
   * emit, and subscribe to the events its token's permissions claim lets it).
   * @default claims.role === 'server' (or 'server' in claims.roles); every connection when auth is off
   */
  isServerConnection?: (claims: RelayClaims | null, request: IncomingMessage) => boolean;
  /** Claim holding a connection's permissions. @default 'perms' */
  permissionsClaim?: string;
  /**
   * Permissions of a token without a permissions claim (and of every connection
   * when auth is off). Its `subscribe` applies to server connections only: a
   * passive client subscribes only where its own token's claim grants it.
   * @default everything
   */
  defaultPermissions?: RelayPermissions;
  /** Claim naming a connection's tenant; tenants never see each other. @default 'tenant' */
  tenantClaim?: string;
  /** Most open connections; more are refused at the upgrade with HTTP 503. @default 50000 */
  maxConnections?: number;
  /**
   * Connections one token subject (`sub`) may have open or opening; more are
   * refused at the upgrade with HTTP 429 (`X-WsRelay-Error: RATE_LIMITED`).
   * Tokens without `sub` are counted by address only.
   * @default 1000
   */
  maxConnectionsPerSubject?: number;
  /**
   * Connections one IP address may have open or opening (counted from the
   * upgrade on, before the token is checked); more get HTTP 429. Behind a
   * proxy every client has the proxy's address unless `trustProxy` is set.
   * @default 10000
   */
  maxConnectionsPerIp?: number;
  /**
   * Connections of one token subject still in their handshake (upgrading, or
   * open without an accepted HELLO); more get HTTP 429. With
   * `handshakeTimeoutMs`, this keeps a token that opens sockets and never says
   * HELLO from squatting connection slots, however fast it reconnects.
   * @default 32
   */
  maxHandshakesPerSubject?: number;
  /** Connections of one IP address still in their handshake; more get HTTP 429. @default 1000 */
  maxHandshakesPerIp?: number;
  /**
   * Take a connection's address from the last `X-Forwarded-For` entry (the
   * one the proxy in front of the relay appended) for `maxConnectionsPerIp`
   * and `maxHandshakesPerIp`. Only set it when every connection comes through
   * such a proxy: otherwise clients choose their own address.
   * @default false
   */
  trustProxy?: boolean;
  /**
   * How long a new TCP connection has to deliver its whole HTTP request (the
   * WebSocket upgrade, or a plain request such as `/status`) before it is
   * closed, in ms. Established WebSockets are not affected.
   * @default 10000
   */
  upgradeTimeoutMs?: number;
  /**
   * Frames per second per connection, every frame type, except a server
   * connection's answers it owes (one RESPONSE or HANDLED per REQUEST or
   * handler-acked EVENT it was given), which its callers' own
   * limits bound. Over it the relay stops reading the connection until tokens
   * come back: frames are delayed, in order, never refused for the rate and
   * never decoded ahead of their turn (far past it: closed with 4429).
   * `false` turns it off.
   * @default { perSecond: 100000, burst: 100000 }
   */
  rateLimit?: RelayRateLimit | false;
  /** Requests and WAITs a connection may have in flight; more get RATE_LIMITED. @default 10000 */
  maxInFlightPerConnection?: number;
  /**
   * Origins browsers may connect from (exact `scheme://host[:port]`). A request
   * whose Origin header is not listed is refused with HTTP 403; requests without
   * an Origin header (non-browser nodes) are not affected.
   * @default undefined: with `auth`, any origin (a page cannot use a token it
   * does not have); without `auth`, only pages from the relay's own host (the
   * Origin's host is the request's Host header)
   */
  allowedOrigins?: string[];
  /**
   * Accept permessage-deflate. The inflated size of a message is capped at
   * twice `maxPayloadBytes` (over it the connection is closed with 1009).
   * @default false
   */
  perMessageDeflate?: boolean;
  /**
   * OpenTelemetry spans of the routing (through `@opentelemetry/api`, which
   * must then be installed, and an SDK the app registers): a span for each
   * call, from routing to its end, and for each event published, as a child
   * of the caller's span when the call or event carries a W3C
   * `traceparent` header (nodes with `tracing: true` send one).
   * @default false
   */
  tracing?: boolean;
  /** How long a node id stays bound to its token subject after its connection drops, in ms. @default 60000 */
  nodeIdReservationMs?: number;
  /** Run as one relay of a cluster (over Redis). @default a cluster of one */
  cluster?: RelayClusterOptions;
  /**
   * On shutdown, how long the relay lets requests in flight complete after
   * telling every node to move (GOAWAY), in ms; 0 closes at once.
   * @default 10000
   */
  drainTimeoutMs?: number;
  /**
   * Bytes a connection may leave unsent (a consumer that stops reading)
   * before the relay closes it (4507 SLOW_CONSUMER). Past a sixteenth of it,
   * the connection is skipped for new routing where another node can take it.
   * @default 16777216 (16 MiB)
   */
  maxBufferedBytes?: number;
  /**
   * With `ack: 'handlers'`: how long one delivery may go unconfirmed before
   * it is given to another member of its queue group (or reported failed), in ms.
   * @default 10000
   */
  eventAckTimeoutMs?: number;
  /** With `ack: 'handlers'`: deliveries of one event to a queue group, in all. @default 3 */
  maxEventAttempts?: number;
  /**
   * For this long after it starts, the relay holds a request for a pattern
   * (or a chosen node) that nothing serves yet, instead of failing it with
   * MICROSERVICE_OFFLINE at once: it is routed as soon as a provider says
   * HELLO here (or, in a cluster, is seen on another relay), and fails with
   * MICROSERVICE_OFFLINE when the grace or its own deadline ends first. This
   * makes a relay restart invisible to callers whose queued calls come back
   * before the providers do. 0 turns it off.
   * @default 5000 (the nodes' default maximum reconnect delay)
   */
  startupGraceMs?: number;
  /**
   * Longest a WAIT lasts, in ms: a WAIT with a longer timeout is cut to it
   * (its TIMEOUT says so), so that pending WAITs cannot pin memory for days.
   * @default 300000 (5 minutes)
   */
  maxWaitTimeoutMs?: number;
  /** Relay-wide memory budgets (each field has its own default). */
  budgets?: RelayBudgetOptions;
}

/** Options after defaults are applied (what the relay's parts inject). */
export interface ResolvedRelayOptions {
  path: string;
  maxPayloadBytes: number;
  heartbeatIntervalMs: number;
  handshakeTimeoutMs: number;
  maxBadFrames: number;
  relayId: string;
  auth: RelayAuthOptions | false;
  isServerConnection: ((claims: RelayClaims | null, request: IncomingMessage) => boolean) | undefined;
  permissionsClaim: string;
  defaultPermissions: RelayPermissions;
  tenantClaim: string;
  maxConnections: number;
  maxConnectionsPerSubject: number;
  maxConnectionsPerIp: number;
  maxHandshakesPerSubject: number;
  maxHandshakesPerIp: number;
  trustProxy: boolean;
  upgradeTimeoutMs: number;
  rateLimit: Required<RelayRateLimit> | false;
  maxInFlightPerConnection: number;
  allowedOrigins: string[] | undefined;
  perMessageDeflate: boolean;
  tracing: boolean;
  nodeIdReservationMs: number;
  cluster: Omit<RelayClusterOptions, 'heartbeatIntervalMs' | 'timeoutMs'> & { heartbeatIntervalMs: number; timeoutMs: number };
  drainTimeoutMs: number;
  maxBufferedBytes: number;
  eventAckTimeoutMs: number;
  maxEventAttempts: number;
  startupGraceMs: number;
  maxWaitTimeoutMs: number;
  budgets: Required<RelayBudgetOptions>;
}
