import type { WsRelayEventAckMode } from '../record-builders/ws-relay.record-builder.js';
import type { Deserializer, Serializer } from '@nestjs/microservices';

/** A bearer token, or a function that yields a fresh one for each connection attempt. */
export type WsRelayToken = string | (() => string | Promise<string>);

/** How a node retries after a lost or failed connection (exponential backoff with jitter). */
export interface WsRelayReconnectOptions {
  /**
   * Delay before the first retry, in ms.
   * @default 100
   */
  initialDelayMs?: number;
  /**
   * Upper bound of the delay between retries, in ms.
   * @default 5000
   */
  maxDelayMs?: number;
  /**
   * Factor applied to the delay after each failed attempt.
   * @default 2
   */
  multiplier?: number;
  /**
   * Share of each delay that is randomized (0 = none, 1 = anywhere from 0 to the delay).
   * @default 0.5
   */
  jitter?: number;
}

/** How a node uses several relay URLs. */
export type WsRelayMode = 'failover' | 'all';

/** Where the token travels at the upgrade. */
export type WsRelayTokenCarrier = 'header' | 'query' | 'protocol';

/** TLS settings for `wss://` relays (passed to Node's TLS client). */
export interface WsRelayTlsOptions {
  /** Trusted CA certificate(s), PEM; for a relay with a private CA or a self-signed certificate. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Client certificate (mutual TLS), PEM. */
  cert?: string | Buffer;
  /** Client private key (mutual TLS), PEM. */
  key?: string | Buffer;
  /** Server name for SNI and certificate checks, when it differs from the URL's host. */
  servername?: string;
  /**
   * Verify the relay's certificate. Turning this off defeats TLS; give `ca` instead.
   * @default true
   */
  rejectUnauthorized?: boolean;
}

/**
 * The part of a prom-client `Registry` the metrics use (prom-client itself is
 * an optional peer dependency: its types are not needed to compile an app).
 */
export interface WsRelayMetricsRegistry {
  registerMetric(metric: never): void;
  getSingleMetric(name: string): unknown;
}

/**
 * Prometheus metrics of a client or a strategy, registered in the app's own
 * prom-client `Registry` (so its `/metrics` serves them). Needs the
 * `prom-client` package. Clients (or strategies) given the same registry and
 * prefix share their metrics: the counters add up, the gauges sum over them.
 */
export interface WsRelayMetricsOptions {
  /** The prom-client `Registry` to register the metrics in. */
  registry: WsRelayMetricsRegistry;
  /**
   * Start of every metric's name, followed by `client_` or `server_`
   * (`wsrelay_client_calls_total`).
   * @default 'wsrelay_'
   */
  prefix?: string;
  /**
   * Upper bounds of the duration histograms' buckets, in seconds, increasing.
   * @default [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
   */
  buckets?: number[];
}

/** Options shared by `WsRelayStrategy` and `WsRelayClient`. */
export interface WsRelayConnectionOptions {
  /** Relay URLs (`ws://` or `wss://`); at least one. On failure the next one is tried. */
  urls: string[];
  /**
   * JWT for a relay with auth. A function is called for every connection
   * attempt and when the relay warns that the token expires (the fresh token
   * is then sent in-band, without reconnecting).
   * @default undefined (no token)
   */
  token?: WsRelayToken;
  /**
   * How the token travels at the upgrade: `Authorization: Bearer` header,
   * `?token=` query parameter, or an `access_token.<jwt>` WebSocket subprotocol
   * (what browsers must use).
   * @default 'header'
   */
  tokenCarrier?: WsRelayTokenCarrier;
  /** TLS settings for `wss://` URLs. */
  tls?: WsRelayTlsOptions;
  /**
   * This node's id as the relay and other nodes see it.
   * @default a random UUID
   */
  nodeId?: string;
  /**
   * Heartbeat interval, in ms (the relay's, when it is shorter). The relay
   * pings a node it has not heard from for an interval; the node pings a
   * relay it has not heard from for two, and takes it for dead when nothing
   * arrives for half an interval more.
   * @default 10000
   */
  heartbeatIntervalMs?: number;
  /**
   * How long `listen()` / `connect()` (and calls made while disconnected) wait
   * for a relay connection before failing with RELAY_UNAVAILABLE, in ms.
   * @default 10000
   */
  connectTimeoutMs?: number;
  /**
   * How long the relay may take to answer HELLO with WELCOME, in ms.
   * @default 5000
   */
  handshakeTimeoutMs?: number;
  /**
   * Calls that may wait for a relay connection at once while there is none
   * (each waits up to `connectTimeoutMs`); more fail at once with RELAY_UNAVAILABLE.
   * @default 1000
   */
  maxOfflineQueue?: number;
  /**
   * `'failover'`: one connection, moving to the next URL when it drops.
   * `'all'`: a connection to every URL, for redundant independent relays (a
   * provider is reachable through any of them; a client sends through any
   * connected one, in turn).
   * @default 'failover'
   */
  mode?: WsRelayMode;
  /** Reconnect backoff. */
  reconnect?: WsRelayReconnectOptions;
  /** Nest serializer for outgoing packets. @default WsRelayRecordSerializer (client), IdentitySerializer (strategy) */
  serializer?: Serializer;
  /** Nest deserializer for incoming packets. @default Nest's incoming request / response deserializer */
  deserializer?: Deserializer;
  /**
   * OpenTelemetry spans (through `@opentelemetry/api`, which must then be
   * installed; with no SDK registered they cost next to nothing): a client's
   * span for each call and emit, whose context travels in the W3C
   * `traceparent` / `tracestate` headers, and a provider's span for each
   * request and event it handles, a child of the caller's, active while its
   * handler runs.
   * @default false
   */
  tracing?: boolean;
  /**
   * Prometheus metrics, in the app's prom-client registry; `listen()` /
   * `connect()` fail when prom-client cannot be loaded.
   * @default undefined (no metrics, and prom-client is not loaded)
   */
  metrics?: WsRelayMetricsOptions;
}

/** Options of `WsRelayStrategy` (a provider). */
export interface WsRelayStrategyOptions extends WsRelayConnectionOptions {
  /**
   * A label for this node shown in discovery.
   * @default undefined
   */
  service?: string;
  /**
   * Queue group: nodes with the same queue share events (one copy per group).
   * @default undefined (every matching node receives every event)
   */
  queue?: string;
  /**
   * How long `close()` waits, after asking the relay to route nothing new
   * here, for the handlers in flight to finish, in ms; 0 closes at once
   * (in-flight callers get PROVIDER_DISCONNECTED).
   * @default 10000
   */
  drainTimeoutMs?: number;
  /**
   * Flow control of streamed results: bytes of a handler's Observable's
   * values that may wait here for their caller's credit (an Observable cannot
   * be paused). Past it the stream stops and its caller gets a
   * SLOW_CONSUMER error; other calls are not affected. A handler that returns
   * an async iterable is pulled only as the caller reads, and never fills it.
   * @default 67108864 (64 MiB)
   */
  maxStreamBufferedBytes?: number;
}

/** Options of `WsRelayClient` (a caller). */
export interface WsRelayClientOptions extends WsRelayConnectionOptions {
  /**
   * Deadline of each call, in ms, unless a record sets its own (with
   * `eventAck: 'handlers'`, also how long an `emit()` waits for the handlers).
   * @default 30000
   */
  timeoutMs?: number;
  /**
   * When `emit()` completes, unless a record sets it: `'relay'` once the relay
   * accepted the event and counted its recipients; `'handlers'` once every
   * receiving handler has finished.
   * @default 'relay'
   */
  eventAck?: WsRelayEventAckMode;
  /**
   * Calls, emits, WAITs and discoveries in flight at once; more fail at once
   * with RATE_LIMITED.
   * @default 10000
   */
  maxInFlight?: number;
  /**
   * Bytes a relay connection may hold unsent (the relay not reading); new
   * calls and emits fail at once with RATE_LIMITED past it.
   * @default 16777216 (16 MiB)
   */
  maxBufferedBytes?: number;
  /**
   * Flow control of streamed results: how many values a provider may send
   * ahead of this client's reading, per call. The client grants more as its
   * subscriber takes them (half a window at a time), so a slow reader slows
   * its own stream, not its connection. 0 turns flow control off (the
   * provider sends as fast as it produces). Used with relays and providers
   * that speak it (they agree on it at the handshake); others stream as before.
   * @default 64
   */
  streamWindow?: number;
}
