import type { ClusterStatus } from '../cluster/relay-cluster.js';
import type { RelayBudgetsStatus } from './relay-budgets.js';

/** Whether the relay should get traffic: what the public `GET /status` answers (200, or 503 with the reason). */
export interface RelayReadiness {
  ready: boolean;
  /** Why not: 'draining', 'cluster backplane down' or 'cluster not synced'. */
  reason?: string;
}

/** A relay's health in detail (`GET /status/detail` of `createRelayApp`, with the status token). */
export interface RelayStatus {
  relayId: string;
  /** Open WebSocket connections. */
  connections: number;
  /** Connections that completed HELLO. */
  nodes: number;
  /** Requests, handler-acked event copies, WAITs and calls held in the startup grace, in flight through this relay. */
  inFlight: number;
  /** This process's memory. */
  memory: { rssBytes: number; heapUsedBytes: number };
  cluster: ClusterStatus;
  /** The relay-wide budgets: bytes kept of each kind, the limit, and what was refused for want of room. */
  budgets: RelayBudgetsStatus;
  readiness: RelayReadiness;
}

/**
 * What the relay holds, counted (`RelayCore.diagnostics()`): for tests,
 * debugging and leak hunts. Every count returns to its baseline once the
 * connections that caused it are gone.
 */
export interface RelayDiagnostics {
  connections: number;
  /** Nodes of this relay (connections that said HELLO). */
  localNodes: number;
  worlds: WorldDiagnostics[];
  /** Requests in flight, each counted once. */
  requests: number;
  /** WAITs pending, requests held in the startup grace, and patterns they wait for. */
  waits: { waits: number; held: number; patterns: number };
  /** Copies of handler-acked events in flight (driven here, or made here for other relays). */
  eventCopies: number;
  /** Node ids bound to token subjects. */
  reservations: number;
  /** RESPONSE, CANCEL and HANDLED frames that named nothing routed to their sender. */
  droppedFrames: number;
  budgets: RelayBudgetsStatus;
  /** Connections backed up now: past a sixteenth of maxBufferedBytes unsent, or holding unsent bytes and taking none since the last heartbeat beat. */
  stalled: number;
}

/** One tenant's routing. */
export interface WorldDiagnostics {
  tenant: string;
  /** Node ids in routing (this relay's and other relays'), sorted. */
  nodes: string[];
  /** RPC patterns with at least one provider. */
  providedPatterns: number;
  subscriptions: number;
  /** Queue groups whose turn is kept. */
  queueGroups: number;
}

/** One node as the relay routes it (`RelayCore.nodeDiagnostics()`). */
export interface NodeDiagnostics {
  /** On this relay (false: on another relay of the cluster). */
  local: boolean;
  /** Holds its node id in routing. */
  routed: boolean;
  /** Requests in flight at it, and (local nodes) requests it made and WAITs it has. */
  requestsIn: number;
  requestsOut: number;
  waits: number;
  /** Local nodes: bytes written to it and not yet sent; past its budget it is closed as a slow consumer. */
  bufferedBytes: number;
  slow: boolean;
  closedAsSlowConsumer: boolean;
}
