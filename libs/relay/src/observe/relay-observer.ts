import type { WebSocketMessage } from '@wsrelay/protocol';

/** Why the relay refused a connection at its upgrade, or a frame: a small fixed set (a metric label). */
export enum RefusalReason {
  /** No token, or one that does not verify (also a refused in-band refresh). */
  Auth,
  /** A disallowed Origin, or what the token does not permit. */
  Forbidden,
  /** Over a quota or limit: connections per address or subject, in-flight requests, budgets, the frame rate. */
  Rate,
  /** A frame over `maxPayloadBytes`. */
  Size,
  /** A frame that cannot be decoded or used. */
  BadFrame,
  /** The relay is full or draining. */
  Unavailable,
  /** A HELLO refused for its protocol versions or its node id. */
  Handshake,
  Other,
}

/** `RefusalReason` as metrics and logs name it. */
export const REFUSAL_REASONS: readonly string[] = ['auth', 'forbidden', 'rate', 'size', 'bad_frame', 'unavailable', 'handshake', 'other'];

/** How a request of one of this relay's nodes ended. */
export enum RequestOutcome {
  /** Its provider completed it. */
  Ok,
  /** Its provider's handler failed it. */
  Error,
  Timeout,
  /** Its caller cancelled it. */
  Cancelled,
  ProviderDisconnected,
  MicroserviceOffline,
  RelayUnavailable,
  /** A flow-controlled stream its provider sent past its credit. */
  SlowConsumer,
  RateLimited,
  Forbidden,
  /** Its caller's connection closed first. */
  CallerGone,
  Other,
}

/** `RequestOutcome` as metrics name it. */
export const REQUEST_OUTCOMES: readonly string[] = [
  'ok',
  'error',
  'timeout',
  'cancelled',
  'provider_disconnected',
  'microservice_offline',
  'relay_unavailable',
  'slow_consumer',
  'rate_limited',
  'forbidden',
  'caller_gone',
  'other',
];

/** Why a copy of an event went nowhere. */
export enum EventDrop {
  /** An event published here that no node subscribes to (counted once per event). */
  NoSubscriber,
  /** A copy for a subscriber whose connection or relay could not be reached (counted per copy). */
  Unreachable,
}

export const EVENT_DROPS: readonly string[] = ['no_subscriber', 'unreachable'];

export type ConnectionRole = 'server' | 'client';

/** Who sent a refused frame (the connection's session id). */
export interface FrameSender {
  readonly sessionId: string;
}

export interface AcceptedConnection {
  role: ConnectionRole;
  session: string;
  /** The token's subject (null without auth or `sub`). */
  subject: string | null;
  address: string | undefined;
}

/** An upgrade refused before a socket opened. Its message names the reason, never the token. */
export interface RefusedConnection {
  reason: RefusalReason;
  status: number;
  code: string;
  message: string;
  address: string;
}

export interface AnnouncedNode {
  nodeId: string;
  tenant: string;
  role: ConnectionRole;
  patterns: number;
  subscriptions: number;
  queue: string | null;
}

export interface GoneNode {
  nodeId: string;
  tenant: string;
  /** 'disconnected', or 'shutdown' when the relay let go of it. */
  why: 'disconnected' | 'shutdown';
}

export interface SlowConsumer {
  /** Its node id (its session id before HELLO). */
  name: string;
  reason: string;
}

export interface DrainStart {
  /** Requests and handler-acked event copies in flight. */
  inFlight: number;
  nodes: number;
  drainTimeoutMs: number;
}

export interface DrainEnd {
  tookMs: number;
  /** What was still in flight when it ended (past its timeout). */
  left: number;
}

export interface ClusterMember {
  relayId: string;
}

export interface LostMember extends ClusterMember {
  /** Why; undefined when it went with the backplane (the backplane's loss says why). */
  why: string | undefined;
  nodes: number;
}

export interface BackplaneChange {
  backplane: string;
  /** Why it went down. */
  why?: string;
}

/**
 * Where the relay's work is seen: what metrics count and logs tell. The core
 * calls it at each point. The traffic points run per frame or per request:
 * an implementation does no more there than count (no allocation, no lookup
 * by name), and reads the numbers out later. The lifecycle points are rare,
 * and carry what a log line says.
 */
export interface RelayObserver {
  /** A frame taken in, decoded (`type`: its FrameType). */
  frameIn(type: number): void;
  /** A frame written to a connection, WebSocket header included (see Session.send). */
  frameOut(message: WebSocketMessage): void;
  /** A frame refused (answered with ERROR `code`, or by a close). */
  frameRefused(reason: RefusalReason, code: string, message: string, from: FrameSender): void;
  /** A request of one of this relay's nodes went to its provider (here or on another relay). */
  requestRouted(): void;
  /** A routed request of one of this relay's nodes ended; `routedAt` is `performance.now()` when it was routed. */
  requestSettled(outcome: RequestOutcome, routedAt: number): void;
  /** A request of one of this relay's nodes ended without being routed. */
  requestFailed(outcome: RequestOutcome): void;
  /** An event published by one of this relay's nodes. */
  eventPublished(): void;
  eventDropped(reason: EventDrop, copies: number): void;
  /** A handler-acked copy given to another member of its queue group. */
  eventRedelivered(): void;

  connectionAccepted(c: AcceptedConnection): void;
  connectionClosed(role: ConnectionRole): void;
  connectionRefused(c: RefusedConnection): void;
  nodeAnnounced(n: AnnouncedNode): void;
  nodeGone(n: GoneNode): void;
  slowConsumerClosed(c: SlowConsumer): void;
  drainStarted(d: DrainStart): void;
  drainEnded(d: DrainEnd): void;
  clusterMemberJoined(m: ClusterMember): void;
  clusterMemberLost(m: LostMember): void;
  backplaneUp(b: BackplaneChange): void;
  backplaneDown(b: BackplaneChange): void;
}

/** The points a log tells of (a listener takes those it wants). */
export type RelayLifecycleListener = Partial<
  Pick<
    RelayObserver,
    | 'frameRefused'
    | 'connectionAccepted'
    | 'connectionRefused'
    | 'nodeAnnounced'
    | 'nodeGone'
    | 'slowConsumerClosed'
    | 'drainStarted'
    | 'drainEnded'
    | 'clusterMemberJoined'
    | 'clusterMemberLost'
    | 'backplaneUp'
    | 'backplaneDown'
  >
>;

/** What the cluster reports. */
export type ClusterObserver = Pick<RelayObserver, 'clusterMemberJoined' | 'clusterMemberLost' | 'backplaneUp' | 'backplaneDown'>;
