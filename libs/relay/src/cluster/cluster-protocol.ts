import { Decoder, Encoder } from '@msgpack/msgpack';

/** Version of the relay-to-relay protocol; a message of another version is dropped (and logged once). */
export const CLUSTER_PROTOCOL_VERSION = 1;

/** Messages relays exchange over the backplane. */
export enum ClusterMessageType {
  /** Broadcast every heartbeat: the sender is alive (and, looped back, that the backplane works). */
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
}

/** A node as presence carries it. */
export interface ClusterNode {
  tenant: string;
  nodeId: string;
  service: string | null;
  patterns: string[];
  events: string[];
  queue: string | null;
  /** The token subject that holds the node id, if any. */
  subject: string | null;
  /** When its relay accepted it (that relay's clock): the older claim of a node id wins. */
  since: number;
}

export type ClusterMessage =
  | { type: ClusterMessageType.Beat; from: string; relayId: string }
  | { type: ClusterMessageType.Sync; from: string }
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
    }
  | { type: ClusterMessageType.Response; from: string; fwdId: number; flags: number; payload: Uint8Array | null }
  | { type: ClusterMessageType.Cancel; from: string; fwdId: number }
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
      /** Handler acks wanted: [node id, the sender's delivery id, attempt] for each copy (then `targets` is empty). */
      acks?: ReadonlyArray<readonly [string, number, number]>;
    }
  | {
      type: ClusterMessageType.Handled;
      from: string;
      /** The delivery id of the relay that drives the event. */
      did: number;
      /** null: handled; HANDLER_ERROR: the handler threw (`error`); another code: the copy could not be handled there. */
      code: string | null;
      error: Uint8Array | null;
    };

/** The cluster message of one type. */
export type Msg<T extends ClusterMessageType> = Extract<ClusterMessage, { type: T }>;

/** Why a message was dropped. */
export class ClusterMessageError extends Error {
  override name = 'ClusterMessageError';
}

/**
 * Encodes and decodes backplane messages: MessagePack arrays led by the
 * protocol version and the type. Payloads, ext and claims are carried as the
 * `bin` they arrived as, so forwarding never re-encodes them.
 */
export class ClusterCodec {
  private readonly encoder = new Encoder({ ignoreUndefined: true });
  private readonly decoder = new Decoder({ maxMapLength: 0, maxExtLength: 0 });

  encode(m: ClusterMessage): Uint8Array {
    return this.encoder.encode(toWire(m));
  }

  decode(bytes: Uint8Array): ClusterMessage {
    let raw: unknown;
    try {
      raw = this.decoder.decode(bytes);
    } catch (err) {
      throw new ClusterMessageError(`not MessagePack (${(err as Error).message})`);
    }
    if (!Array.isArray(raw) || raw.length < 3) throw new ClusterMessageError('not a cluster message');
    if (raw[0] !== CLUSTER_PROTOCOL_VERSION) {
      throw new ClusterMessageError(`cluster protocol version ${String(raw[0])}, this relay speaks ${CLUSTER_PROTOCOL_VERSION}`);
    }
    return fromWire(raw);
  }
}

const nodeToWire = (n: ClusterNode): unknown[] => [n.tenant, n.nodeId, n.service, n.patterns, n.events, n.queue, n.subject, n.since];

function toWire(m: ClusterMessage): unknown[] {
  const head = [CLUSTER_PROTOCOL_VERSION, m.type, m.from];
  switch (m.type) {
    case ClusterMessageType.Beat:
      return [...head, m.relayId];
    case ClusterMessageType.Sync:
    case ClusterMessageType.Bye:
      return head;
    case ClusterMessageType.Snapshot:
      return [...head, m.relayId, m.nodes.map(nodeToWire)];
    case ClusterMessageType.NodeUp:
      return [...head, nodeToWire(m.node)];
    case ClusterMessageType.NodeDown:
      return [...head, m.tenant, m.nodeId, m.graceful, m.subject, m.reservedForMs];
    case ClusterMessageType.Request:
      return [...head, m.fwdId, m.tenant, m.nodeId, m.pattern, m.payload, m.timeoutMs, m.callerNodeId, m.ext, m.claims];
    case ClusterMessageType.Response:
      return [...head, m.fwdId, m.flags, m.payload];
    case ClusterMessageType.Cancel:
      return [...head, m.fwdId];
    case ClusterMessageType.Error:
      return [...head, m.fwdId, m.code, m.message];
    case ClusterMessageType.Event:
      return [...head, m.tenant, m.id, m.pattern, m.payload, m.emitterNodeId, m.ext, m.claims, m.targets, m.acks];
    case ClusterMessageType.Handled:
      return [...head, m.did, m.code, m.error];
  }
}

function fail(what: string): never {
  throw new ClusterMessageError(`bad ${what}`);
}

const str = (v: unknown, what: string): string => (typeof v === 'string' ? v : fail(what));
const optStr = (v: unknown, what: string): string | null => (v == null ? null : str(v, what));
const num = (v: unknown, what: string): number => (typeof v === 'number' && Number.isFinite(v) ? v : fail(what));
const bin = (v: unknown, what: string): Uint8Array => (v instanceof Uint8Array ? v : fail(what));
const optBin = (v: unknown, what: string): Uint8Array | null => (v == null ? null : bin(v, what));
const strs = (v: unknown, what: string): string[] =>
  Array.isArray(v) && v.every(s => typeof s === 'string') ? (v as string[]) : fail(what);

function acksFromWire(v: unknown): Array<readonly [string, number, number]> {
  if (!Array.isArray(v)) fail('event.acks');
  return v.map(e => (Array.isArray(e) && e.length === 3 ? ([str(e[0], 'ack.nodeId'), num(e[1], 'ack.did'), num(e[2], 'ack.attempt')] as const) : fail('event.acks')));
}

function nodeFromWire(v: unknown): ClusterNode {
  if (!Array.isArray(v) || v.length < 8) fail('node');
  return {
    tenant: str(v[0], 'node.tenant'),
    nodeId: str(v[1], 'node.nodeId'),
    service: optStr(v[2], 'node.service'),
    patterns: strs(v[3], 'node.patterns'),
    events: strs(v[4], 'node.events'),
    queue: optStr(v[5], 'node.queue'),
    subject: optStr(v[6], 'node.subject'),
    since: num(v[7], 'node.since'),
  };
}

function fromWire(a: unknown[]): ClusterMessage {
  const from = str(a[2], 'from');
  switch (a[1]) {
    case ClusterMessageType.Beat:
      return { type: ClusterMessageType.Beat, from, relayId: str(a[3], 'beat.relayId') };
    case ClusterMessageType.Sync:
      return { type: ClusterMessageType.Sync, from };
    case ClusterMessageType.Bye:
      return { type: ClusterMessageType.Bye, from };
    case ClusterMessageType.Snapshot: {
      if (!Array.isArray(a[4])) fail('snapshot.nodes');
      return { type: ClusterMessageType.Snapshot, from, relayId: str(a[3], 'snapshot.relayId'), nodes: (a[4] as unknown[]).map(nodeFromWire) };
    }
    case ClusterMessageType.NodeUp:
      return { type: ClusterMessageType.NodeUp, from, node: nodeFromWire(a[3]) };
    case ClusterMessageType.NodeDown:
      return {
        type: ClusterMessageType.NodeDown,
        from,
        tenant: str(a[3], 'down.tenant'),
        nodeId: str(a[4], 'down.nodeId'),
        graceful: a[5] === true,
        subject: optStr(a[6], 'down.subject'),
        reservedForMs: a[7] == null ? 0 : num(a[7], 'down.reservedForMs'),
      };
    case ClusterMessageType.Request:
      return {
        type: ClusterMessageType.Request,
        from,
        fwdId: num(a[3], 'request.fwdId'),
        tenant: str(a[4], 'request.tenant'),
        nodeId: str(a[5], 'request.nodeId'),
        pattern: str(a[6], 'request.pattern'),
        payload: bin(a[7], 'request.payload'),
        timeoutMs: num(a[8], 'request.timeoutMs'),
        callerNodeId: optStr(a[9], 'request.callerNodeId'),
        ext: optBin(a[10], 'request.ext'),
        claims: optBin(a[11], 'request.claims'),
      };
    case ClusterMessageType.Response:
      return {
        type: ClusterMessageType.Response,
        from,
        fwdId: num(a[3], 'response.fwdId'),
        flags: num(a[4], 'response.flags'),
        payload: optBin(a[5], 'response.payload'),
      };
    case ClusterMessageType.Cancel:
      return { type: ClusterMessageType.Cancel, from, fwdId: num(a[3], 'cancel.fwdId') };
    case ClusterMessageType.Error:
      return {
        type: ClusterMessageType.Error,
        from,
        fwdId: num(a[3], 'error.fwdId'),
        code: str(a[4], 'error.code'),
        message: str(a[5], 'error.message'),
      };
    case ClusterMessageType.Event:
      return {
        type: ClusterMessageType.Event,
        from,
        tenant: str(a[3], 'event.tenant'),
        id: num(a[4], 'event.id'),
        pattern: str(a[5], 'event.pattern'),
        payload: bin(a[6], 'event.payload'),
        emitterNodeId: optStr(a[7], 'event.emitterNodeId'),
        ext: optBin(a[8], 'event.ext'),
        claims: optBin(a[9], 'event.claims'),
        targets: strs(a[10], 'event.targets'),
        ...(a[11] == null ? {} : { acks: acksFromWire(a[11]) }),
      };
    case ClusterMessageType.Handled:
      return {
        type: ClusterMessageType.Handled,
        from,
        did: num(a[3], 'handled.did'),
        code: optStr(a[4], 'handled.code'),
        error: optBin(a[5], 'handled.error'),
      };
    default:
      return fail(`type ${String(a[1])}`);
  }
}
