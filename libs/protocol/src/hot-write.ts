import { type EventFrame, type Frame, FrameType, type RequestFrame, type ResponseFrame } from './frames.js';

/**
 * The hot frames written by hand (see hot-read.ts for which, and why): byte
 * for byte what the general encoder writes, or undefined for the general
 * encoder to write.
 */

const MAX_ID = 0xffff_ffff;
/** Longest string remembered as ASCII. */
const MAX_KEPT_LENGTH = 64;
const EMPTY = new Uint8Array(0);

/** Makes the bytes a frame is written into (Node passes `Buffer.allocUnsafe`: pooled, and what sockets take as is). */
export type FrameAllocator = (size: number) => Uint8Array;

export const allocateZeroed: FrameAllocator = size => new Uint8Array(size);

/** Strings written lately that were ASCII: their length is their size, no need to look at each character again. */
const asciiSeen = new Set<string>();
const MAX_ASCII_SEEN = 1024;

/**
 * The length of `s` when it is ASCII (its size in bytes too), else -1: a
 * string with other characters is left to the general encoder, whose UTF-8
 * (lone surrogates included) is then what is written.
 */
function asciiLength(s: string): number {
  if (asciiSeen.has(s)) return s.length;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return -1;
  if (s.length <= MAX_KEPT_LENGTH) {
    if (asciiSeen.size >= MAX_ASCII_SEEN) asciiSeen.clear();
    asciiSeen.add(s);
  }
  return s.length;
}

/** Size of an unsigned integer as MessagePack writes it. */
function uintSize(v: number): number {
  return v < 0x80 ? 1 : v < 0x100 ? 2 : v < 0x1_0000 ? 3 : 5;
}

function strSize(bytes: number): number {
  return (bytes < 32 ? 1 : bytes < 0x100 ? 2 : bytes < 0x1_0000 ? 3 : 5) + bytes;
}

function binSize(bytes: number): number {
  return (bytes < 0x100 ? 2 : bytes < 0x1_0000 ? 3 : 5) + bytes;
}

/** Whether `v` is written here: a uint up to 32 bits (anything else goes the general way). */
function plainUint(v: unknown): v is number {
  return typeof v === 'number' && v >= 0 && v <= MAX_ID && Number.isInteger(v);
}

function binOrNull(v: unknown): v is Uint8Array | null | undefined {
  return v == null || v instanceof Uint8Array;
}

function strOrNull(v: unknown): v is string | null | undefined {
  return v == null || typeof v === 'string';
}

/** Writes a frame of known size field by field. */
class Writer {
  out: Uint8Array = EMPTY;
  at = 0;

  /** Whether frames start with their WebSocket header (see FrameCodecLimits.webSocketHeader). */
  header = false;

  /** A payload written as a piece of its own (see writeHotMessage), not copied; undefined: none. */
  apart: Uint8Array | undefined = undefined;
  /** Where the bytes after `apart` start in `out`. */
  private resume = -1;

  /** Starts a frame of `size` bytes; when `apart` is set, its bytes are not allocated (they stay where they are). */
  start(alloc: FrameAllocator, size: number, fields: number): void {
    const head = this.header ? webSocketHeaderSize(size) : 0;
    const o = (this.out = alloc(head + size - (this.apart?.length ?? 0)));
    if (head !== 0) writeWebSocketHeader(o, size);
    o[head] = 0x90 | fields;
    this.at = head + 1;
    this.resume = -1;
  }

  uint(v: number): void {
    const o = this.out;
    let at = this.at;
    if (v < 0x80) {
      o[at++] = v;
    } else if (v < 0x100) {
      o[at++] = 0xcc;
      o[at++] = v;
    } else if (v < 0x1_0000) {
      o[at++] = 0xcd;
      o[at++] = v >>> 8;
      o[at++] = v & 0xff;
    } else {
      o[at++] = 0xce;
      o[at++] = v >>> 24;
      o[at++] = (v >>> 16) & 0xff;
      o[at++] = (v >>> 8) & 0xff;
      o[at++] = v & 0xff;
    }
    this.at = at;
  }

  /** An ASCII string (see asciiLength). */
  str(s: string): void {
    this.lengthHead(s.length, 0xa0, 0xd9);
    const o = this.out;
    let at = this.at;
    for (let i = 0; i < s.length; i++) o[at++] = s.charCodeAt(i);
    this.at = at;
  }

  bin(b: Uint8Array): void {
    this.lengthHead(b.length, -1, 0xc4);
    if (b === this.apart && this.resume < 0) {
      this.resume = this.at;
      return;
    }
    this.out.set(b, this.at);
    this.at += b.length;
  }

  nil(): void {
    this.out[this.at++] = 0xc0;
  }

  optStr(s: string | null): void {
    if (s === null) this.nil();
    else this.str(s);
  }

  optUint(v: number | undefined): void {
    if (v == null) this.nil();
    else this.uint(v);
  }

  optBin(b: Uint8Array | null): void {
    if (b === null) this.nil();
    else this.bin(b);
  }

  /** The head of a str (fix: 0xa0) or bin (fix: -1, none): 8, 16 or 32-bit length after `first8` and the next two markers. */
  private lengthHead(len: number, fix: number, first8: number): void {
    const o = this.out;
    let at = this.at;
    if (fix >= 0 && len < 32) {
      o[at++] = fix | len;
    } else if (len < 0x100) {
      o[at++] = first8;
      o[at++] = len;
    } else if (len < 0x1_0000) {
      o[at++] = first8 + 1;
      o[at++] = len >>> 8;
      o[at++] = len & 0xff;
    } else {
      o[at++] = first8 + 2;
      o[at++] = len >>> 24;
      o[at++] = (len >>> 16) & 0xff;
      o[at++] = (len >>> 8) & 0xff;
      o[at++] = len & 0xff;
    }
    this.at = at;
  }

  done(): Uint8Array {
    const o = this.out;
    this.out = EMPTY;
    return o;
  }

  /** The frame in pieces: what comes before the payload set apart, the payload itself, what comes after (if anything). */
  pieces(): Uint8Array[] {
    const o = this.done();
    const apart = this.apart!;
    this.apart = undefined;
    const before = o.subarray(0, this.resume);
    return this.resume === this.at ? [before, apart] : [before, apart, o.subarray(this.resume, this.at)];
  }
}

const w = new Writer();

/** Size of the sender fields (peer, ext, claims) written up to the `count`th, nil for one not set. */
function senderSize(f: RequestFrame | EventFrame, count: number, peerBytes: number): number {
  let size = 0;
  if (count > 0) size += f.peer == null ? 1 : strSize(peerBytes);
  if (count > 1) size += f.ext == null ? 1 : binSize(f.ext.length);
  if (count > 2) size += f.claims == null ? 1 : binSize(f.claims.length);
  return size;
}

function writeSender(f: RequestFrame | EventFrame, count: number): void {
  if (count > 0) w.optStr(f.peer ?? null);
  if (count > 1) w.optBin(f.ext ?? null);
  if (count > 2) w.optBin(f.claims ?? null);
}

/** How many sender fields are written: up to the last one set (the general encoder leaves trailing nils off too). */
function senderFields(f: RequestFrame | EventFrame): number {
  return f.claims != null ? 3 : f.ext != null ? 2 : f.peer != null ? 1 : 0;
}

/** The sender fields are written as they are: a string or nil, bins or nil. */
function plainSender(f: RequestFrame | EventFrame): boolean {
  return strOrNull(f.peer) && binOrNull(f.ext) && binOrNull(f.claims);
}

function writeRequest(f: RequestFrame, alloc: FrameAllocator): boolean {
  if (!plainUint(f.id) || !plainUint(f.timeoutMs) || typeof f.pattern !== 'string' || !(f.payload instanceof Uint8Array)) return false;
  const window = f.window;
  if (!plainSender(f) || (window != null && !plainUint(window))) return false;
  // Every sender field is written (nil where not set) when the window follows.
  const sender = window != null ? 3 : senderFields(f);
  const patternBytes = asciiLength(f.pattern);
  const peerBytes = f.peer == null ? 0 : asciiLength(f.peer);
  if (patternBytes < 0 || peerBytes < 0) return false;
  const size = 2 + uintSize(f.id) + strSize(patternBytes) + binSize(f.payload.length) + uintSize(f.timeoutMs);
  const windowSize = window != null ? uintSize(window) : 0;
  w.start(alloc, size + senderSize(f, sender, peerBytes) + windowSize, 5 + sender + (window != null ? 1 : 0));
  w.uint(FrameType.Request);
  w.uint(f.id);
  w.str(f.pattern);
  w.bin(f.payload);
  w.uint(f.timeoutMs);
  writeSender(f, sender);
  if (window != null) w.uint(window);
  return true;
}

function writeResponse(f: ResponseFrame, alloc: FrameAllocator): boolean {
  if (!plainUint(f.id) || !plainUint(f.flags) || !binOrNull(f.payload)) return false;
  const n = f.payload != null ? 4 : 3;
  w.start(alloc, 2 + uintSize(f.id) + uintSize(f.flags) + (n > 3 ? binSize(f.payload!.length) : 0), n);
  w.uint(FrameType.Response);
  w.uint(f.id);
  w.uint(f.flags);
  if (n > 3) w.bin(f.payload!);
  return true;
}

function writeEvent(f: EventFrame, alloc: FrameAllocator): boolean {
  if (!plainUint(f.id) || typeof f.pattern !== 'string' || !(f.payload instanceof Uint8Array) || !plainSender(f)) return false;
  // The handler-ack fields: a flags field of 0 is left off, as the general encoder leaves it.
  const flags = f.flags === 0 ? undefined : f.flags;
  const { timeoutMs, attempt } = f;
  if ((flags != null && !plainUint(flags)) || (timeoutMs != null && !plainUint(timeoutMs)) || (attempt != null && !plainUint(attempt))) {
    return false;
  }
  const acks = attempt != null ? 3 : timeoutMs != null ? 2 : flags != null ? 1 : 0;
  // Every sender field is written (nil where not set) when an ack field follows.
  const sender = acks > 0 ? 3 : senderFields(f);
  const patternBytes = asciiLength(f.pattern);
  const peerBytes = f.peer == null ? 0 : asciiLength(f.peer);
  if (patternBytes < 0 || peerBytes < 0) return false;
  let size = 2 + uintSize(f.id) + strSize(patternBytes) + binSize(f.payload.length) + senderSize(f, sender, peerBytes);
  if (acks > 0) size += optUintSize(flags);
  if (acks > 1) size += optUintSize(timeoutMs);
  if (acks > 2) size += optUintSize(attempt);
  w.start(alloc, size, 4 + sender + acks);
  w.uint(FrameType.Event);
  w.uint(f.id);
  w.str(f.pattern);
  w.bin(f.payload);
  writeSender(f, sender);
  if (acks > 0) w.optUint(flags);
  if (acks > 1) w.optUint(timeoutMs);
  if (acks > 2) w.optUint(attempt);
  return true;
}

function optUintSize(v: number | undefined): number {
  return v == null ? 1 : uintSize(v);
}

/** A frame of its type and uint fields only (CANCEL, ACK, PING, PONG). */
function writeUints(alloc: FrameAllocator, values: readonly number[]): boolean {
  let size = 1;
  for (const v of values) {
    if (!plainUint(v)) return false;
    size += uintSize(v);
  }
  w.start(alloc, size, values.length);
  for (const v of values) w.uint(v);
  return true;
}

/**
 * Size of the header of an unmasked binary WebSocket message of `length`
 * bytes, as a server sends one (RFC 6455, section 5.2): 2 bytes, 4 from 126
 * bytes on, 10 from 64 KiB on.
 */
export function webSocketHeaderSize(length: number): number {
  return length < 126 ? 2 : length < 0x1_0000 ? 4 : 10;
}

/** Writes that header at the start of `out` (FIN, binary opcode, no mask, the length); returns its size. */
export function writeWebSocketHeader(out: Uint8Array, length: number): number {
  out[0] = 0x82;
  if (length < 126) {
    out[1] = length;
    return 2;
  }
  if (length < 0x1_0000) {
    out[1] = 126;
    out[2] = length >>> 8;
    out[3] = length & 0xff;
    return 4;
  }
  out[1] = 127;
  // Lengths fit in 53 bits: the high word is what is over 2^32.
  const high = Math.floor(length / 0x1_0000_0000);
  out[2] = 0;
  out[3] = 0;
  out[4] = (high >>> 8) & 0xff;
  out[5] = high & 0xff;
  out[6] = length >>> 24;
  out[7] = (length >>> 16) & 0xff;
  out[8] = (length >>> 8) & 0xff;
  out[9] = length & 0xff;
  return 10;
}

/** Writes a hot frame with `w`; false when it is not one, or has a value the general encoder must write. */
function write(frame: Frame, alloc: FrameAllocator): boolean {
  switch (frame.type) {
    case FrameType.Request:
      return writeRequest(frame, alloc);
    case FrameType.Response:
      return writeResponse(frame, alloc);
    case FrameType.Event:
      return writeEvent(frame, alloc);
    case FrameType.Cancel:
      return writeUints(alloc, [frame.type, frame.id]);
    case FrameType.Ack:
      return writeUints(alloc, [frame.type, frame.id, frame.recipients]);
    case FrameType.Handled:
      return frame.error == null && writeUints(alloc, [frame.type, frame.id]);
    case FrameType.Ping:
    case FrameType.Pong:
      return writeUints(alloc, [frame.type]);
    default:
      return false;
  }
}

/**
 * One of the hot frames written by hand, byte for byte what the general
 * encoder writes (after its WebSocket header when `header`); undefined for
 * any other frame, or a value it must write.
 */
export function writeHotFrame(frame: Frame, alloc: FrameAllocator, header = false): Uint8Array | undefined {
  w.header = header;
  w.apart = undefined;
  return write(frame, alloc) ? w.done() : undefined;
}

/**
 * A hot frame as the WebSocket message a server sends (header first), with
 * a payload of `apartFrom` bytes or more left where it is: the message is
 * then its pieces (the bytes before the payload, the payload, the bytes after
 * it), to be written one after the other, so that a large payload is
 * forwarded without being copied. Undefined as for writeHotFrame.
 */
export function writeHotMessage(frame: Frame, alloc: FrameAllocator, apartFrom: number): Uint8Array | Uint8Array[] | undefined {
  w.header = true;
  const payload = 'payload' in frame ? frame.payload : null;
  w.apart = payload instanceof Uint8Array && payload.length >= apartFrom ? payload : undefined;
  if (!write(frame, alloc)) {
    w.apart = undefined;
    return undefined;
  }
  return w.apart === undefined ? w.done() : w.pieces();
}
