import { Decoder, Encoder } from '@msgpack/msgpack';
import { FrameError, quote, RelayError, RelayErrorCode } from './errors.js';
import { type ErrorFrame, type EventFrame, type Frame, FrameType, type HelloFrame, type NodeInfo } from './frames.js';

/** Bounds the codec applies to a frame's header (payloads are opaque `bin`). */
export interface FrameCodecLimits {
  /**
   * Longest string in a frame header (patterns, node ids, messages), in UTF-8 bytes.
   * @default 4096
   */
  maxStringBytes?: number;
  /**
   * Most entries in a frame array (e.g. patterns announced in HELLO).
   * @default 10000
   */
  maxArrayLength?: number;
  /**
   * Largest `bin` in a frame (the payload), in bytes.
   * @default 16777216
   */
  maxBinBytes?: number;
}

export const DEFAULT_MAX_STRING_BYTES = 4096;
export const DEFAULT_MAX_ARRAY_LENGTH = 10_000;
export const DEFAULT_MAX_BIN_BYTES = 16 * 1024 * 1024;

const MAX_ID = 0xffff_ffff;
const MAX_TIMEOUT_MS = 0x7fff_ffff;

/**
 * Encodes frames to MessagePack arrays and decodes and validates them back.
 * One instance reuses its encoder buffer; it is not meant to be shared across
 * threads, and every call is synchronous.
 */
export class FrameCodec {
  private readonly encoder = new Encoder({ ignoreUndefined: true });
  private readonly decoder: Decoder;

  constructor(limits: FrameCodecLimits = {}) {
    this.decoder = new Decoder({
      maxStrLength: limits.maxStringBytes ?? DEFAULT_MAX_STRING_BYTES,
      maxArrayLength: limits.maxArrayLength ?? DEFAULT_MAX_ARRAY_LENGTH,
      maxMapLength: 0,
      maxExtLength: 0,
      maxBinLength: limits.maxBinBytes ?? DEFAULT_MAX_BIN_BYTES,
    });
  }

  encode(frame: Frame): Uint8Array {
    return this.encoder.encode(toWire(frame));
  }

  /** Decodes one frame; throws FrameError (BAD_FRAME) with the reason. */
  decode(bytes: Uint8Array): Frame {
    let raw: unknown;
    try {
      raw = this.decoder.decode(bytes);
    } catch (err) {
      throw new FrameError(`malformed or over-limit MessagePack (${(err as Error).message})`);
    }
    return fromWire(raw);
  }
}

function trimmed(fields: unknown[]): unknown[] {
  let end = fields.length;
  while (end > 1 && fields[end - 1] == null) end--;
  return end === fields.length ? fields : fields.slice(0, end);
}

function toWire(f: Frame): unknown[] {
  switch (f.type) {
    case FrameType.Hello:
      return trimmed([f.type, f.versions, f.nodeId, f.service, f.patterns, f.events, f.queue]);
    case FrameType.Welcome:
      return [f.type, f.version, f.relayId, f.sessionId, f.nodeId, f.maxPayloadBytes, f.heartbeatIntervalMs];
    case FrameType.Request:
      return trimmed([f.type, f.id, f.pattern, f.payload, f.timeoutMs, f.peer, f.ext, f.claims]);
    case FrameType.Event:
      return trimmed([
        f.type,
        f.id,
        f.pattern,
        f.payload,
        f.peer,
        f.ext,
        f.claims,
        f.flags === 0 ? undefined : f.flags,
        f.timeoutMs,
        f.attempt,
      ]);
    case FrameType.Response:
      return trimmed([f.type, f.id, f.flags, f.payload]);
    case FrameType.Cancel:
    case FrameType.Discover:
      return [f.type, f.id];
    case FrameType.Ack:
      return [f.type, f.id, f.recipients];
    case FrameType.Error:
      return trimmed([f.type, f.id, f.code, f.message, f.details]);
    case FrameType.Ping:
    case FrameType.Pong:
      return [f.type];
    case FrameType.Wait:
      return [f.type, f.id, f.pattern, f.timeoutMs];
    case FrameType.Nodes:
      return [f.type, f.id, f.nodes.map(n => [n.nodeId, n.service, n.patterns, n.events, n.queue])];
    case FrameType.TokenExpiring:
    case FrameType.Authorized:
      return [f.type, f.expiresAt];
    case FrameType.Auth:
      return [f.type, f.token];
    case FrameType.GoAway:
      return [f.type, f.reason, f.drainMs];
    case FrameType.Drain:
      return [f.type, f.id];
    case FrameType.Handled:
      return trimmed([f.type, f.id, f.error]);
  }
}

/** Field readers: each names the field it rejects. */
class Reader {
  constructor(
    private readonly a: unknown[],
    readonly id = 0,
  ) {}

  fail(reason: string): never {
    throw new FrameError(reason, this.id);
  }

  uint(i: number, name: string, max = MAX_ID): number {
    const v = this.a[i];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) {
      this.fail(`${name} must be an integer from 0 to ${max}`);
    }
    return v;
  }

  str(i: number, name: string, allowEmpty = false): string {
    const v = this.a[i];
    if (typeof v !== 'string' || (!allowEmpty && v.length === 0)) {
      this.fail(`${name} must be a non-empty string`);
    }
    return v;
  }

  optStr(i: number, name: string): string | null {
    return this.a[i] == null ? null : this.str(i, name);
  }

  bin(i: number, name: string): Uint8Array {
    const v = this.a[i];
    if (!(v instanceof Uint8Array)) this.fail(`${name} must be bin`);
    return v;
  }

  optBin(i: number, name: string): Uint8Array | null {
    return this.a[i] == null ? null : this.bin(i, name);
  }

  strArray(i: number, name: string, source: unknown[] = this.a): string[] {
    const v = source[i];
    if (!Array.isArray(v)) this.fail(`${name} must be an array of strings`);
    for (const s of v) {
      if (typeof s !== 'string' || s.length === 0) {
        this.fail(`${name} must be an array of non-empty strings`);
      }
    }
    return v as string[];
  }

  uintArray(i: number, name: string): number[] {
    const v = this.a[i];
    if (!Array.isArray(v) || v.length === 0 || !v.every(n => Number.isInteger(n) && n > 0)) {
      this.fail(`${name} must be a non-empty array of positive integers`);
    }
    return v as number[];
  }
}

function fromWire(raw: unknown): Frame {
  if (!Array.isArray(raw) || raw.length === 0) {
    throw new FrameError('a frame must be a non-empty MessagePack array');
  }
  const type = raw[0];
  // The id (second field of most frames) is read leniently first so that an
  // error about a later field can still be correlated to its request.
  const id = typeof raw[1] === 'number' && Number.isInteger(raw[1]) && raw[1] > 0 && raw[1] <= MAX_ID ? raw[1] : 0;
  const r = new Reader(raw, id);
  const need = (n: number) => {
    if (raw.length < n) r.fail(`frame type ${type} needs at least ${n} fields, got ${raw.length}`);
  };
  switch (type) {
    case FrameType.Hello: {
      need(3);
      const frame: HelloFrame = {
        type,
        versions: r.uintArray(1, 'hello.versions'),
        nodeId: r.str(2, 'hello.nodeId'),
        service: r.optStr(3, 'hello.service'),
        patterns: raw[4] == null ? [] : r.strArray(4, 'hello.patterns'),
        events: raw[5] == null ? [] : r.strArray(5, 'hello.events'),
        queue: r.optStr(6, 'hello.queue'),
      };
      return frame;
    }
    case FrameType.Welcome:
      need(7);
      return {
        type,
        version: r.uint(1, 'welcome.version'),
        relayId: r.str(2, 'welcome.relayId'),
        sessionId: r.str(3, 'welcome.sessionId'),
        nodeId: r.str(4, 'welcome.nodeId'),
        maxPayloadBytes: r.uint(5, 'welcome.maxPayloadBytes', Number.MAX_SAFE_INTEGER),
        heartbeatIntervalMs: r.uint(6, 'welcome.heartbeatIntervalMs', MAX_TIMEOUT_MS),
      };
    case FrameType.Request:
      need(5);
      return {
        type,
        id: positiveId(r),
        pattern: r.str(2, 'request.pattern'),
        payload: r.bin(3, 'request.payload'),
        timeoutMs: positiveTimeout(r, 4, 'request.timeoutMs'),
        peer: r.optStr(5, 'request.peer'),
        ext: r.optBin(6, 'request.ext'),
        claims: r.optBin(7, 'request.claims'),
      };
    case FrameType.Event: {
      need(4);
      const frame: EventFrame = {
        type,
        id: r.uint(1, 'event.id'),
        pattern: r.str(2, 'event.pattern'),
        payload: r.bin(3, 'event.payload'),
        peer: r.optStr(4, 'event.peer'),
        ext: r.optBin(5, 'event.ext'),
        claims: r.optBin(6, 'event.claims'),
      };
      // Trailing fields of event acks; a plain event leaves them off (and pays nothing to read them).
      if (raw.length > 7) {
        if (raw[7] != null) frame.flags = r.uint(7, 'event.flags', 1);
        if (raw[8] != null) frame.timeoutMs = positiveTimeout(r, 8, 'event.timeoutMs');
        if (raw[9] != null) frame.attempt = r.uint(9, 'event.attempt');
      }
      return frame;
    }
    case FrameType.Response: {
      need(3);
      const flags = r.uint(2, 'response.flags', 3);
      return {
        type,
        id: positiveId(r),
        flags,
        payload: r.optBin(3, 'response.payload'),
      };
    }
    case FrameType.Cancel:
      need(2);
      return { type, id: positiveId(r) };
    case FrameType.Discover:
      need(2);
      return { type, id: positiveId(r) };
    case FrameType.Ack:
      need(3);
      return { type, id: positiveId(r), recipients: r.uint(2, 'ack.recipients') };
    case FrameType.Error: {
      need(4);
      const frame: ErrorFrame = {
        type,
        id: r.uint(1, 'error.id'),
        code: r.str(2, 'error.code'),
        message: r.str(3, 'error.message', true),
      };
      if (raw[4] != null) frame.details = r.bin(4, 'error.details');
      return frame;
    }
    case FrameType.Ping:
      return { type };
    case FrameType.Pong:
      return { type };
    case FrameType.Wait:
      need(4);
      return {
        type,
        id: positiveId(r),
        pattern: r.str(2, 'wait.pattern'),
        timeoutMs: positiveTimeout(r, 3, 'wait.timeoutMs'),
      };
    case FrameType.Nodes: {
      need(3);
      const list = raw[2];
      if (!Array.isArray(list)) r.fail('nodes.nodes must be an array');
      const nodes: NodeInfo[] = list.map((n: unknown) => {
        if (!Array.isArray(n) || n.length < 5) r.fail('nodes.nodes entries must be 5-field arrays');
        const e = new Reader(n as unknown[], id);
        return {
          nodeId: e.str(0, 'nodes.nodeId'),
          service: e.optStr(1, 'nodes.service'),
          patterns: e.strArray(2, 'nodes.patterns'),
          events: e.strArray(3, 'nodes.events'),
          queue: e.optStr(4, 'nodes.queue'),
        };
      });
      return { type, id: positiveId(r), nodes };
    }
    case FrameType.TokenExpiring:
    case FrameType.Authorized:
      need(2);
      return { type, expiresAt: r.uint(1, 'expiresAt', Number.MAX_SAFE_INTEGER) };
    case FrameType.Auth:
      need(2);
      return { type, token: r.bin(1, 'auth.token') };
    case FrameType.GoAway:
      need(3);
      return { type, reason: r.str(1, 'goaway.reason', true), drainMs: r.uint(2, 'goaway.drainMs', MAX_TIMEOUT_MS) };
    case FrameType.Drain:
      need(2);
      return { type, id: positiveId(r) };
    case FrameType.Handled:
      need(2);
      return { type, id: positiveId(r), error: r.optBin(2, 'handled.error') };
    default:
      throw new FrameError(`unknown frame type ${describe(type)}`, id);
  }
}

/** A value as a reason names it: a number as is, anything else by its kind (the reason must stay short). */
function describe(v: unknown): string {
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return quote(v);
  if (v instanceof Uint8Array) return `(bin of ${v.length} bytes)`;
  if (Array.isArray(v)) return `(array of ${v.length})`;
  return `(${v === null ? 'nil' : typeof v})`;
}

function positiveId(r: Reader): number {
  const id = r.uint(1, 'id');
  if (id === 0) r.fail('id must be greater than 0');
  return id;
}

function positiveTimeout(r: Reader, i: number, name: string): number {
  const t = r.uint(i, name, MAX_TIMEOUT_MS);
  if (t === 0) r.fail(`${name} must be greater than 0`);
  return t;
}

const payloadEncoder = new Encoder({ ignoreUndefined: true });
const payloadDecoder = new Decoder();

/** Encodes an application value (request data, response, event data) as MessagePack. */
export function encodePayload(value: unknown): Uint8Array {
  return payloadEncoder.encode(value);
}

const transientPayloadEncoder = new Encoder({ ignoreUndefined: true });

/**
 * `encodePayload` without the copy: the bytes are a view of a buffer that the
 * next call overwrites. Only for a payload written into a frame at once (the
 * frame's own encoding copies it).
 */
export function encodePayloadTransient(value: unknown): Uint8Array {
  return transientPayloadEncoder.encodeSharedRef(value);
}

/** Decodes an application value encoded by `encodePayload`. */
export function decodePayload(bytes: Uint8Array): unknown {
  return payloadDecoder.decode(bytes);
}

/** One delivery of an event with `ack: 'handlers'` that failed (`RelayError.details` of HANDLER_FAILED). */
export interface FailedDelivery {
  nodeId: string;
  /** HANDLER_ERROR (the handler threw; `error` is what Nest made of it), TIMEOUT or PROVIDER_DISCONNECTED. */
  code: string;
  error?: unknown;
}

/** An ERROR frame as the error it stands for, with its details (HANDLER_FAILED: each failed delivery) decoded. */
export function errorFromFrame(frame: ErrorFrame): RelayError {
  let details: unknown;
  if (frame.details != null) {
    try {
      details = decodePayload(frame.details);
      if (frame.code === RelayErrorCode.HANDLER_FAILED && Array.isArray(details)) details = details.map(failedDelivery);
    } catch {
      details = undefined;
    }
  }
  return RelayError.fromWire({ code: frame.code, message: frame.message, details });
}

function failedDelivery(entry: unknown): FailedDelivery {
  const [nodeId, code, error] = entry as [string, string, Uint8Array | null];
  return error == null ? { nodeId, code } : { nodeId, code, error: decodePayload(error) };
}
