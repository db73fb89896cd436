import type { ClusterObserver } from '../observe/relay-observer.js';
import type { Backplane } from './backplane.js';
import type { ClusterMessageType, ClusterNode, Msg } from './cluster-protocol.js';
import type { RemoteNode, RemoteRelay } from './remote.js';

/** How a relay takes part in its cluster. */
export interface ClusterSettings {
  /** This relay's id (its WELCOME's and status's), sent with its heartbeats. */
  relayId: string;
  backplane: Backplane;
  /** Interval of the relays' heartbeat, in ms. */
  heartbeatIntervalMs: number;
  /** A relay silent this long is gone with its nodes (and this relay's own heartbeat must come back within it). */
  timeoutMs: number;
  /** How long the id of a node whose relay is gone stays bound to its subject, in ms. */
  reservationMs: number;
  /** The largest message (a chunked one put together) it takes. @default DEFAULT_CLUSTER_MAX_MESSAGE_BYTES */
  maxMessageBytes?: number;
  /** Messages larger than this go in chunks (smaller in tests). @default CLUSTER_CHUNK_BYTES */
  chunkBytes?: number;
  /** Hears of relays joining and leaving, and of the backplane going down and up (metrics, logs). */
  observer?: ClusterObserver;
}

/** What the cluster needs from the router: its nodes, and where remote events go. */
export interface ClusterListener {
  /** This relay's established nodes, for a snapshot. */
  localNodes(): ClusterNode[];
  remoteNodeUp(node: RemoteNode): void;
  /** `graceful`: it drained, and its requests in flight complete; `reservedForMs`: how long its id stays bound to its subject. */
  remoteNodeDown(node: RemoteNode, graceful: boolean, reservedForMs: number): void;
  /** The same claim announced again with other patterns or subscriptions (a token refresh withdrew some). */
  remoteNodeChanged(node: RemoteNode, info: ClusterNode): void;
  /**
   * A relay is gone, or started over (a SYNC from a relay already known: it
   * forgot what was in flight with this one): settle what was in flight with it.
   */
  relayGone(relay: RemoteRelay): void;
  remoteRequest(relay: RemoteRelay, m: Msg<ClusterMessageType.Request>): void;
  remoteResponse(relay: RemoteRelay, m: Msg<ClusterMessageType.Response>): void;
  remoteCancel(relay: RemoteRelay, m: Msg<ClusterMessageType.Cancel>): void;
  remoteCredit(relay: RemoteRelay, m: Msg<ClusterMessageType.Credit>): void;
  remoteError(relay: RemoteRelay, m: Msg<ClusterMessageType.Error>): void;
  remoteEventCopies(relay: RemoteRelay, m: Msg<ClusterMessageType.EventCopies>): void;
  remoteEvent(relay: RemoteRelay, m: Msg<ClusterMessageType.Event>): void;
  remoteHandled(relay: RemoteRelay, m: Msg<ClusterMessageType.Handled>): void;
}

/** What `RelayCluster.status()` reports. */
export interface ClusterStatus {
  /** This relay process's id on the backplane. */
  instanceId: string;
  backplane: string;
  /** The backplane works (this relay hears its own heartbeat): remote relays are reachable. */
  healthy: boolean;
  /**
   * Healthy, and it has the nodes of every relay it knows since it (re)joined:
   * `timeoutMs` passed (each live relay has been heard) and each has sent its
   * snapshot; or, at the latest, 10 × `timeoutMs` after it became healthy
   * (logging the relays it could not sync with). Until then the relay is not
   * ready. Once synced it stays so until the backplane is lost: relays that
   * join later, or whose transfers fail, do not undo it.
   */
  synced: boolean;
  /** Chunked messages on their way to other relays and coming from them, with their bytes. */
  transfers: { sending: number; sendingBytes: number; receiving: number; receivingBytes: number };
  /**
   * The relays it knows. `synced`: it has that relay's nodes; `syncTrouble`: why not, when something went wrong (its
   * snapshot was refused, or a transfer from it stalled and it was met again, resyncing in the background).
   */
  relays: Array<{ relayId: string; instanceId: string; nodes: number; synced: boolean; syncTrouble?: string; lastSeenMsAgo: number }>;
}
