import { Decoder, Encoder } from '@msgpack/msgpack';

/** Version of the relay-to-relay protocol; a message of another version is dropped (and logged once). */
export const CLUSTER_PROTOCOL_VERSION = 2;

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
  /** Copies of an event with handler acks for some nodes of the receiving relay, each answered with HANDLED. */
  EventCopies = 13,
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
}

export type ClusterMessage =
  | { type: ClusterMessageType.Beat; from: string; relayId: string }
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
    };

/** The cluster message of one type. */
export type Msg<T extends ClusterMessageType> = Extract<ClusterMessage, { type: T }>;

/** A message as a relay sends it: the codec writes who it is `from`. */
export type ClusterOutgoing = ClusterMessage extends infer M ? (M extends ClusterMessage ? Omit<M, 'from'> : never) : never;

/** Why a message was dropped. */
export class ClusterMessageError extends Error {
  override name = 'ClusterMessageError';
}

/** How a field travels: each kind's check on the way in (nodes and ack lists also change shape). */
type Kind = 'str' | 'optStr' | 'num' | 'num0' | 'bool' | 'bin' | 'optBin' | 'strs' | 'node' | 'nodes' | 'copies';

/** The fields of each message type after [version, type, from], in wire order. */
const FIELDS: { readonly [T in ClusterMessageType]: ReadonlyArray<readonly [Exclude<keyof Msg<T>, 'type' | 'from'>, Kind]> } = {
  [ClusterMessageType.Beat]: [['relayId', 'str']],
  [ClusterMessageType.Sync]: [['relayId', 'str']],
  [ClusterMessageType.Snapshot]: [
    ['relayId', 'str'],
    ['nodes', 'nodes'],
  ],
  [ClusterMessageType.NodeUp]: [['node', 'node']],
  [ClusterMessageType.NodeDown]: [
    ['tenant', 'str'],
    ['nodeId', 'str'],
    ['graceful', 'bool'],
    ['subject', 'optStr'],
    ['reservedForMs', 'num0'],
  ],
  [ClusterMessageType.Bye]: [],
  [ClusterMessageType.Request]: [
    ['fwdId', 'num'],
    ['tenant', 'str'],
    ['nodeId', 'str'],
    ['pattern', 'str'],
    ['payload', 'bin'],
    ['timeoutMs', 'num'],
    ['callerNodeId', 'optStr'],
    ['ext', 'optBin'],
    ['claims', 'optBin'],
  ],
  [ClusterMessageType.Response]: [
    ['fwdId', 'num'],
    ['flags', 'num'],
    ['payload', 'optBin'],
  ],
  [ClusterMessageType.Cancel]: [['fwdId', 'num']],
  [ClusterMessageType.Error]: [
    ['fwdId', 'num'],
    ['code', 'str'],
    ['message', 'str'],
  ],
  [ClusterMessageType.Event]: [
    ['tenant', 'str'],
    ['id', 'num'],
    ['pattern', 'str'],
    ['payload', 'bin'],
    ['emitterNodeId', 'optStr'],
    ['ext', 'optBin'],
    ['claims', 'optBin'],
    ['targets', 'strs'],
  ],
  [ClusterMessageType.EventCopies]: [
    ['tenant', 'str'],
    ['pattern', 'str'],
    ['payload', 'bin'],
    ['emitterNodeId', 'optStr'],
    ['ext', 'optBin'],
    ['claims', 'optBin'],
    ['copies', 'copies'],
  ],
  [ClusterMessageType.Handled]: [
    ['did', 'num'],
    ['code', 'optStr'],
    ['error', 'optBin'],
  ],
};

/**
 * Encodes and decodes backplane messages: MessagePack arrays led by the
 * protocol version, the type and the sender, then the type's FIELDS.
 * Payloads, ext and claims are carried as the `bin` they arrived as, so
 * forwarding never re-encodes them.
 */
export class ClusterCodec {
  private readonly encoder = new Encoder({ ignoreUndefined: true });
  private readonly decoder = new Decoder({ maxMapLength: 0, maxExtLength: 0 });

  encode(m: ClusterOutgoing, from: string): Uint8Array {
    const wire: unknown[] = [CLUSTER_PROTOCOL_VERSION, m.type, from];
    const values = m as unknown as Record<string, unknown>;
    for (const [key, kind] of FIELDS[m.type]) {
      const v = values[key];
      wire.push(kind === 'node' ? nodeToWire(v as ClusterNode) : kind === 'nodes' ? (v as ClusterNode[]).map(nodeToWire) : v);
    }
    return this.encoder.encode(wire);
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
    const type: unknown = raw[1];
    if (typeof type !== 'number' || !Object.hasOwn(FIELDS, type)) fail(`type ${String(type)}`);
    const fields = FIELDS[type as ClusterMessageType] as ReadonlyArray<readonly [string, Kind]>;
    const m: Record<string, unknown> = { type, from: str(raw[2], 'from') };
    for (let i = 0; i < fields.length; i++) {
      const [key, kind] = fields[i];
      const v = read(raw[3 + i], kind);
      // The field's name is put together only for a message that is refused.
      if (v === BAD) fail(`${ClusterMessageType[type as ClusterMessageType].toLowerCase()}.${key}`);
      m[key] = v;
    }
    return m as unknown as ClusterMessage;
  }
}

const nodeToWire = (n: ClusterNode): unknown[] => [n.tenant, n.nodeId, n.service, n.patterns, n.events, n.queue, n.subject, n.since];

function fail(what: string): never {
  throw new ClusterMessageError(`bad ${what}`);
}

const str = (v: unknown, what: string): string => (typeof v === 'string' ? v : fail(what));
const optStr = (v: unknown, what: string): string | null => (v == null ? null : str(v, what));
const num = (v: unknown, what: string): number => (typeof v === 'number' && Number.isFinite(v) ? v : fail(what));
const strs = (v: unknown, what: string): string[] => (Array.isArray(v) && v.every(s => typeof s === 'string') ? v : fail(what));

/** What read() returns for a field of the wrong type. */
const BAD = Symbol('bad field');

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** A field as `kind` says it is, or BAD (nodes and copies throw for what is wrong inside them). */
function read(v: unknown, kind: Kind): unknown {
  switch (kind) {
    case 'str':
      return typeof v === 'string' ? v : BAD;
    case 'optStr':
      return v == null ? null : typeof v === 'string' ? v : BAD;
    case 'num':
      return isNum(v) ? v : BAD;
    case 'num0':
      return v == null ? 0 : isNum(v) ? v : BAD;
    case 'bool':
      return v === true;
    case 'bin':
      return v instanceof Uint8Array ? v : BAD;
    case 'optBin':
      return v == null ? null : v instanceof Uint8Array ? v : BAD;
    case 'strs':
      return Array.isArray(v) && v.every(s => typeof s === 'string') ? v : BAD;
    case 'node':
      return nodeFromWire(v);
    case 'nodes':
      return Array.isArray(v) ? v.map(nodeFromWire) : BAD;
    case 'copies':
      if (!Array.isArray(v)) return BAD;
      return v.map(e =>
        Array.isArray(e) && e.length === 3
          ? ([str(e[0], 'copy.nodeId'), num(e[1], 'copy.did'), num(e[2], 'copy.attempt')] as const)
          : fail('copy'),
      );
  }
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
