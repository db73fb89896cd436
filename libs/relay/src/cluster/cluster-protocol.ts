import { Decoder, Encoder } from '@msgpack/msgpack';
import { checkMsgpackBounds, MAX_CREDIT } from '@wsrelay/protocol';
import { CLUSTER_MESSAGE_BOUNDS, DEFAULT_CLUSTER_MAX_MESSAGE_BYTES } from './cluster-limits.js';
import { type ClusterMessage, ClusterMessageType, type ClusterNode, type ClusterOutgoing, type Msg } from './cluster-messages.js';

/** Version of the relay-to-relay protocol; a message of another version is dropped (and logged once). */
export const CLUSTER_PROTOCOL_VERSION = 2;

/** The messages themselves, as objects. */
export * from './cluster-messages.js';

/** Why a message was dropped. */
export class ClusterMessageError extends Error {
  override name = 'ClusterMessageError';
}

/**
 * Encodes and decodes backplane messages: MessagePack arrays led by the
 * protocol version, the type and the sender, then the type's fields (SHAPES below). Payloads, ext and claims are carried as the `bin` they
 * arrived as, so forwarding never re-encodes them.
 */
export class ClusterCodec {
  private readonly encoder = new Encoder({ ignoreUndefined: true });
  private readonly decoder: Decoder;

  /** `maxMessageBytes`: the largest message (a reassembled one included) it decodes. */
  constructor(private readonly maxMessageBytes = DEFAULT_CLUSTER_MAX_MESSAGE_BYTES) {
    const { maxStrBytes: maxStrLength, maxElements: maxArrayLength } = CLUSTER_MESSAGE_BOUNDS;
    this.decoder = new Decoder({ maxMapLength: 0, maxExtLength: 0, maxStrLength, maxArrayLength, maxBinLength: maxMessageBytes });
  }

  encode(m: ClusterOutgoing, from: string): Uint8Array {
    return this.encoder.encode(toWire(m, from));
  }

  decode(bytes: Uint8Array): ClusterMessage {
    if (bytes.length > this.maxMessageBytes) throw new ClusterMessageError(`${bytes.length} bytes, over ${this.maxMessageBytes}`);
    // Walked before it is decoded: nesting, element count and trailing values cost nothing to refuse.
    const over = checkMsgpackBounds(bytes, CLUSTER_MESSAGE_BOUNDS);
    if (over !== undefined) throw new ClusterMessageError(`over the cluster message bounds (${over})`);
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

/**
 * Reads the fields of a wire array from `offset` on (a message's after
 * [version, type, from]; a node's or a copy's from 0); a field of the wrong
 * type is refused as `bad <what>.<field>`, <what> being the message type's
 * name, `node` or `copy`.
 */
class Reader {
  constructor(
    private readonly a: readonly unknown[],
    private readonly offset: number,
    private readonly what: ClusterMessageType | 'node' | 'copy',
  ) {}

  private bad(key: string): never {
    // A message type's name is put together only for a message that is refused.
    const what = this.what;
    return fail(`${typeof what === 'string' ? what : ClusterMessageType[what].toLowerCase()}.${key}`);
  }

  /** Field `i` from the offset. */
  private at(i: number): unknown {
    return this.a[this.offset + i];
  }

  str(i: number, key: string): string {
    const v = this.at(i);
    return typeof v === 'string' ? v : this.bad(key);
  }

  optStr(i: number, key: string): string | null {
    return this.at(i) == null ? null : this.str(i, key);
  }

  num(i: number, key: string): number {
    const v = this.at(i);
    return isNum(v) ? v : this.bad(key);
  }

  /** A number that reads as 0 when missing. */
  /** An integer from `min` to `max` (a count, a window); nil reads as 0 when `min` is 0. */
  count(i: number, key: string, min: number, max: number): number {
    const v = min === 0 && this.at(i) == null ? 0 : this.at(i);
    return Number.isInteger(v) && (v as number) >= min && (v as number) <= max ? (v as number) : this.bad(key);
  }

  num0(i: number, key: string): number {
    return this.at(i) == null ? 0 : this.num(i, key);
  }

  bool(i: number): boolean {
    return this.at(i) === true;
  }

  bin(i: number, key: string): Uint8Array {
    const v = this.at(i);
    return v instanceof Uint8Array ? v : this.bad(key);
  }

  optBin(i: number, key: string): Uint8Array | null {
    return this.at(i) == null ? null : this.bin(i, key);
  }

  strs(i: number, key: string): string[] {
    const v = this.at(i);
    return Array.isArray(v) && v.every(s => typeof s === 'string') ? v : this.bad(key);
  }

  node(i: number): ClusterNode {
    return nodeFromWire(this.at(i));
  }

  nodes(i: number, key: string): ClusterNode[] {
    const v = this.at(i);
    return Array.isArray(v) ? v.map(nodeFromWire) : this.bad(key);
  }

  /** [node id, delivery id, attempt] for each copy. */
  copies(i: number, key: string): Array<readonly [string, number, number]> {
    const v = this.at(i);
    if (!Array.isArray(v)) return this.bad(key);
    return v.map(e => {
      if (!Array.isArray(e) || e.length !== 3) fail('copy');
      const c = new Reader(e, 0, 'copy');
      return [c.str(0, 'nodeId'), c.num(1, 'did'), c.num(2, 'attempt')] as const;
    });
  }
}

/** A message type on the wire: how it is written (after the header) and read. */
interface WireShape<M extends ClusterMessage> {
  write(m: Omit<M, 'from'>): unknown[];
  read(r: Reader, from: string): M;
}

type Shapes = { readonly [T in ClusterMessageType]: WireShape<Msg<T>> };

/**
 * Every message type's fields after [version, type, from], in wire order,
 * each written out (as the frame codec's shapes are: an object literal of a
 * fixed shape is much cheaper to build and read than one assembled key by key).
 */
const SHAPES: Shapes = {
  [ClusterMessageType.Beat]: {
    write: m => [m.relayId, m.sentAt],
    read: (r, from) => ({ type: ClusterMessageType.Beat, from, relayId: r.str(0, 'relayId'), sentAt: r.num0(1, 'sentAt') }),
  },
  [ClusterMessageType.Sync]: {
    write: m => [m.relayId],
    read: (r, from) => ({ type: ClusterMessageType.Sync, from, relayId: r.str(0, 'relayId') }),
  },
  [ClusterMessageType.Snapshot]: {
    write: m => [m.relayId, m.nodes.map(nodeToWire)],
    read: (r, from) => ({ type: ClusterMessageType.Snapshot, from, relayId: r.str(0, 'relayId'), nodes: r.nodes(1, 'nodes') }),
  },
  [ClusterMessageType.NodeUp]: {
    write: m => [nodeToWire(m.node)],
    read: (r, from) => ({ type: ClusterMessageType.NodeUp, from, node: r.node(0) }),
  },
  [ClusterMessageType.NodeDown]: {
    write: m => [m.tenant, m.nodeId, m.graceful, m.subject, m.reservedForMs],
    read: (r, from) => ({
      type: ClusterMessageType.NodeDown,
      from,
      tenant: r.str(0, 'tenant'),
      nodeId: r.str(1, 'nodeId'),
      graceful: r.bool(2),
      subject: r.optStr(3, 'subject'),
      reservedForMs: r.num0(4, 'reservedForMs'),
    }),
  },
  [ClusterMessageType.Bye]: { write: () => [], read: (_r, from) => ({ type: ClusterMessageType.Bye, from }) },
  [ClusterMessageType.Request]: {
    write: m => [m.fwdId, m.tenant, m.nodeId, m.pattern, m.payload, m.timeoutMs, m.callerNodeId, m.ext, m.claims, m.window],
    read: (r, from) => ({
      type: ClusterMessageType.Request,
      from,
      fwdId: r.num(0, 'fwdId'),
      tenant: r.str(1, 'tenant'),
      nodeId: r.str(2, 'nodeId'),
      pattern: r.str(3, 'pattern'),
      payload: r.bin(4, 'payload'),
      timeoutMs: r.num(5, 'timeoutMs'),
      callerNodeId: r.optStr(6, 'callerNodeId'),
      ext: r.optBin(7, 'ext'),
      claims: r.optBin(8, 'claims'),
      // Trailing: a relay of an earlier build leaves it off.
      window: r.count(9, 'window', 0, MAX_CREDIT),
    }),
  },
  [ClusterMessageType.Response]: {
    write: m => [m.fwdId, m.flags, m.payload],
    read: (r, from) => ({
      type: ClusterMessageType.Response,
      from,
      fwdId: r.num(0, 'fwdId'),
      flags: r.num(1, 'flags'),
      payload: r.optBin(2, 'payload'),
    }),
  },
  [ClusterMessageType.Cancel]: {
    write: m => [m.fwdId],
    read: (r, from) => ({ type: ClusterMessageType.Cancel, from, fwdId: r.num(0, 'fwdId') }),
  },
  [ClusterMessageType.Credit]: {
    write: m => [m.fwdId, m.credit],
    read: (r, from) => ({ type: ClusterMessageType.Credit, from, fwdId: r.num(0, 'fwdId'), credit: r.count(1, 'credit', 1, MAX_CREDIT) }),
  },
  [ClusterMessageType.Error]: {
    write: m => [m.fwdId, m.code, m.message],
    read: (r, from) => ({
      type: ClusterMessageType.Error,
      from,
      fwdId: r.num(0, 'fwdId'),
      code: r.str(1, 'code'),
      message: r.str(2, 'message'),
    }),
  },
  [ClusterMessageType.Event]: {
    write: m => [m.tenant, m.id, m.pattern, m.payload, m.emitterNodeId, m.ext, m.claims, m.targets],
    read: (r, from) => ({
      type: ClusterMessageType.Event,
      from,
      tenant: r.str(0, 'tenant'),
      id: r.num(1, 'id'),
      pattern: r.str(2, 'pattern'),
      payload: r.bin(3, 'payload'),
      emitterNodeId: r.optStr(4, 'emitterNodeId'),
      ext: r.optBin(5, 'ext'),
      claims: r.optBin(6, 'claims'),
      targets: r.strs(7, 'targets'),
    }),
  },
  [ClusterMessageType.Handled]: {
    write: m => [m.did, m.code, m.error],
    read: (r, from) => ({
      type: ClusterMessageType.Handled,
      from,
      did: r.num(0, 'did'),
      code: r.optStr(1, 'code'),
      error: r.optBin(2, 'error'),
    }),
  },
  [ClusterMessageType.EventCopies]: {
    write: m => [m.tenant, m.pattern, m.payload, m.emitterNodeId, m.ext, m.claims, m.copies],
    read: (r, from) => ({
      type: ClusterMessageType.EventCopies,
      from,
      tenant: r.str(0, 'tenant'),
      pattern: r.str(1, 'pattern'),
      payload: r.bin(2, 'payload'),
      emitterNodeId: r.optStr(3, 'emitterNodeId'),
      ext: r.optBin(4, 'ext'),
      claims: r.optBin(5, 'claims'),
      copies: r.copies(6, 'copies'),
    }),
  },
  [ClusterMessageType.Chunk]: {
    write: m => [m.transfer, m.index, m.count, m.size, m.inner, m.replaces, m.piece],
    read: (r, from) => {
      const [transfer, index, count, size, inner] = [0, 1, 2, 3, 4].map(i => r.num(i, 'chunk'));
      return {
        type: ClusterMessageType.Chunk,
        from,
        transfer,
        index,
        count,
        size,
        inner,
        replaces: r.num0(5, 'replaces'),
        piece: r.bin(6, 'piece'),
      };
    },
  },
  [ClusterMessageType.Pull]: {
    write: m => [m.transfer, m.received],
    read: (r, from) => ({ type: ClusterMessageType.Pull, from, transfer: r.num(0, 'transfer'), received: r.num(1, 'received') }),
  },
};

function toWire(m: ClusterOutgoing, from: string): unknown[] {
  const wire = (SHAPES[m.type] as WireShape<ClusterMessage>).write(m);
  wire.unshift(CLUSTER_PROTOCOL_VERSION, m.type, from);
  return wire;
}

function fromWire(raw: readonly unknown[]): ClusterMessage {
  const type: unknown = raw[1];
  if (typeof type !== 'number' || !Object.hasOwn(SHAPES, type)) fail(`type ${String(type)}`);
  const from = typeof raw[2] === 'string' ? raw[2] : fail('from');
  return (SHAPES[type as ClusterMessageType] as WireShape<ClusterMessage>).read(new Reader(raw, 3, type), from);
}

/** A server's node is the 8 fields an earlier version reads; a passive client's adds `true` (which such a version ignores). */
function nodeToWire(n: ClusterNode): unknown[] {
  const wire: unknown[] = [n.tenant, n.nodeId, n.service, n.patterns, n.events, n.queue, n.subject, n.since];
  if (n.passive === true) wire.push(true);
  return wire;
}

function fail(what: string): never {
  throw new ClusterMessageError(`bad ${what}`);
}

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Fields a node may have on the wire: its 8, and a few a later version may add. */
const MAX_NODE_FIELDS = 12;

/** A node as presence carries it: [tenant, nodeId, service, patterns, events, queue, subject, since, passive?]. */
function nodeFromWire(v: unknown): ClusterNode {
  if (!Array.isArray(v) || v.length < 8 || v.length > MAX_NODE_FIELDS) fail('node');
  const r = new Reader(v, 0, 'node');
  return {
    tenant: r.str(0, 'tenant'),
    nodeId: r.str(1, 'nodeId'),
    service: r.optStr(2, 'service'),
    patterns: r.strs(3, 'patterns'),
    events: r.strs(4, 'events'),
    queue: r.optStr(5, 'queue'),
    subject: r.optStr(6, 'subject'),
    since: r.num(7, 'since'),
    ...(r.bool(8) ? { passive: true } : {}),
  };
}
