import { MAX_CREDIT, subscriptionProblem } from '@wsrelay/protocol';
import type { WebSocketConstructor } from './socket.js';

/** A bearer token, or a function that yields a fresh one for each connection attempt and each refresh. */
export type RelayClientToken = string | (() => string | Promise<string>);

/** How the client retries after a lost or failed connection (exponential backoff with jitter). */
export interface RelayClientReconnectOptions {
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
   * Share of each delay that is randomized (0: none, 1: anywhere from 0 to the delay).
   * @default 0.5
   */
  jitter?: number;
}

/** Options of a `RelayClient`. */
export interface RelayClientOptions {
  /** The relay's WebSocket URL, e.g. `wss://relay.example.com/relay`. */
  url: string;
  /**
   * A JWT for relays that require one, offered as the subprotocol
   * `access_token.<jwt>` next to `wsrelay.v1`. A function is asked again on
   * every (re)connect and when the relay warns that the token expires (the
   * fresh one is then sent on the open connection).
   * @default none
   */
  token?: RelayClientToken;
  /**
   * This client's node id, unique among the relay's live connections.
   * @default crypto.randomUUID()
   */
  nodeId?: string;
  /**
   * Deadline of each call, stream, `emit` with `ack: 'handlers'` and `waitFor`, in ms
   * (the time it may wait for a connection included).
   * @default 30000
   */
  timeoutMs?: number;
  /**
   * Heartbeat interval, in ms; the relay's, when shorter, applies.
   * @default 10000
   */
  heartbeatIntervalMs?: number;
  /** Retries after a lost or failed connection. */
  reconnect?: RelayClientReconnectOptions;
  /**
   * Most streamed values the relay may send before the reader takes them
   * (credit is granted half a window at a time as the iterator pulls); 0 for
   * no flow control.
   * @default 64
   */
  streamWindow?: number;
  /**
   * Event subjects to receive (wildcards `*` and `>`), delivered to `onEvent` listeners.
   * @default []
   */
  subscriptions?: string[];
  /**
   * The WebSocket class (on Node 20, the `ws` package's).
   * @default globalThis.WebSocket
   */
  WebSocket?: WebSocketConstructor;
}

export const DEFAULT_TIMEOUT_MS = 30_000;
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 10_000;
export const DEFAULT_STREAM_WINDOW = 64;
export const DEFAULT_RECONNECT_INITIAL_DELAY_MS = 100;
export const DEFAULT_RECONNECT_MAX_DELAY_MS = 5_000;
export const DEFAULT_RECONNECT_MULTIPLIER = 2;
export const DEFAULT_RECONNECT_JITTER = 0.5;
/** How long the relay has to open the socket and answer HELLO, in ms. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
/** The longest deadline the protocol carries (`timeoutMs`), in ms. */
export const MAX_TIMEOUT_MS = 0x7fff_ffff;

/** The options with their defaults, merged once. */
export interface ClientConfig {
  url: string;
  token: RelayClientToken | undefined;
  nodeId: string;
  timeoutMs: number;
  heartbeatIntervalMs: number;
  reconnect: Required<RelayClientReconnectOptions>;
  streamWindow: number;
  subscriptions: string[];
  WebSocket: WebSocketConstructor;
}

/** Merges the options with their defaults and validates them: a TypeError names each option that is wrong. */
export function resolveOptions(o: RelayClientOptions): ClientConfig {
  const config: ClientConfig = {
    url: o.url,
    token: o.token,
    nodeId: o.nodeId ?? randomId(),
    timeoutMs: o.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    heartbeatIntervalMs: o.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS,
    reconnect: {
      initialDelayMs: o.reconnect?.initialDelayMs ?? DEFAULT_RECONNECT_INITIAL_DELAY_MS,
      maxDelayMs: o.reconnect?.maxDelayMs ?? DEFAULT_RECONNECT_MAX_DELAY_MS,
      multiplier: o.reconnect?.multiplier ?? DEFAULT_RECONNECT_MULTIPLIER,
      jitter: o.reconnect?.jitter ?? DEFAULT_RECONNECT_JITTER,
    },
    streamWindow: o.streamWindow ?? DEFAULT_STREAM_WINDOW,
    subscriptions: [...(o.subscriptions ?? [])],
    WebSocket: (o.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket)!,
  };
  const problems = optionProblems(config);
  if (problems.length > 0) throw new TypeError(`RelayClient: ${problems.join('; ')}`);
  return config;
}

function optionProblems(c: ClientConfig): string[] {
  const r = c.reconnect;
  const problems = [
    /^wss?:\/\//.test(String(c.url)) ? null : 'url must be a ws:// or wss:// URL',
    c.token === undefined || typeof c.token === 'string' || typeof c.token === 'function' ? null : 'token must be a string or a function',
    typeof c.nodeId === 'string' && c.nodeId.length > 0 ? null : 'nodeId must be a non-empty string',
    timeoutProblem('timeoutMs', c.timeoutMs),
    integerIn(c.heartbeatIntervalMs, 10, MAX_TIMEOUT_MS) ? null : `heartbeatIntervalMs must be an integer from 10 to ${MAX_TIMEOUT_MS}`,
    integerIn(c.streamWindow, 0, MAX_CREDIT) ? null : `streamWindow must be an integer from 0 to ${MAX_CREDIT}`,
    r.initialDelayMs >= 1 ? null : 'reconnect.initialDelayMs must be 1 or more',
    r.maxDelayMs >= r.initialDelayMs ? null : 'reconnect.maxDelayMs must not be below reconnect.initialDelayMs',
    r.multiplier >= 1 ? null : 'reconnect.multiplier must be 1 or more',
    r.jitter >= 0 && r.jitter <= 1 ? null : 'reconnect.jitter must be from 0 to 1',
    typeof c.WebSocket === 'function' ? null : "WebSocket must be given where there is no global WebSocket (on Node 20: the ws package's)",
    ...c.subscriptions.map(s =>
      typeof s === 'string' && s.length > 0 ? subscriptionProblem(s) : 'subscriptions must be non-empty strings',
    ),
  ];
  return problems.filter((p): p is string => p !== null);
}

/** What is wrong with a deadline (an option or a call's), or null. */
export function timeoutProblem(name: string, value: number): string | null {
  return integerIn(value, 1, MAX_TIMEOUT_MS) ? null : `${name} must be an integer from 1 to ${MAX_TIMEOUT_MS}`;
}

function integerIn(value: number, min: number, max: number): boolean {
  return Number.isInteger(value) && value >= min && value <= max;
}

/** A random UUID: crypto.randomUUID() where the page is a secure context, else one made from getRandomValues(). */
function randomId(): string {
  const crypto = globalThis.crypto;
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = Array.from(b, x => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
