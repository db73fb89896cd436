import { MAX_CREDIT } from './constants.js';
import {
  type AckFrame,
  type EventFrame,
  type Frame,
  FrameType,
  type HandledFrame,
  type RequestFrame,
  type ResponseFrame,
} from './frames.js';

/**
 * The frames every call and event is made of (REQUEST, RESPONSE, CANCEL,
 * EVENT, ACK, HANDLED, PING, PONG), read and written by hand: a frame is a
 * short flat array, and a general MessagePack codec spends most of its time
 * on what such a frame never has (maps, nesting, a copy of the result).
 *
 * Both directions only take the plain, canonical case and step aside
 * otherwise (undefined): the codec then does what it always did, so what is
 * accepted, refused and produced stays exactly the general path's. Reading
 * steps aside on anything unusual (a non-ASCII string, a float, an unknown
 * trailing field, a value over a limit); writing on a value the wire does
 * not take as is (a number that is not a 32-bit uint).
 */

const MAX_ID = 0xffff_ffff;
const MAX_TIMEOUT_MS = 0x7fff_ffff;
/** Not a plain value of the kind asked for: the general path decides. */
const ASIDE = -1;

/** Limits the reader checks (the codec's own). */
export interface HotReadLimits {
  maxStringBytes: number;
  maxBinBytes: number;
  /** Values in a whole frame: the array and its fields. */
  maxValues: number;
  /** Entries of an array (the frame is one). */
  maxArrayLength: number;
}

// The frame being read: module state, as every read is synchronous and starts over.
let buf: Uint8Array = new Uint8Array(0);
let pos = 0;
let limits: HotReadLimits;

/** A uint (fixint, uint 8/16/32), or ASIDE. */
function uint(): number {
  const b = buf[pos];
  if (b <= 0x7f) {
    pos += 1;
    return b;
  }
  if (b === 0xcc) {
    pos += 2;
    return buf[pos - 1];
  }
  if (b === 0xcd) {
    pos += 3;
    return (buf[pos - 2] << 8) | buf[pos - 1];
  }
  if (b === 0xce) {
    pos += 5;
    return buf[pos - 4] * 0x100_0000 + ((buf[pos - 3] << 16) | (buf[pos - 2] << 8) | buf[pos - 1]);
  }
  return ASIDE;
}

/** A non-empty ASCII string within the limit, or undefined (nil is also undefined: see `nil()`). */
function str(): string | undefined {
  const b = buf[pos];
  let len: number;
  let at: number;
  if (b >= 0xa0 && b <= 0xbf) {
    len = b & 0x1f;
    at = pos + 1;
  } else if (b === 0xd9) {
    len = buf[pos + 1];
    at = pos + 2;
  } else if (b === 0xda) {
    len = (buf[pos + 1] << 8) | buf[pos + 2];
    at = pos + 3;
  } else {
    return undefined;
  }
  const end = at + len;
  if (len === 0 || len > limits.maxStringBytes || end > buf.length) return undefined;
  const s = len <= MAX_KEPT_LENGTH ? kept(at, len) : ascii(at, end);
  if (s !== undefined) pos = end;
  return s;
}

/** The ASCII string at buf[at, end), or undefined when it is not ASCII. */
function ascii(at: number, end: number): string | undefined {
  let s = '';
  for (let i = at; i < end; i++) {
    const c = buf[i];
    if (c >= 0x80) return undefined;
    s += String.fromCharCode(c);
  }
  return s;
}

/**
 * Strings read lately (patterns, node ids: the same few again and again),
 * by a hash of their bytes: one found is compared byte by byte, not built,
 * and being the same string each time, it keeps the hash maps computed for
 * it (every routing lookup by pattern is a map lookup).
 */
const KEPT_SLOTS = 512;
const MAX_KEPT_LENGTH = 64;
const keptStrings: Array<string | undefined> = new Array<string | undefined>(KEPT_SLOTS);

function kept(at: number, len: number): string | undefined {
  const slot = (len * 31 + buf[at] * 7 + buf[at + len - 1] * 3 + buf[at + (len >> 1)]) & (KEPT_SLOTS - 1);
  const s = keptStrings[slot];
  if (s !== undefined && s.length === len) {
    let i = 0;
    while (i < len && s.charCodeAt(i) === buf[at + i]) i++;
    if (i === len) return s;
  }
  const fresh = ascii(at, at + len);
  if (fresh !== undefined) keptStrings[slot] = fresh;
  return fresh;
}

/** A bin within the limit, as a view of the frame's bytes; or undefined. */
function bin(): Uint8Array | undefined {
  const b = buf[pos];
  let len: number;
  let at: number;
  if (b === 0xc4) {
    len = buf[pos + 1];
    at = pos + 2;
  } else if (b === 0xc5) {
    len = (buf[pos + 1] << 8) | buf[pos + 2];
    at = pos + 3;
  } else if (b === 0xc6) {
    len = buf[pos + 1] * 0x100_0000 + ((buf[pos + 2] << 16) | (buf[pos + 3] << 8) | buf[pos + 4]);
    at = pos + 5;
  } else {
    return undefined;
  }
  const end = at + len;
  if (len > limits.maxBinBytes || end > buf.length) return undefined;
  pos = end;
  return buf.subarray(at, end);
}

/** A payload: a bin that is not empty (an empty one is the general path's to refuse). */
function payloadBin(): Uint8Array | undefined {
  const v = bin();
  return v === undefined || v.length === 0 ? undefined : v;
}

function nil(): boolean {
  if (buf[pos] !== 0xc0) return false;
  pos += 1;
  return true;
}

/** Field count of the array the frame is (fixarray only: hot frames have a few fields), or ASIDE. */
function arrayHeader(): number {
  const b = buf[pos];
  if (b < 0x91 || b > 0x9f) return ASIDE;
  pos += 1;
  return b & 0x0f;
}

/** An optional string field: null for nil, undefined when it must go the general way. */
function optStr(): string | null | undefined {
  return nil() ? null : str();
}

function optBin(): Uint8Array | null | undefined {
  return nil() ? null : bin();
}

function positive(max: number): number {
  const v = uint();
  return v > 0 && v <= max ? v : ASIDE;
}

function readRequest(n: number): RequestFrame | undefined {
  if (n < 5 || n > 9) return undefined;
  const id = positive(MAX_ID);
  if (id === ASIDE) return undefined;
  const pattern = str();
  if (pattern === undefined) return undefined;
  const payload = payloadBin();
  if (payload === undefined) return undefined;
  const timeoutMs = positive(MAX_TIMEOUT_MS);
  if (timeoutMs === ASIDE) return undefined;
  const peer = n > 5 ? optStr() : null;
  const ext = n > 6 ? optBin() : null;
  const claims = n > 7 ? optBin() : null;
  if (peer === undefined || ext === undefined || claims === undefined) return undefined;
  const frame: RequestFrame = { type: FrameType.Request, id, pattern, payload, timeoutMs, peer, ext, claims };
  if (n > 8 && !nil()) {
    const window = positive(MAX_CREDIT);
    if (window === ASIDE) return undefined;
    frame.window = window;
  }
  return frame;
}

function readResponse(n: number): ResponseFrame | undefined {
  if (n < 3 || n > 4) return undefined;
  const id = positive(MAX_ID);
  const flags = uint();
  if (id === ASIDE || flags === ASIDE || flags > 3) return undefined;
  const payload = n > 3 ? (nil() ? null : payloadBin()) : null;
  if (payload === undefined) return undefined;
  return { type: FrameType.Response, id, flags, payload };
}

function readEvent(n: number): EventFrame | undefined {
  if (n < 4 || n > 10) return undefined;
  const id = uint();
  if (id === ASIDE) return undefined;
  const pattern = str();
  const payload = pattern === undefined ? undefined : payloadBin();
  if (payload === undefined) return undefined;
  const peer = n > 4 ? optStr() : null;
  const ext = n > 5 ? optBin() : null;
  const claims = n > 6 ? optBin() : null;
  if (peer === undefined || ext === undefined || claims === undefined) return undefined;
  const frame: EventFrame = { type: FrameType.Event, id, pattern: pattern!, payload, peer, ext, claims };
  if (n > 7 && !nil()) {
    const flags = uint();
    if (flags === ASIDE || flags > 1) return undefined;
    frame.flags = flags;
  }
  if (n > 8 && !nil()) {
    const timeoutMs = positive(MAX_TIMEOUT_MS);
    if (timeoutMs === ASIDE) return undefined;
    frame.timeoutMs = timeoutMs;
  }
  if (n > 9 && !nil()) {
    const attempt = uint();
    if (attempt === ASIDE) return undefined;
    frame.attempt = attempt;
  }
  return frame;
}

function readAck(n: number): AckFrame | undefined {
  if (n !== 3) return undefined;
  const id = positive(MAX_ID);
  const recipients = uint();
  return id === ASIDE || recipients === ASIDE ? undefined : { type: FrameType.Ack, id, recipients };
}

function readHandled(n: number): HandledFrame | undefined {
  if (n < 2 || n > 3) return undefined;
  const id = positive(MAX_ID);
  const error = n > 2 ? optBin() : null;
  return id === ASIDE || error === undefined ? undefined : { type: FrameType.Handled, id, error };
}

function readBody(type: FrameType, n: number): Frame | undefined {
  switch (type) {
    case FrameType.Request:
      return readRequest(n);
    case FrameType.Response:
      return readResponse(n);
    case FrameType.Event:
      return readEvent(n);
    case FrameType.Cancel: {
      const id = n === 2 ? positive(MAX_ID) : ASIDE;
      return id === ASIDE ? undefined : { type: FrameType.Cancel, id };
    }
    case FrameType.Ack:
      return readAck(n);
    case FrameType.Handled:
      return readHandled(n);
    case FrameType.Ping:
      return n === 1 ? { type: FrameType.Ping } : undefined;
    case FrameType.Pong:
      return n === 1 ? { type: FrameType.Pong } : undefined;
    default:
      return undefined;
  }
}

/**
 * One of the hot frames read by hand, exactly as the general path would read
 * it; undefined when it is anything else, or anything the general path must
 * judge (it then also gives the reason a frame is refused).
 */
export function readHotFrame(bytes: Uint8Array, within: HotReadLimits): Frame | undefined {
  buf = bytes;
  pos = 0;
  limits = within;
  try {
    const n = bytes.length === 0 ? ASIDE : arrayHeader();
    if (n === ASIDE || n + 1 > within.maxValues || n > within.maxArrayLength) return undefined;
    const type = buf[pos];
    if (type > 0x7f) return undefined;
    pos += 1;
    const frame = readBody(type, n);
    // Exactly one value: trailing bytes are the general path's to refuse.
    return frame !== undefined && pos === bytes.length ? frame : undefined;
  } finally {
    buf = EMPTY;
  }
}

const EMPTY = new Uint8Array(0);
