/** Structural bounds of one MessagePack value, checked before it is decoded. */
export interface MsgpackBounds {
  /** Deepest nesting of arrays and maps: a top-level array is at depth 1, an array in it at 2. */
  maxDepth: number;
  /** Most values in all (every array entry, map key and map value, and the top-level value, counted once each). */
  maxElements: number;
  /** Most entries of the top-level array (or map). */
  maxTopLength: number;
}

/** Bytes of the fixed-size values by their first byte (0: not a fixed-size value). */
const FIXED = new Uint8Array(256);
FIXED[0xc0] = 1; // nil
FIXED[0xc2] = 1; // false
FIXED[0xc3] = 1; // true
FIXED[0xca] = 5; // float 32
FIXED[0xcb] = 9; // float 64
FIXED[0xcc] = 2; // uint 8
FIXED[0xcd] = 3;
FIXED[0xce] = 5;
FIXED[0xcf] = 9;
FIXED[0xd0] = 2; // int 8
FIXED[0xd1] = 3;
FIXED[0xd2] = 5;
FIXED[0xd3] = 9;
FIXED[0xd4] = 3; // fixext 1: type byte + 1
FIXED[0xd5] = 4;
FIXED[0xd6] = 6;
FIXED[0xd7] = 10;
FIXED[0xd8] = 18;

/**
 * Walks one MessagePack value without building it, and says why it exceeds
 * `bounds` or is not one well-formed value (undefined when it is fine). The
 * walk visits each array entry and map entry once and skips strings, bins
 * and exts by their length, so it costs little for a frame of a few fields
 * and a large payload, and never more than the bounds allow.
 */
export function checkMsgpackBounds(bytes: Uint8Array, bounds: MsgpackBounds): string | undefined {
  const end = bytes.length;
  // Values still to read at each open depth (index 0: the top-level value).
  const pending: number[] = [1];
  let depth = 0;
  let pos = 0;
  let elements = 0;
  while (depth >= 0) {
    if (pending[depth] === 0) {
      depth--;
      continue;
    }
    pending[depth]--;
    if (++elements > bounds.maxElements) return `more than ${bounds.maxElements} values`;
    if (pos >= end) return 'truncated value';
    const b = bytes[pos];
    let children = -1;
    if (b <= 0x7f || b >= 0xe0) {
      pos += 1;
    } else if (FIXED[b] !== 0) {
      pos += FIXED[b];
    } else if (b >= 0xa0 && b <= 0xbf) {
      pos += 1 + (b & 0x1f);
    } else if (b >= 0x90 && b <= 0x9f) {
      children = b & 0x0f;
      pos += 1;
    } else if (b >= 0x80 && b <= 0x8f) {
      children = (b & 0x0f) * 2;
      pos += 1;
    } else {
      const next = readSized(bytes, pos, b);
      if (next < 0) return b === 0xc1 ? 'the never-used byte 0xc1' : 'truncated value';
      pos = next;
      children = sizedChildren;
    }
    if (pos > end) return 'truncated value';
    if (children < 0) continue;
    // This array or map sits at depth + 1.
    if (depth >= bounds.maxDepth) return `nested deeper than ${bounds.maxDepth}`;
    if (depth === 0 && children > (b >= 0x80 && b <= 0x8f ? 2 : 1) * bounds.maxTopLength) {
      return `more than ${bounds.maxTopLength} top-level entries`;
    }
    if (children > 0) pending[++depth] = children;
  }
  return pos === end ? undefined : `${end - pos} bytes after the value`;
}

/** What the last readSized() read holds: its number of values (-1: a str, bin or ext). A variable, so that no object is made per value. */
let sizedChildren = -1;

/** A str, bin, ext, array or map with a length field: where the next value starts (-1: cut short, or not such a type); see sizedChildren. */
function readSized(bytes: Uint8Array, pos: number, b: number): number {
  const width = SIZE_WIDTH[b];
  if (width === undefined || pos + 1 + width > bytes.length) return -1;
  let n = 0;
  for (let i = 1; i <= width; i++) n = n * 256 + bytes[pos + i];
  const header = pos + 1 + width;
  if (b >= 0xdc) {
    // array 16/32, map 16/32
    sizedChildren = b >= 0xde ? n * 2 : n;
    return header;
  }
  sizedChildren = -1;
  // ext 8/16/32 carry a type byte before their data.
  return header + (b >= 0xc7 && b <= 0xc9 ? 1 : 0) + n;
}

/** Width of the length field of each sized type. */
const SIZE_WIDTH: Readonly<Record<number, number>> = {
  0xc4: 1, // bin 8
  0xc5: 2,
  0xc6: 4,
  0xc7: 1, // ext 8
  0xc8: 2,
  0xc9: 4,
  0xd9: 1, // str 8
  0xda: 2,
  0xdb: 4,
  0xdc: 2, // array 16
  0xdd: 4,
  0xde: 2, // map 16
  0xdf: 4,
};

/**
 * The type and id of a frame read from its first bytes without decoding it
 * (an id of 0 when it has none or it cannot be read there): for refusing a
 * frame the relay will not decode, with an answer its sender can correlate.
 */
export function peekFrameHead(bytes: Uint8Array): { type: number; id: number } | undefined {
  const b = bytes[0];
  let pos: number;
  if (b >= 0x91 && b <= 0x9f) pos = 1;
  else if (b === 0xdc) pos = 3;
  else if (b === 0xdd) pos = 5;
  else return undefined;
  const type = bytes[pos];
  if (type === undefined || type > 0x7f) return undefined;
  return { type, id: peekUint(bytes, pos + 1) };
}

function peekUint(bytes: Uint8Array, pos: number): number {
  const b = bytes[pos];
  if (b === undefined) return 0;
  if (b <= 0x7f) return b;
  const width = b === 0xcc ? 1 : b === 0xcd ? 2 : b === 0xce ? 4 : 0;
  if (width === 0 || pos + width >= bytes.length) return 0;
  let n = 0;
  for (let i = 1; i <= width; i++) n = n * 256 + (bytes[pos + i] ?? 0);
  return n;
}
