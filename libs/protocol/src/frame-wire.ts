import { MAX_CAPABILITIES, MAX_CREDIT } from './constants.js';
import { FrameError, quote } from './errors.js';
import {
  type AckFrame,
  type ErrorFrame,
  type EventFrame,
  type Frame,
  FrameType,
  type HelloFrame,
  type NodeInfo,
  type RequestFrame,
  type ResponseFrame,
  type WelcomeFrame,
} from './frames.js';

const MAX_ID = 0xffff_ffff;
const MAX_TIMEOUT_MS = 0x7fff_ffff;

/**
 * Reads the fields of one wire array, each checked as its kind says; a field
 * that is not gets a FrameError naming it, correlated to the frame's id.
 */
class Reader {
  constructor(
    private readonly a: readonly unknown[],
    readonly id: number,
  ) {}

  /** Whether field `i` is nil (or past the end). */
  nil(i: number): boolean {
    return this.a[i] == null;
  }

  uint(i: number, name: string, max: number): number {
    const v = this.a[i];
    return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max
      ? v
      : this.invalid(name, `must be an integer from 0 to ${max}`);
  }

  /** A uint from 1 to `max`. */
  positive(i: number, name: string, max: number): number {
    const v = this.uint(i, name, max);
    return v !== 0 ? v : this.invalid(name, 'must be greater than 0');
  }

  /** The frame's id (field 1), from 1: the one read leniently up front when it was valid, else its refusal. */
  get frameId(): number {
    return this.id !== 0 ? this.id : this.positive(1, 'id', MAX_ID);
  }

  str(i: number, name: string): string {
    const v = this.a[i];
    return typeof v === 'string' && v.length > 0 ? v : this.invalid(name, 'must be a non-empty string');
  }

  optStr(i: number, name: string): string | null {
    return this.a[i] == null ? null : this.str(i, name);
  }

  /** A string that may be empty. */
  text(i: number, name: string): string {
    const v = this.a[i];
    return typeof v === 'string' ? v : this.invalid(name, 'must be a string');
  }

  bin(i: number, name: string): Uint8Array {
    const v = this.a[i];
    return v instanceof Uint8Array ? v : this.invalid(name, 'must be bin');
  }

  optBin(i: number, name: string): Uint8Array | null {
    return this.a[i] == null ? null : this.bin(i, name);
  }

  /** A payload: a bin holding one MessagePack value, so never empty (no value is nil, 0xc0). */
  payload(i: number, name: string): Uint8Array {
    const v = this.bin(i, name);
    return v.length > 0 ? v : this.invalid(name, 'must not be empty: it holds one MessagePack value (nil, 0xc0, for no value)');
  }

  /** Non-empty strings; nil reads as none. */
  strs(i: number, name: string): string[] {
    const v = this.a[i];
    if (v == null) return [];
    return Array.isArray(v) && v.every(s => typeof s === 'string' && s.length > 0)
      ? (v as string[])
      : this.invalid(name, 'must be an array of non-empty strings');
  }

  /** Non-empty strings, the list itself required. */
  someStrs(i: number, name: string): string[] {
    return this.nil(i) ? this.invalid(name, 'must be an array of non-empty strings') : this.strs(i, name);
  }

  /** Capability names: at most MAX_CAPABILITIES non-empty strings; nil reads as none. */
  caps(i: number, name: string): string[] {
    const v = this.strs(i, name);
    return v.length <= MAX_CAPABILITIES ? v : this.invalid(name, `must list at most ${MAX_CAPABILITIES} capabilities`);
  }

  versions(i: number, name: string): number[] {
    const v = this.a[i];
    return Array.isArray(v) && v.length > 0 && v.every(n => Number.isInteger(n) && (n as number) > 0)
      ? (v as number[])
      : this.invalid(name, 'must be a non-empty array of positive integers');
  }

  nodes(i: number, name: string): NodeInfo[] {
    const v = this.a[i];
    return Array.isArray(v) ? v.map(n => nodeInfo(n, this.id)) : this.invalid(name, 'must be an array');
  }

  invalid(name: string, reason: string): never {
    throw new FrameError(`${name} ${reason}`, this.id);
  }
}

/** One entry of NODES: [nodeId, service, patterns, events, queue]. */
function nodeInfo(n: unknown, id: number): NodeInfo {
  if (!Array.isArray(n) || n.length < 5) throw new FrameError('nodes.nodes entries must be 5-field arrays', id);
  const r = new Reader(n, id);
  return {
    nodeId: r.str(0, 'nodes.nodeId'),
    service: r.optStr(1, 'nodes.service'),
    patterns: r.someStrs(2, 'nodes.patterns'),
    events: r.someStrs(3, 'nodes.events'),
    queue: r.optStr(4, 'nodes.queue'),
  };
}

/** A frame type on the wire: the fields it cannot do without, and how it is written and read. */
interface WireShape<F extends Frame = Frame> {
  /** Fields after the type that must be there (every field up to the last required one). */
  required: number;
  write(frame: F): unknown[];
  read(r: Reader): F;
}

/** Left off the end of the wire array (made for this frame, so shortened in place): the trailing fields nobody set. */
function trimmed(wire: unknown[]): unknown[] {
  let end = wire.length;
  while (end > 1 && wire[end - 1] == null) end--;
  wire.length = end;
  return wire;
}

const hello: WireShape<HelloFrame> = {
  required: 2,
  write: f => trimmed([f.type, f.versions, f.nodeId, f.service, f.patterns, f.events, f.queue, someCaps(f.caps)]),
  read: r => {
    const frame: HelloFrame = {
      type: FrameType.Hello,
      versions: r.versions(1, 'hello.versions'),
      nodeId: r.str(2, 'hello.nodeId'),
      service: r.optStr(3, 'hello.service'),
      patterns: r.strs(4, 'hello.patterns'),
      events: r.strs(5, 'hello.events'),
      queue: r.optStr(6, 'hello.queue'),
    };
    if (!r.nil(7)) frame.caps = r.caps(7, 'hello.caps');
    return frame;
  },
};

/** A capability list as written: left off when there is none. */
function someCaps(caps: string[] | undefined): string[] | undefined {
  return caps === undefined || caps.length === 0 ? undefined : caps;
}

const welcome: WireShape<WelcomeFrame> = {
  required: 6,
  write: f => trimmed([f.type, f.version, f.relayId, f.sessionId, f.nodeId, f.maxPayloadBytes, f.heartbeatIntervalMs, someCaps(f.caps)]),
  read: r => {
    const frame: WelcomeFrame = {
      type: FrameType.Welcome,
      version: r.uint(1, 'welcome.version', MAX_ID),
      relayId: r.str(2, 'welcome.relayId'),
      sessionId: r.str(3, 'welcome.sessionId'),
      nodeId: r.str(4, 'welcome.nodeId'),
      maxPayloadBytes: r.uint(5, 'welcome.maxPayloadBytes', Number.MAX_SAFE_INTEGER),
      heartbeatIntervalMs: r.uint(6, 'welcome.heartbeatIntervalMs', MAX_TIMEOUT_MS),
    };
    if (!r.nil(7)) frame.caps = r.caps(7, 'welcome.caps');
    return frame;
  },
};

const request: WireShape<RequestFrame> = {
  required: 4,
  write: f => trimmed([f.type, f.id, f.pattern, f.payload, f.timeoutMs, f.peer, f.ext, f.claims, f.window]),
  read: r => {
    const frame: RequestFrame = {
      type: FrameType.Request,
      id: r.frameId,
      pattern: r.str(2, 'request.pattern'),
      payload: r.payload(3, 'request.payload'),
      timeoutMs: r.positive(4, 'request.timeoutMs', MAX_TIMEOUT_MS),
      peer: r.optStr(5, 'request.peer'),
      ext: r.optBin(6, 'request.ext'),
      claims: r.optBin(7, 'request.claims'),
    };
    if (!r.nil(8)) frame.window = r.positive(8, 'request.window', MAX_CREDIT);
    return frame;
  },
};

const response: WireShape<ResponseFrame> = {
  required: 2,
  write: f => trimmed([f.type, f.id, f.flags, f.payload]),
  read: r => ({
    type: FrameType.Response,
    id: r.frameId,
    flags: r.uint(2, 'response.flags', 3),
    payload: r.nil(3) ? null : r.payload(3, 'response.payload'),
  }),
};

const event: WireShape<EventFrame> = {
  required: 3,
  // The handler-ack fields: a plain event leaves them off (a flags field nobody set is 0).
  write: f =>
    trimmed([f.type, f.id, f.pattern, f.payload, f.peer, f.ext, f.claims, f.flags === 0 ? undefined : f.flags, f.timeoutMs, f.attempt]),
  read: r => {
    const frame: EventFrame = {
      type: FrameType.Event,
      id: r.uint(1, 'event.id', MAX_ID),
      pattern: r.str(2, 'event.pattern'),
      payload: r.payload(3, 'event.payload'),
      peer: r.optStr(4, 'event.peer'),
      ext: r.optBin(5, 'event.ext'),
      claims: r.optBin(6, 'event.claims'),
    };
    // ...and pays nothing to read them.
    if (!r.nil(7)) frame.flags = r.uint(7, 'event.flags', 1);
    if (!r.nil(8)) frame.timeoutMs = r.positive(8, 'event.timeoutMs', MAX_TIMEOUT_MS);
    if (!r.nil(9)) frame.attempt = r.uint(9, 'event.attempt', MAX_ID);
    return frame;
  },
};

const ack: WireShape<AckFrame> = {
  required: 2,
  write: f => [f.type, f.id, f.recipients],
  read: r => ({ type: FrameType.Ack, id: r.frameId, recipients: r.uint(2, 'ack.recipients', MAX_ID) }),
};

const error: WireShape<ErrorFrame> = {
  required: 3,
  write: f => trimmed([f.type, f.id, f.code, f.message, f.details]),
  read: r => {
    const frame: ErrorFrame = {
      type: FrameType.Error,
      id: r.uint(1, 'error.id', MAX_ID),
      code: r.str(2, 'error.code'),
      message: r.text(3, 'error.message'),
    };
    if (!r.nil(4)) frame.details = r.bin(4, 'error.details');
    return frame;
  },
};

/** Frames of their type and id only. */
function idOnly<T extends FrameType.Cancel | FrameType.Discover | FrameType.Drain>(type: T): WireShape<Frame & { type: T; id: number }> {
  return { required: 1, write: f => [f.type, f.id], read: r => ({ type, id: r.frameId }) as Frame & { type: T; id: number } };
}

/** Frames of their type alone. */
function bare<T extends FrameType.Ping | FrameType.Pong>(type: T): WireShape<Frame & { type: T }> {
  return { required: 0, write: f => [f.type], read: () => ({ type }) as Frame & { type: T } };
}

/** TOKEN_EXPIRING and AUTHORIZED: an expiry in ms since the epoch. */
function expiry<T extends FrameType.TokenExpiring | FrameType.Authorized>(type: T): WireShape<Frame & { type: T; expiresAt: number }> {
  return {
    required: 1,
    write: f => [f.type, f.expiresAt],
    read: r => ({ type, expiresAt: r.uint(1, 'expiresAt', Number.MAX_SAFE_INTEGER) }) as Frame & { type: T; expiresAt: number },
  };
}

type ShapeOf<T extends FrameType> = WireShape<Extract<Frame, { type: T }>>;

/**
 * Every frame type's wire shape: MessagePack arrays led by the type, fields
 * in the order protocol.md gives. Each type is written out (an object literal
 * per type, read and written field by field) rather than driven by a generic
 * field table: frames are the hot path, and a literal of a fixed shape is
 * several times cheaper to build and to read than one assembled key by key.
 */
const SHAPES: { readonly [T in FrameType]: ShapeOf<T> } = {
  [FrameType.Hello]: hello,
  [FrameType.Welcome]: welcome,
  [FrameType.Request]: request,
  [FrameType.Response]: response,
  [FrameType.Cancel]: idOnly(FrameType.Cancel),
  [FrameType.Event]: event,
  [FrameType.Ack]: ack,
  [FrameType.Error]: error,
  [FrameType.Ping]: bare(FrameType.Ping),
  [FrameType.Pong]: bare(FrameType.Pong),
  [FrameType.Wait]: {
    required: 3,
    write: f => [f.type, f.id, f.pattern, f.timeoutMs],
    read: r => ({
      type: FrameType.Wait,
      id: r.frameId,
      pattern: r.str(2, 'wait.pattern'),
      timeoutMs: r.positive(3, 'wait.timeoutMs', MAX_TIMEOUT_MS),
    }),
  },
  [FrameType.Discover]: idOnly(FrameType.Discover),
  [FrameType.Nodes]: {
    required: 2,
    write: f => [f.type, f.id, f.nodes.map(n => [n.nodeId, n.service, n.patterns, n.events, n.queue])],
    read: r => ({ type: FrameType.Nodes, id: r.frameId, nodes: r.nodes(2, 'nodes.nodes') }),
  },
  [FrameType.TokenExpiring]: expiry(FrameType.TokenExpiring),
  [FrameType.Auth]: { required: 1, write: f => [f.type, f.token], read: r => ({ type: FrameType.Auth, token: r.bin(1, 'auth.token') }) },
  [FrameType.Authorized]: expiry(FrameType.Authorized),
  [FrameType.GoAway]: {
    required: 2,
    write: f => [f.type, f.reason, f.drainMs],
    read: r => ({ type: FrameType.GoAway, reason: r.text(1, 'goaway.reason'), drainMs: r.uint(2, 'goaway.drainMs', MAX_TIMEOUT_MS) }),
  },
  [FrameType.Drain]: idOnly(FrameType.Drain),
  [FrameType.Handled]: {
    required: 1,
    write: f => trimmed([f.type, f.id, f.error]),
    read: r => ({ type: FrameType.Handled, id: r.frameId, error: r.optBin(2, 'handled.error') }),
  },
  [FrameType.Credit]: {
    required: 2,
    write: f => [f.type, f.id, f.credit],
    read: r => ({ type: FrameType.Credit, id: r.frameId, credit: r.positive(2, 'credit.credit', MAX_CREDIT) }),
  },
};

/** A frame as the MessagePack array it travels as. */
export function toWire(frame: Frame): unknown[] {
  return (SHAPES[frame.type] as WireShape).write(frame);
}

/** A decoded MessagePack value as a frame; a FrameError (correlated to its id when it has one) when it is not a valid one. */
export function fromWire(raw: unknown): Frame {
  if (!Array.isArray(raw) || raw.length === 0) {
    throw new FrameError('a frame must be a non-empty MessagePack array');
  }
  const type: unknown = raw[0];
  // The id (second field of most frames) is read leniently first so that an
  // error about a later field can still be correlated to its request.
  const id = typeof raw[1] === 'number' && Number.isInteger(raw[1]) && raw[1] > 0 && raw[1] <= MAX_ID ? raw[1] : 0;
  if (typeof type !== 'number' || !Object.hasOwn(SHAPES, type)) throw new FrameError(`unknown frame type ${describe(type)}`, id);
  const shape = SHAPES[type as FrameType] as WireShape;
  const required = shape.required + 1;
  if (raw.length < required) throw new FrameError(`frame type ${type} needs at least ${required} fields, got ${raw.length}`, id);
  return shape.read(new Reader(raw, id));
}

/** A value as a reason names it: a number as is, anything else by its kind (the reason must stay short). */
function describe(v: unknown): string {
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return quote(v);
  if (v instanceof Uint8Array) return `(bin of ${v.length} bytes)`;
  if (Array.isArray(v)) return `(array of ${v.length})`;
  return `(${v === null ? 'nil' : typeof v})`;
}
