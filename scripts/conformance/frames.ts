import {
  type AckFrame,
  type ErrorFrame,
  type EventFrame,
  type Frame,
  FrameType,
  type RequestFrame,
  type ResponseFrame,
} from '@wsrelay/protocol';
import { check, describeFrame, Failure, hex, sameBytes } from './failure.js';
import type { Match } from './peer.js';

/** A caller's REQUEST. */
export function request(
  id: number,
  pattern: string,
  payload: Uint8Array,
  timeoutMs: number,
  o: { peer?: string; ext?: Uint8Array; window?: number } = {},
): RequestFrame {
  const frame: RequestFrame = {
    type: FrameType.Request,
    id,
    pattern,
    payload,
    timeoutMs,
    peer: o.peer ?? null,
    ext: o.ext ?? null,
    claims: null,
  };
  if (o.window !== undefined) frame.window = o.window;
  return frame;
}

export function response(id: number, flags: number, payload: Uint8Array | null): ResponseFrame {
  return { type: FrameType.Response, id, flags, payload };
}

/** An emitter's EVENT (`flags` and `timeoutMs` for handler acks). */
export function event(id: number, pattern: string, payload: Uint8Array, o: { flags?: number; timeoutMs?: number } = {}): EventFrame {
  return { type: FrameType.Event, id, pattern, payload, peer: null, ext: null, claims: null, flags: o.flags, timeoutMs: o.timeoutMs };
}

export const ofType =
  (type: FrameType): Match =>
  f =>
    f.type === type;

/** A REQUEST delivered for `pattern`. */
export const requestFor =
  (pattern: string): Match =>
  f =>
    f.type === FrameType.Request && f.pattern === pattern;

/** An EVENT delivered for `subject`. */
export const eventFor =
  (subject: string): Match =>
  f =>
    f.type === FrameType.Event && f.pattern === subject;

/** Whatever the relay answers a frame with id `id`: RESPONSE, ACK, ERROR or NODES. */
export const answerTo =
  (id: number): Match =>
  f =>
    (f.type === FrameType.Response || f.type === FrameType.Ack || f.type === FrameType.Error || f.type === FrameType.Nodes) && f.id === id;

export const anyError: Match = ofType(FrameType.Error);

/** `f` is ERROR `code` for `id`, or the failure says what it is instead. */
export function expectError(f: Frame, code: string, id: number, context: string): ErrorFrame {
  if (f.type === FrameType.Error && f.code === code && f.id === id) return f;
  throw new Failure(`${context}: expected ERROR ${code} with id ${id}, got ${describeFrame(f)}`);
}

export function expectAck(f: Frame, id: number, recipients: number, context: string): AckFrame {
  if (f.type === FrameType.Ack && f.id === id && f.recipients === recipients) return f;
  throw new Failure(`${context}: expected ACK id=${id} recipients=${recipients}, got ${describeFrame(f)}`);
}

/** `f` is the RESPONSE `id` with `flags`, carrying exactly `payload` (null: none). */
export function expectResponse(f: Frame, id: number, flags: number, payload: Uint8Array | null, context: string): ResponseFrame {
  if (f.type !== FrameType.Response || f.id !== id || f.flags !== flags) {
    throw new Failure(`${context}: expected RESPONSE id=${id} flags=${flags}, got ${describeFrame(f)}`);
  }
  check(
    sameBytes(f.payload, payload),
    `${context}: the payload must be passed on untouched: sent ${payload === null ? 'none' : hex(payload)}, got ${f.payload === null ? 'none' : hex(f.payload)}`,
  );
  return f;
}

export function expectType<T extends FrameType>(f: Frame, type: T, context: string): Extract<Frame, { type: T }> {
  if (f.type === type) return f as Extract<Frame, { type: T }>;
  throw new Failure(`${context}: expected ${FrameType[type].toUpperCase()}, got ${describeFrame(f)}`);
}

/** A frame's id (0 for the types without one). */
export const idOf = (f: Frame): number => ('id' in f ? f.id : 0);

/** A valid id of a relay's delivery (REQUEST, handler-acked EVENT): 1..2^32-1. */
export function checkRelayId(id: number, what: string): void {
  check(Number.isInteger(id) && id > 0 && id <= 0xffff_ffff, `${what}: the relay's id must be from 1 to 2^32-1, got ${id}`);
}
