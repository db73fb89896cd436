import { Decoder, Encoder } from '@msgpack/msgpack';
import { FrameError, quote, RelayError, RelayErrorCode } from './errors.js';
import { type ErrorFrame, type Frame, FrameType, type NodeInfo } from './frames.js';

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

/** How a field travels, and the check on the way in. */
type Kind = 'id' | 'uint' | 'timeout' | 'str' | 'text' | 'bin' | 'strs' | 'versions' | 'nodes';

/** One field of a frame after its type: its key, kind and name in refusals; `nil` says what a missing value means. */
interface Field {
  key: string;
  kind: Kind;
  /** The name a refusal gives it (the `id` of most frames is just "id"). */
  name: string;
  /** Largest value of a `uint`. */
  max?: number;
  /** A missing (nil) value: refused (`required`), null, left off the frame, or an empty list. */
  nil: 'required' | 'null' | 'omit' | 'empty';
  /** Written as nil when 0 (a flag field nobody set). */
  zeroAsNil?: boolean;
}

/** A frame type's wire shape: its fields in order; trailing empty ones are left off the wire when `trim`. */
interface Shape {
  name: string;
  trim: boolean;
  fields: Field[];
}

const f = (
  key: string,
  kind: Kind,
  nil: Field['nil'] = 'required',
  extra: Partial<Field> = {},
): Omit<Field, 'name'> & { name?: string } => ({
  key,
  kind,
  nil,
  ...extra,
});

function shape(name: string, trim: boolean, fields: Array<Omit<Field, 'name'> & { name?: string }>): Shape {
  return { name, trim, fields: fields.map(x => ({ ...x, name: x.name ?? (x.kind === 'id' ? 'id' : `${name}.${x.key}`) })) };
}

const ID = f('id', 'id');

/** Every frame type's wire shape: one table drives both encode and decode. */
const SHAPES: Readonly<Record<FrameType, Shape>> = {
  [FrameType.Hello]: shape('hello', true, [
    f('versions', 'versions'),
    f('nodeId', 'str'),
    f('service', 'str', 'null'),
    f('patterns', 'strs', 'empty'),
    f('events', 'strs', 'empty'),
    f('queue', 'str', 'null'),
  ]),
  [FrameType.Welcome]: shape('welcome', false, [
    f('version', 'uint', 'required', { max: MAX_ID }),
    f('relayId', 'str'),
    f('sessionId', 'str'),
    f('nodeId', 'str'),
    f('maxPayloadBytes', 'uint', 'required', { max: Number.MAX_SAFE_INTEGER }),
    f('heartbeatIntervalMs', 'uint', 'required', { max: MAX_TIMEOUT_MS }),
  ]),
  [FrameType.Request]: shape('request', true, [
    ID,
    f('pattern', 'str'),
    f('payload', 'bin'),
    f('timeoutMs', 'timeout'),
    f('peer', 'str', 'null'),
    f('ext', 'bin', 'null'),
    f('claims', 'bin', 'null'),
  ]),
  [FrameType.Response]: shape('response', true, [ID, f('flags', 'uint', 'required', { max: 3 }), f('payload', 'bin', 'null')]),
  [FrameType.Cancel]: shape('cancel', false, [ID]),
  [FrameType.Event]: shape('event', true, [
    f('id', 'uint', 'required', { max: MAX_ID }),
    f('pattern', 'str'),
    f('payload', 'bin'),
    f('peer', 'str', 'null'),
    f('ext', 'bin', 'null'),
    f('claims', 'bin', 'null'),
    // The handler-ack fields: a plain event leaves them off (and pays nothing to read them).
    f('flags', 'uint', 'omit', { max: 1, zeroAsNil: true }),
    f('timeoutMs', 'timeout', 'omit'),
    f('attempt', 'uint', 'omit', { max: MAX_ID }),
  ]),
  [FrameType.Ack]: shape('ack', false, [ID, f('recipients', 'uint', 'required', { max: MAX_ID })]),
  [FrameType.Error]: shape('error', true, [
    f('id', 'uint', 'required', { max: MAX_ID }),
    f('code', 'str'),
    f('message', 'text'),
    f('details', 'bin', 'omit'),
  ]),
  [FrameType.Ping]: shape('ping', false, []),
  [FrameType.Pong]: shape('pong', false, []),
  [FrameType.Wait]: shape('wait', false, [ID, f('pattern', 'str'), f('timeoutMs', 'timeout')]),
  [FrameType.Discover]: shape('discover', false, [ID]),
  [FrameType.Nodes]: shape('nodes', false, [ID, f('nodes', 'nodes')]),
  [FrameType.TokenExpiring]: shape('token_expiring', false, [
    f('expiresAt', 'uint', 'required', { max: Number.MAX_SAFE_INTEGER, name: 'expiresAt' }),
  ]),
  [FrameType.Auth]: shape('auth', false, [f('token', 'bin')]),
  [FrameType.Authorized]: shape('authorized', false, [
    f('expiresAt', 'uint', 'required', { max: Number.MAX_SAFE_INTEGER, name: 'expiresAt' }),
  ]),
  [FrameType.GoAway]: shape('goaway', false, [f('reason', 'text'), f('drainMs', 'uint', 'required', { max: MAX_TIMEOUT_MS })]),
  [FrameType.Drain]: shape('drain', false, [ID]),
  [FrameType.Handled]: shape('handled', true, [ID, f('error', 'bin', 'null')]),
};

/** Fields a frame type cannot do without (every field up to the last required one). */
const REQUIRED = Object.fromEntries(
  Object.entries(SHAPES).map(([type, s]) => [type, s.fields.reduce((n, field, i) => (field.nil === 'required' ? i + 1 : n), 0)]),
) as Record<FrameType, number>;

function toWire(frame: Frame): unknown[] {
  const { fields, trim } = SHAPES[frame.type];
  const values = frame as unknown as Record<string, unknown>;
  const wire: unknown[] = [frame.type];
  for (const field of fields) {
    const v = values[field.key];
    if (field.kind === 'nodes') wire.push((v as NodeInfo[]).map(n => [n.nodeId, n.service, n.patterns, n.events, n.queue]));
    else wire.push(field.zeroAsNil === true && v === 0 ? undefined : v);
  }
  if (!trim) return wire;
  let end = wire.length;
  while (end > 1 && wire[end - 1] == null) end--;
  return end === wire.length ? wire : wire.slice(0, end);
}

function fromWire(raw: unknown): Frame {
  if (!Array.isArray(raw) || raw.length === 0) {
    throw new FrameError('a frame must be a non-empty MessagePack array');
  }
  const type: unknown = raw[0];
  // The id (second field of most frames) is read leniently first so that an
  // error about a later field can still be correlated to its request.
  const id = typeof raw[1] === 'number' && Number.isInteger(raw[1]) && raw[1] > 0 && raw[1] <= MAX_ID ? raw[1] : 0;
  if (typeof type !== 'number' || !Object.hasOwn(SHAPES, type)) throw new FrameError(`unknown frame type ${describe(type)}`, id);
  const required = REQUIRED[type as FrameType] + 1;
  if (raw.length < required) throw new FrameError(`frame type ${type} needs at least ${required} fields, got ${raw.length}`, id);
  const frame: Record<string, unknown> = { type };
  const fields = SHAPES[type as FrameType].fields;
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i];
    const v: unknown = raw[i + 1];
    if (v == null && field.nil !== 'required') {
      if (field.nil === 'null') frame[field.key] = null;
      else if (field.nil === 'empty') frame[field.key] = [];
      continue;
    }
    frame[field.key] = read(v, field, id);
  }
  return frame as unknown as Frame;
}

/** A field as its kind says it is; otherwise a FrameError naming it (correlated to `id`). */
function read(v: unknown, field: Field, id: number): unknown {
  switch (field.kind) {
    case 'id':
    case 'uint':
    case 'timeout': {
      const max = field.kind === 'uint' ? (field.max as number) : field.kind === 'id' ? MAX_ID : MAX_TIMEOUT_MS;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max)
        return invalid(field, id, `must be an integer from 0 to ${max}`);
      if (v === 0 && field.kind !== 'uint') return invalid(field, id, 'must be greater than 0');
      return v;
    }
    case 'str':
      return typeof v === 'string' && v.length > 0 ? v : invalid(field, id, 'must be a non-empty string');
    case 'text':
      return typeof v === 'string' ? v : invalid(field, id, 'must be a string');
    case 'bin':
      return v instanceof Uint8Array ? v : invalid(field, id, 'must be bin');
    case 'strs':
      return strings(v) ?? invalid(field, id, 'must be an array of non-empty strings');
    case 'versions':
      return Array.isArray(v) && v.length > 0 && v.every(n => Number.isInteger(n) && (n as number) > 0)
        ? v
        : invalid(field, id, 'must be a non-empty array of positive integers');
    case 'nodes':
      return Array.isArray(v) ? v.map(n => nodeInfo(n, id)) : invalid(field, id, 'must be an array');
  }
}

/** The FrameError of a field that is not what its kind says. */
function invalid(field: Field, id: number, reason: string): never {
  throw new FrameError(`${field.name} ${reason}`, id);
}

function strings(v: unknown): string[] | undefined {
  return Array.isArray(v) && v.every(s => typeof s === 'string' && s.length > 0) ? (v as string[]) : undefined;
}

/** One entry of NODES: [nodeId, service, patterns, events, queue]. */
function nodeInfo(n: unknown, id: number): NodeInfo {
  if (!Array.isArray(n) || n.length < 5) throw new FrameError('nodes.nodes entries must be 5-field arrays', id);
  const field = (key: string, kind: Kind, nil: Field['nil'] = 'required'): Field => ({ key, kind, nil, name: `nodes.${key}` });
  const str = (v: unknown, fd: Field) => (v == null && fd.nil === 'null' ? null : (read(v, fd, id) as string));
  return {
    nodeId: str(n[0], field('nodeId', 'str')) as string,
    service: str(n[1], field('service', 'str', 'null')),
    patterns: read(n[2], field('patterns', 'strs'), id) as string[],
    events: read(n[3], field('events', 'strs'), id) as string[],
    queue: str(n[4], field('queue', 'str', 'null')),
  };
}

/** A value as a reason names it: a number as is, anything else by its kind (the reason must stay short). */
function describe(v: unknown): string {
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return quote(v);
  if (v instanceof Uint8Array) return `(bin of ${v.length} bytes)`;
  if (Array.isArray(v)) return `(array of ${v.length})`;
  return `(${v === null ? 'nil' : typeof v})`;
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
      if (frame.code === (RelayErrorCode.HANDLER_FAILED as string) && Array.isArray(details)) details = details.map(failedDelivery);
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
