import { decode, encode } from '@msgpack/msgpack';
import { FrameCodec } from './codec.js';
import { FrameError } from './errors.js';
import { FrameType } from './frames.js';
import { checkMsgpackBounds, peekFrameHead } from './msgpack-bounds.js';

const roomy = { maxDepth: 8, maxElements: 1_000_000, maxTopLength: 1_000_000 };

/** `depth` arrays each holding the next, the innermost empty. */
function nested(depth: number): Uint8Array {
  const bytes = new Uint8Array(depth);
  bytes.fill(0x91, 0, depth - 1);
  bytes[depth - 1] = 0x90;
  return bytes;
}

describe('checkMsgpackBounds', () => {
  // Every kind of value MessagePack has, each length class of str, bin, array and map, ext included.
  const values: unknown[] = [
    null,
    true,
    false,
    0,
    127,
    -1,
    -33,
    255,
    65535,
    2 ** 32 - 1,
    2 ** 40,
    -(2 ** 40),
    1.5,
    'x'.repeat(31),
    'y'.repeat(200),
    'z'.repeat(70_000),
    new Uint8Array(3),
    new Uint8Array(300),
    new Uint8Array(70_000),
    Array.from({ length: 20 }, (_, i) => i),
    Array.from({ length: 70_000 }, () => 1),
    { a: 1, b: [2, { c: 'd' }] },
    Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i])),
    [[[['deep']]]],
  ];

  it.each(values.map((v, i) => [i, v]))('accepts well-formed value %i and reaches its end exactly', (_i, v) => {
    expect(checkMsgpackBounds(encode(v), roomy)).toBeUndefined();
  });

  it('accepts ext values of every size (the frame codec refuses them later, not the scan)', () => {
    for (const [head, size] of [
      [0xd4, 1],
      [0xd5, 2],
      [0xd6, 4],
      [0xd7, 8],
      [0xd8, 16],
    ]) {
      expect(checkMsgpackBounds(new Uint8Array([head, 1, ...new Uint8Array(size)]), roomy)).toBeUndefined();
    }
    expect(checkMsgpackBounds(new Uint8Array([0xc7, 3, 1, 9, 9, 9]), roomy)).toBeUndefined();
    expect(checkMsgpackBounds(new Uint8Array([0xc8, 0, 2, 1, 9, 9]), roomy)).toBeUndefined();
  });

  it('refuses nesting past maxDepth, and accepts it at maxDepth', () => {
    expect(checkMsgpackBounds(nested(4), { ...roomy, maxDepth: 4 })).toBeUndefined();
    expect(checkMsgpackBounds(nested(5), { ...roomy, maxDepth: 4 })).toBe('nested deeper than 4');
    expect(checkMsgpackBounds(encode({ a: { b: { c: { d: 1 } } } }), { ...roomy, maxDepth: 3 })).toBe('nested deeper than 3');
  });

  it('stops at the bound: a million nested arrays cost as much as five', () => {
    expect(checkMsgpackBounds(nested(1_000_000), { ...roomy, maxDepth: 4 })).toBe('nested deeper than 4');
  });

  it('counts every value, map keys included, against maxElements', () => {
    expect(checkMsgpackBounds(encode([1, 2, 3]), { ...roomy, maxElements: 4 })).toBeUndefined();
    expect(checkMsgpackBounds(encode([1, 2, 3, 4]), { ...roomy, maxElements: 4 })).toBe('more than 4 values');
    expect(checkMsgpackBounds(encode({ a: 1, b: 2 }), { ...roomy, maxElements: 4 })).toBe('more than 4 values');
  });

  it('refuses a top-level array longer than maxTopLength before reading its entries', () => {
    expect(checkMsgpackBounds(encode([1, 2, 3]), { ...roomy, maxTopLength: 3 })).toBeUndefined();
    expect(checkMsgpackBounds(encode([1, 2, 3, 4]), { ...roomy, maxTopLength: 3 })).toBe('more than 3 top-level entries');
    // An array header claiming 2^32-1 entries with nothing behind it.
    expect(checkMsgpackBounds(new Uint8Array([0xdd, 0xff, 0xff, 0xff, 0xff]), { ...roomy, maxTopLength: 10 })).toBe(
      'more than 10 top-level entries',
    );
  });

  it('refuses truncated values, trailing bytes and the never-used byte', () => {
    const whole = encode(['abc', new Uint8Array(10), [1, 2]]);
    for (let cut = 1; cut < whole.length; cut++) expect(checkMsgpackBounds(whole.subarray(0, cut), roomy)).toBe('truncated value');
    expect(checkMsgpackBounds(new Uint8Array(0), roomy)).toBe('truncated value');
    expect(checkMsgpackBounds(new Uint8Array([...whole, 0xc0]), roomy)).toBe('1 bytes after the value');
    expect(checkMsgpackBounds(new Uint8Array([0x91, 0xc1]), roomy)).toBe('the never-used byte 0xc1');
  });

  it('agrees with the decoder on 20,000 random byte strings: what it accepts within roomy bounds, the decoder decodes', () => {
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) / 2 ** 24;
    for (let n = 0; n < 20_000; n++) {
      const bytes = Uint8Array.from({ length: 1 + Math.floor(random() * 12) }, () => Math.floor(random() * 256));
      if (checkMsgpackBounds(bytes, roomy) !== undefined) continue;
      expect(() => decode(bytes)).not.toThrow();
    }
  });
});

describe('peekFrameHead', () => {
  const codec = new FrameCodec();
  it.each([1, 127, 128, 65535, 65536, 0xffffffff])('reads the type and id %i of an encoded frame', id => {
    const bytes = codec.encode({ type: FrameType.Cancel, id });
    expect(peekFrameHead(bytes)).toEqual({ type: FrameType.Cancel, id });
  });

  it('reads an id of 0 where a frame has none, and nothing from what is not a frame', () => {
    expect(peekFrameHead(codec.encode({ type: FrameType.Ping }))).toEqual({ type: FrameType.Ping, id: 0 });
    expect(peekFrameHead(new Uint8Array([0x92, 3, 0xcd, 1]))).toEqual({ type: 3, id: 0 }); // id cut short
    expect(peekFrameHead(new Uint8Array([0x81, 3]))).toBeUndefined();
    expect(peekFrameHead(new Uint8Array([]))).toBeUndefined();
  });
});

describe('FrameCodec structural bounds', () => {
  it('refuses a frame nested deeper than any frame is, correlated to its id, before decoding it', () => {
    const codec = new FrameCodec();
    const deep = new Uint8Array([0x93, FrameType.Cancel, 9, ...nested(5)]);
    expect(() => codec.decode(deep)).toThrow(new FrameError('malformed or over-limit MessagePack (nested deeper than 4)', 9));
    const err = (() => {
      try {
        codec.decode(deep);
      } catch (e) {
        return e as FrameError;
      }
    })();
    expect(err?.frameId).toBe(9);
  });

  it('refuses more values than maxValues and more than 32 fields, and accepts a few unknown trailing fields', () => {
    const codec = new FrameCodec({ maxValues: 100 });
    expect(() => codec.decode(encode([FrameType.Cancel, 1, Array.from({ length: 200 }, () => 0)]))).toThrow(/more than 100 values/);
    expect(() => codec.decode(encode([FrameType.Cancel, 1, ...Array.from({ length: 40 }, () => 0)]))).toThrow(/more than 32 top-level/);
    expect(codec.decode(encode([FrameType.Cancel, 1, 'later', [1, 2]]))).toEqual({ type: FrameType.Cancel, id: 1 });
  });
});
