/**
 * Every frame of the wsrelay protocol. On the wire a frame is one MessagePack
 * array whose first element is its type; optional trailing fields may be
 * left off. Payloads are nested MessagePack carried as `bin`, so a relay
 * routes on the header and forwards payload bytes untouched.
 * docs/protocol.md describes each field.
 */
export enum FrameType {
  Hello = 1,
  Welcome = 2,
  Request = 3,
  Response = 4,
  Cancel = 5,
  Event = 6,
  Ack = 7,
  Error = 8,
  Ping = 9,
  Pong = 10,
  Wait = 11,
  Discover = 12,
  Nodes = 13,
  TokenExpiring = 14,
  Auth = 15,
  Authorized = 16,
  GoAway = 17,
  Drain = 18,
  Handled = 19,
  Credit = 20,
}

/** Bits of a RESPONSE frame's `flags`. */
export const ResponseFlag = {
  /** The stream is complete; no further RESPONSE for this id follows. */
  DONE: 1,
  /** The payload is the handler's error (implies DONE). */
  ERROR: 2,
} as const;

/** Bits of an EVENT frame's `flags`. */
export const EventFlag = {
  /**
   * Emitter → relay: ACK only once every receiving handler has finished (ERROR
   * HANDLER_FAILED if one threw). Relay → node: answer with HANDLED.
   */
  ACK_HANDLERS: 1,
} as const;

/** First frame of a node: who it is and what it serves. */
export interface HelloFrame {
  type: FrameType.Hello;
  /** Protocol versions the node speaks. */
  versions: number[];
  nodeId: string;
  service: string | null;
  /** Normalized RPC patterns this node answers. */
  patterns: string[];
  /** Event patterns (with `*` / `>` wildcards) this node subscribes to. */
  events: string[];
  /** Queue group for event load sharing. */
  queue: string | null;
  /** Optional features the node speaks (see `Capability`); the relay answers with those both speak. */
  caps?: string[];
}

/** The relay's answer to HELLO. */
export interface WelcomeFrame {
  type: FrameType.Welcome;
  version: number;
  relayId: string;
  sessionId: string;
  nodeId: string;
  maxPayloadBytes: number;
  heartbeatIntervalMs: number;
  /** The capabilities of the node's HELLO that the relay speaks too: only these may be used on this connection. */
  caps?: string[];
}

/**
 * An RPC call. Sent by a caller, `peer` is the target node id (or null for
 * round-robin); delivered by the relay, `peer` is the caller's node id and
 * `id` is the relay's id for this delivery.
 */
export interface RequestFrame {
  type: FrameType.Request;
  id: number;
  pattern: string;
  payload: Uint8Array;
  /** Time left before the deadline, in ms. */
  timeoutMs: number;
  peer: string | null;
  /** Opaque MessagePack (headers and Nest metadata), forwarded untouched. */
  ext: Uint8Array | null;
  /** The caller's verified claims as MessagePack (relay to provider only). */
  claims: Uint8Array | null;
  /**
   * Flow control (capability `credit`): how many RESPONSEs with a value the
   * provider may send before it is granted more with CREDIT. Left off: none.
   */
  window?: number;
}

/** One value, the completion or the error of an RPC stream. */
export interface ResponseFrame {
  type: FrameType.Response;
  id: number;
  flags: number;
  /** Present when the packet carries a value or an error. */
  payload: Uint8Array | null;
}

/** The caller no longer wants the result; the relay passes it to the provider. */
export interface CancelFrame {
  type: FrameType.Cancel;
  id: number;
}

/**
 * An event. `peer` as in REQUEST (a target node, or the emitter's node id).
 * From the emitter `id` is its own (0: no ACK wanted); delivered by the relay
 * with ACK_HANDLERS, `id` is the relay's id for this delivery, which HANDLED names.
 */
export interface EventFrame {
  type: FrameType.Event;
  id: number;
  pattern: string;
  payload: Uint8Array;
  peer: string | null;
  ext: Uint8Array | null;
  claims: Uint8Array | null;
  /** EventFlag bits (0 when left off). */
  flags?: number;
  /** Emitter → relay, with ACK_HANDLERS: how long to wait for the handlers, in ms. */
  timeoutMs?: number;
  /** Relay → node, with ACK_HANDLERS: which delivery attempt this is, from 1. */
  attempt?: number;
}

/** The relay accepted an EVENT (or a WAIT is satisfied): how many received it. */
export interface AckFrame {
  type: FrameType.Ack;
  id: number;
  recipients: number;
}

/** A failure made by the relay; `id` 0 when it concerns no single request. */
export interface ErrorFrame {
  type: FrameType.Error;
  id: number;
  code: string;
  message: string;
  /** MessagePack details for the code (HANDLER_FAILED: each failed delivery). */
  details?: Uint8Array | null;
}

export interface PingFrame {
  type: FrameType.Ping;
}

export interface PongFrame {
  type: FrameType.Pong;
}

/** Ask the relay to ACK once a provider of `pattern` is online. */
export interface WaitFrame {
  type: FrameType.Wait;
  id: number;
  pattern: string;
  timeoutMs: number;
}

/** Ask the relay for the nodes it knows. */
export interface DiscoverFrame {
  type: FrameType.Discover;
  id: number;
}

/** A node as discovery shows it. */
export interface NodeInfo {
  nodeId: string;
  service: string | null;
  patterns: string[];
  events: string[];
  queue: string | null;
}

export interface NodesFrame {
  type: FrameType.Nodes;
  id: number;
  nodes: NodeInfo[];
}

/** The relay's warning that the connection's token expires soon; the node answers with AUTH. */
export interface TokenExpiringFrame {
  type: FrameType.TokenExpiring;
  /** When the token expires, in ms since the epoch; the relay closes the connection then (4401). */
  expiresAt: number;
}

/** A fresh token for a live connection (same subject and tenant), sent in-band. */
export interface AuthFrame {
  type: FrameType.Auth;
  /** The JWT as UTF-8 bytes. */
  token: Uint8Array;
}

/** The relay accepted an AUTH token; its permissions apply from now on. */
export interface AuthorizedFrame {
  type: FrameType.Authorized;
  /** When the new token expires, in ms since the epoch (0: it does not). */
  expiresAt: number;
}

/** The relay is shutting down: connect elsewhere now; requests in flight here still complete, for up to `drainMs`. */
export interface GoAwayFrame {
  type: FrameType.GoAway;
  reason: string;
  drainMs: number;
}

/** The node is shutting down: route no new requests or events to it. The relay answers ACK with the same id. */
export interface DrainFrame {
  type: FrameType.Drain;
  id: number;
}

/** A node finished handling a delivered EVENT (relay's id); `error` is the handler's error, as MessagePack. */
export interface HandledFrame {
  type: FrameType.Handled;
  id: number;
  error: Uint8Array | null;
}

/** More RESPONSEs with a value that a flow-controlled request's provider may send (capability `credit`). */
export interface CreditFrame {
  type: FrameType.Credit;
  id: number;
  credit: number;
}

export type Frame =
  | HelloFrame
  | WelcomeFrame
  | RequestFrame
  | ResponseFrame
  | CancelFrame
  | EventFrame
  | AckFrame
  | ErrorFrame
  | PingFrame
  | PongFrame
  | WaitFrame
  | DiscoverFrame
  | NodesFrame
  | TokenExpiringFrame
  | AuthFrame
  | AuthorizedFrame
  | GoAwayFrame
  | DrainFrame
  | HandledFrame
  | CreditFrame;

/** Lower-case names of the frame types (the relay gateway's message names). */
export const FRAME_NAMES: Readonly<Record<FrameType, string>> = {
  [FrameType.Hello]: 'hello',
  [FrameType.Welcome]: 'welcome',
  [FrameType.Request]: 'request',
  [FrameType.Response]: 'response',
  [FrameType.Cancel]: 'cancel',
  [FrameType.Event]: 'event',
  [FrameType.Ack]: 'ack',
  [FrameType.Error]: 'error',
  [FrameType.Ping]: 'ping',
  [FrameType.Pong]: 'pong',
  [FrameType.Wait]: 'wait',
  [FrameType.Discover]: 'discover',
  [FrameType.Nodes]: 'nodes',
  [FrameType.TokenExpiring]: 'token_expiring',
  [FrameType.Auth]: 'auth',
  [FrameType.Authorized]: 'authorized',
  [FrameType.GoAway]: 'goaway',
  [FrameType.Drain]: 'drain',
  [FrameType.Handled]: 'handled',
  [FrameType.Credit]: 'credit',
};
