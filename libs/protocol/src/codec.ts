import { Decoder, Encoder } from '@msgpack/msgpack';
import { FrameError, RelayError, RelayErrorCode } from './errors.js';
import { fromWire, toWire } from './frame-wire.js';
import type { ErrorFrame, Frame } from './frames.js';
import { type HotReadLimits, readHotFrame } from './hot-read.js';
import {
  allocateZeroed,
  type FrameAllocator,
  webSocketHeaderSize,
  writeHotFrame,
  writeHotMessage,
  writeWebSocketHeader,
} from './hot-write.js';
import { checkMsgpackBounds, type MsgpackBounds, peekFrameHead } from './msgpack-bounds.js';

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
  /**
   * Most values in a whole frame (every field and every array entry). A frame
   * over it is refused before it is decoded.
   * @default 1000000
   */
  maxValues?: number;
  /**
   * Makes the bytes the frequent frames are written into. On Node,
   * `Buffer.allocUnsafe` (pooled, and taken by sockets as is) is cheaper than
   * the default, a zeroed `Uint8Array`.
   */
  allocate?: FrameAllocator;
  /**
   * Each encoded frame starts with the header of the unmasked binary
   * WebSocket message it travels as (what a server sends, RFC 6455 section
   * 5.2), so that it can be written to a socket as one piece; `frameOf()`
   * gives the frame alone. Decoding is not affected.
   * @default false
   */
  webSocketHeader?: boolean;
}

export const DEFAULT_MAX_STRING_BYTES = 4096;
export const DEFAULT_MAX_ARRAY_LENGTH = 10_000;
export const DEFAULT_MAX_BIN_BYTES = 16 * 1024 * 1024;
export const DEFAULT_MAX_VALUES = 1_000_000;
/**
 * Nesting of the deepest frame (NODES: the frame, its node list, a node, the
 * node's patterns); anything deeper is refused before it is decoded.
 */
export const MAX_FRAME_DEPTH = 4;
/** Fields a frame may have, unknown trailing ones included (the most any type defines is 10). */
export const MAX_FRAME_FIELDS = 32;

/**
 * Encodes frames to MessagePack arrays and decodes and validates them back.
 * One instance reuses its encoder buffer; it is not meant to be shared across
 * threads, and every call is synchronous.
 */
export class FrameCodec {
  private readonly encoder = new Encoder({ ignoreUndefined: true });
  private readonly decoder: Decoder;
  private readonly bounds: MsgpackBounds;
  private readonly hot: HotReadLimits;
  private readonly allocate: FrameAllocator;
  private readonly header: boolean;

  constructor(limits: FrameCodecLimits = {}) {
    this.bounds = { maxDepth: MAX_FRAME_DEPTH, maxElements: limits.maxValues ?? DEFAULT_MAX_VALUES, maxTopLength: MAX_FRAME_FIELDS };
    this.hot = {
      maxStringBytes: limits.maxStringBytes ?? DEFAULT_MAX_STRING_BYTES,
      maxBinBytes: limits.maxBinBytes ?? DEFAULT_MAX_BIN_BYTES,
      maxValues: this.bounds.maxElements,
      maxArrayLength: limits.maxArrayLength ?? DEFAULT_MAX_ARRAY_LENGTH,
    };
    this.allocate = limits.allocate ?? allocateZeroed;
    this.header = limits.webSocketHeader ?? false;
    this.decoder = new Decoder({
      maxStrLength: limits.maxStringBytes ?? DEFAULT_MAX_STRING_BYTES,
      maxArrayLength: limits.maxArrayLength ?? DEFAULT_MAX_ARRAY_LENGTH,
      maxMapLength: 0,
      maxExtLength: 0,
      maxBinLength: limits.maxBinBytes ?? DEFAULT_MAX_BIN_BYTES,
    });
  }

  /** The frame's bytes: the frequent frames written by hand (same bytes), the others by the MessagePack encoder. */
  encode(frame: Frame): Uint8Array {
    const hot = writeHotFrame(frame, this.allocate, this.header);
    if (hot !== undefined) return hot;
    if (!this.header) return this.encoder.encode(toWire(frame));
    const bytes = this.encoder.encodeSharedRef(toWire(frame));
    const out = this.allocate(webSocketHeaderSize(bytes.length) + bytes.length);
    out.set(bytes, writeWebSocketHeader(out, bytes.length));
    return out;
  }

  /**
   * The frame as the WebSocket message it travels as (for a codec with
   * `webSocketHeader`): one piece, or, when its payload is large (2 KiB or
   * more), the pieces to write one after the other: the bytes before the
   * payload, the payload itself (not copied), the bytes after it.
   */
  encodeMessage(frame: Frame): WebSocketMessage {
    return (this.header ? writeHotMessage(frame, this.allocate, APART_FROM_BYTES) : undefined) ?? this.encode(frame);
  }

  /**
   * Decodes one frame; throws FrameError (BAD_FRAME) with the reason. Its
   * structure (nesting, number of values and fields) is checked first, so a
   * frame over those bounds costs one pass over its headers, not a decoding.
   */
  decode(bytes: Uint8Array): Frame {
    // The frequent frames in their plain form are read by hand; anything else, and every refusal, the general way.
    const hot = readHotFrame(bytes, this.hot);
    if (hot !== undefined) return hot;
    const over = checkMsgpackBounds(bytes, this.bounds);
    if (over !== undefined) throw new FrameError(`malformed or over-limit MessagePack (${over})`, peekFrameHead(bytes)?.id ?? 0);
    let raw: unknown;
    try {
      raw = this.decoder.decode(bytes);
    } catch (err) {
      // Correlated when its first bytes name an id, as for the bounds above (a map or ext inside, a string too long).
      throw new FrameError(`malformed or over-limit MessagePack (${(err as Error).message})`, peekFrameHead(bytes)?.id ?? 0);
    }
    return fromWire(raw);
  }
}

/** A frame as a WebSocket message, header included: one piece, or pieces written one after the other (see `encodeMessage`). */
export type WebSocketMessage = Uint8Array | readonly Uint8Array[];

/** Payloads from this size on are left where they are in `encodeMessage` (a copy would cost more than a piece). */
const APART_FROM_BYTES = 2048;

/** The message in one piece (pieces are joined: a copy). */
export function wholeMessage(message: WebSocketMessage): Uint8Array {
  return message instanceof Uint8Array ? message : concatBytes(message);
}

/** The bytes of `pieces` one after the other, in a new array. */
export function concatBytes(pieces: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(messageLength(pieces));
  let at = 0;
  for (const piece of pieces) {
    out.set(piece, at);
    at += piece.length;
  }
  return out;
}

/** Bytes of a message, in one piece or in pieces. */
export function messageLength(message: WebSocketMessage): number {
  if (message instanceof Uint8Array) return message.length;
  let size = 0;
  for (const piece of message) size += piece.length;
  return size;
}

/** The frame in bytes a codec with `webSocketHeader` encoded: what follows the WebSocket header (a view, not a copy). */
export function frameOf(message: Uint8Array): Uint8Array {
  const head = message[1] < 126 ? 2 : message[1] === 126 ? 4 : 10;
  return message.subarray(head);
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
