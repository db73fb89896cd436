import {
  type AuthFrame,
  type CancelFrame,
  type CreditFrame,
  decodePayload,
  type DiscoverFrame,
  encodePayload,
  type ErrorFrame,
  type EventFrame,
  type Frame,
  FrameType,
  type HandledFrame,
  type HelloFrame,
  type NodeInfo,
  type PingFrame,
  type PongFrame,
  type RequestFrame,
  type WaitFrame,
  type WelcomeFrame,
} from '@wsrelay/protocol';

/**
 * The frames a client sends. Written here rather than with the protocol's
 * FrameCodec, whose readers and writers of every frame type would be most of
 * the bundle: a frame is its MessagePack array in protocol.md's field order,
 * trailing unset fields left off, as the codec writes it (the protocol's test
 * vectors check that the bytes are the same).
 */
export type OutgoingFrame =
  | HelloFrame
  | RequestFrame
  | CancelFrame
  | EventFrame
  | PingFrame
  | PongFrame
  | WaitFrame
  | DiscoverFrame
  | AuthFrame
  | HandledFrame
  | CreditFrame;

/** The frame's bytes, as the ArrayBuffer a WebSocket sends. */
export function encodeFrame(f: OutgoingFrame): ArrayBuffer {
  const bytes = encodePayload(trimmed(fields(f)));
  // The encoder's bytes fill an ArrayBuffer of their own: it is sent whole, without a copy.
  return bytes.byteLength === bytes.buffer.byteLength ? (bytes.buffer as ArrayBuffer) : bytes.slice().buffer;
}

function fields(f: OutgoingFrame): unknown[] {
  switch (f.type) {
    case FrameType.Hello:
      return [f.type, f.versions, f.nodeId, f.service, f.patterns, f.events, f.queue, f.caps?.length ? f.caps : null];
    case FrameType.Request:
      return [f.type, f.id, f.pattern, f.payload, f.timeoutMs, f.peer, f.ext, f.claims, f.window];
    case FrameType.Event:
      return [f.type, f.id, f.pattern, f.payload, f.peer, f.ext, f.claims, f.flags === 0 ? null : f.flags, f.timeoutMs, f.attempt];
    case FrameType.Wait:
      return [f.type, f.id, f.pattern, f.timeoutMs];
    case FrameType.Auth:
      return [f.type, f.token];
    case FrameType.Handled:
      return [f.type, f.id, f.error];
    case FrameType.Credit:
      return [f.type, f.id, f.credit];
    case FrameType.Ping:
    case FrameType.Pong:
      return [f.type];
    default:
      return [f.type, f.id];
  }
}

/** The array without its trailing nil fields. */
function trimmed(a: unknown[]): unknown[] {
  let end = a.length;
  while (end > 1 && a[end - 1] == null) end--;
  a.length = end;
  return a;
}

/** The frames a client receives; anything else is ignored. */
export type IncomingFrame = Extract<
  Frame,
  {
    type:
      | FrameType.Welcome
      | FrameType.Response
      | FrameType.Event
      | FrameType.Ack
      | FrameType.Error
      | FrameType.Ping
      | FrameType.Pong
      | FrameType.Nodes
      | FrameType.TokenExpiring
      | FrameType.Authorized
      | FrameType.GoAway;
  }
>;

/**
 * Reads a frame from the relay; undefined for a type a client never gets.
 * Throws when the bytes are not MessagePack or a field is not of its kind.
 */
export function decodeFrame(bytes: Uint8Array): IncomingFrame | undefined {
  const a = decodePayload(bytes);
  if (!Array.isArray(a)) throw new TypeError('a frame must be a MessagePack array');
  const r = new FieldReader(a);
  const type = r.num(0) as FrameType;
  switch (type) {
    case FrameType.Welcome: {
      const frame: WelcomeFrame = {
        type: FrameType.Welcome,
        version: r.num(1),
        relayId: r.str(2),
        sessionId: r.str(3),
        nodeId: r.str(4),
        maxPayloadBytes: r.num(5),
        heartbeatIntervalMs: r.num(6),
      };
      if (a[7] != null) frame.caps = r.strs(7);
      return frame;
    }
    case FrameType.Response:
      return { type: FrameType.Response, id: r.num(1), flags: r.num(2), payload: r.optBin(3) };
    case FrameType.Event:
      return eventFrame(r, a);
    case FrameType.Ack:
      return { type: FrameType.Ack, id: r.num(1), recipients: r.num(2) };
    case FrameType.Error: {
      const frame: ErrorFrame = { type: FrameType.Error, id: r.num(1), code: r.str(2), message: r.str(3) };
      if (a[4] != null) frame.details = r.optBin(4);
      return frame;
    }
    case FrameType.Ping:
    case FrameType.Pong:
      return { type };
    case FrameType.Nodes:
      return { type: FrameType.Nodes, id: r.num(1), nodes: r.list(2).map(nodeInfo) };
    case FrameType.TokenExpiring:
    case FrameType.Authorized:
      return { type, expiresAt: r.num(1) };
    case FrameType.GoAway:
      return { type: FrameType.GoAway, reason: r.str(1), drainMs: r.num(2) };
    default:
      return undefined;
  }
}

function eventFrame(r: FieldReader, a: unknown[]): EventFrame {
  const frame: EventFrame = {
    type: FrameType.Event,
    id: r.num(1),
    pattern: r.str(2),
    payload: r.optBin(3) ?? r.fail(3),
    peer: r.optStr(4),
    ext: r.optBin(5),
    claims: r.optBin(6),
  };
  if (a[7] != null) frame.flags = r.num(7);
  if (a[8] != null) frame.timeoutMs = r.num(8);
  if (a[9] != null) frame.attempt = r.num(9);
  return frame;
}

function nodeInfo(n: unknown): NodeInfo {
  const r = new FieldReader(Array.isArray(n) ? n : []);
  return { nodeId: r.str(0), service: r.optStr(1), patterns: r.strs(2), events: r.strs(3), queue: r.optStr(4) };
}

/** Reads fields of a wire array by kind; a field that is not of its kind throws, naming its position. */
class FieldReader {
  constructor(private readonly a: readonly unknown[]) {}

  num(i: number): number {
    const v = this.a[i];
    return typeof v === 'number' ? v : this.fail(i);
  }

  str(i: number): string {
    const v = this.a[i];
    return typeof v === 'string' ? v : this.fail(i);
  }

  optStr(i: number): string | null {
    return this.a[i] == null ? null : this.str(i);
  }

  optBin(i: number): Uint8Array | null {
    const v = this.a[i];
    return v == null ? null : v instanceof Uint8Array ? v : this.fail(i);
  }

  list(i: number): unknown[] {
    const v = this.a[i];
    return Array.isArray(v) ? v : this.fail(i);
  }

  strs(i: number): string[] {
    return this.list(i).map((_, j, l) => (typeof l[j] === 'string' ? l[j] : this.fail(i)));
  }

  fail(i: number): never {
    throw new TypeError(`field ${i} of a type ${String(this.a[0])} frame is not of its kind`);
  }
}
