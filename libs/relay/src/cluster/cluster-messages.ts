/** Messages relays exchange over the backplane. */
export enum ClusterMessageType {
  /** Every heartbeat: the sender is alive (looped back: the backplane works), with `sentAt` (trailing; 0 when not sent). */
  Beat = 1,
  /** Broadcast at start and after a backplane outage: "send me your nodes". */
  Sync = 2,
  /** Direct answer to SYNC (or to a relay seen for the first time): every node of the sender. */
  Snapshot = 3,
  NodeUp = 4,
  NodeDown = 5,
  /** Broadcast on shutdown: forget the sender's nodes now. */
  Bye = 6,
  /** A request for a provider on the receiving relay. */
  Request = 7,
  /** A value, completion or error of a forwarded request, back to the caller's relay. */
  Response = 8,
  /** The caller no longer wants a forwarded request. */
  Cancel = 9,
  /** A failure of a forwarded request made by the provider's relay (PROVIDER_DISCONNECTED, ...). */
  Error = 10,
  /** An event for some nodes of the receiving relay. */
  Event = 11,
  /** A node handled (or could not be given) a copy of an event with handler acks. */
  Handled = 12,
  /** Copies of an event with handler acks for some nodes of the receiving relay, each answered with HANDLED. */
  EventCopies = 13,
  /** A piece of a message too large to go as one (see cluster-transfers.ts). */
  Chunk = 14,
  /** The receiver of a chunked message has `received` chunks and takes more (-1: it refuses the message). */
  Pull = 15,
  /** The caller of a forwarded flow-controlled request grants its provider more RESPONSEs. */
  Credit = 16,
}

/** A node as presence carries it. */
export interface ClusterNode {
  tenant: string;
  nodeId: string;
  service: string | null;
  patterns: readonly string[];
  events: readonly string[];
  queue: string | null;
  /** The token subject that holds the node id, if any. */
  subject: string | null;
  /** When its relay accepted it (that relay's clock): the older claim of a node id wins. */
  since: number;
  /** A passive client (it subscribes but never answers); absent: a server. */
  passive?: boolean;
}

export type ClusterMessage =
  | { type: ClusterMessageType.Beat; from: string; relayId: string; sentAt: number }
  | { type: ClusterMessageType.Sync; from: string; relayId: string }
  | { type: ClusterMessageType.Snapshot; from: string; relayId: string; nodes: ClusterNode[] }
  | { type: ClusterMessageType.NodeUp; from: string; node: ClusterNode }
  | {
      type: ClusterMessageType.NodeDown;
      from: string;
      tenant: string;
      nodeId: string;
      /** It drained: requests in flight to it still complete. */
      graceful: boolean;
      /** The token subject its node id stays bound to, for `reservedForMs`. */
      subject: string | null;
      reservedForMs: number;
    }
  | { type: ClusterMessageType.Bye; from: string }
  | {
      type: ClusterMessageType.Request;
      from: string;
      fwdId: number;
      tenant: string;
      nodeId: string;
      pattern: string;
      payload: Uint8Array;
      timeoutMs: number;
      callerNodeId: string | null;
      ext: Uint8Array | null;
      claims: Uint8Array | null;
      /** The caller's stream window (0: not flow-controlled). */
      window: number;
    }
  | { type: ClusterMessageType.Response; from: string; fwdId: number; flags: number; payload: Uint8Array | null }
  | { type: ClusterMessageType.Cancel; from: string; fwdId: number }
  | { type: ClusterMessageType.Credit; from: string; fwdId: number; credit: number }
  | { type: ClusterMessageType.Error; from: string; fwdId: number; code: string; message: string }
  | {
      type: ClusterMessageType.Event;
      from: string;
      tenant: string;
      id: number;
      pattern: string;
      payload: Uint8Array;
      emitterNodeId: string | null;
      ext: Uint8Array | null;
      claims: Uint8Array | null;
      /** Node ids on the receiving relay to deliver to. */
      targets: string[];
    }
  | {
      type: ClusterMessageType.EventCopies;
      from: string;
      tenant: string;
      pattern: string;
      payload: Uint8Array;
      emitterNodeId: string | null;
      ext: Uint8Array | null;
      claims: Uint8Array | null;
      /** [node id, the sender's delivery id, attempt] for each copy. */
      copies: ReadonlyArray<readonly [string, number, number]>;
    }
  | {
      type: ClusterMessageType.Handled;
      from: string;
      /** The delivery id of the relay that drives the event. */
      did: number;
      /** null: handled; HANDLER_ERROR: the handler threw (`error`); another code: the copy could not be handled there. */
      code: string | null;
      error: Uint8Array | null;
    }
  | {
      type: ClusterMessageType.Chunk;
      from: string;
      /** The sender's id of the chunked message, this piece's index, their count, the whole message's bytes and type. */
      transfer: number;
      index: number;
      count: number;
      size: number;
      inner: ClusterMessageType;
      /** A transfer of the sender's that this one supersedes (an older snapshot), or 0. */
      replaces: number;
      piece: Uint8Array;
    }
  | { type: ClusterMessageType.Pull; from: string; transfer: number; received: number };

/** The cluster message of one type. */
export type Msg<T extends ClusterMessageType> = Extract<ClusterMessage, { type: T }>;

/** A message as a relay sends it: the codec writes who it is `from`. */
export type ClusterOutgoing = ClusterMessage extends infer M ? (M extends ClusterMessage ? Omit<M, 'from'> : never) : never;
