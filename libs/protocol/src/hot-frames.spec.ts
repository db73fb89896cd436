import { Decoder, Encoder } from '@msgpack/msgpack';
import fc from 'fast-check';
import { FrameCodec, frameOf, messageLength, wholeMessage } from './codec.js';
import { fromWire, toWire } from './frame-wire.js';
import { type Frame, FrameType } from './frames.js';
import { type HotReadLimits, readHotFrame } from './hot-read.js';
import { writeHotFrame, writeHotMessage } from './hot-write.js';

/** The general path, as the codec took it before frames were read and written by hand. */
const general = {
  encoder: new Encoder({ ignoreUndefined: true }),
  decoder: new Decoder({ maxStrLength: 4096, maxArrayLength: 10_000, maxMapLength: 0, maxExtLength: 0, maxBinLength: 1 << 20 }),
  encode(frame: Frame): Uint8Array {
    return this.encoder.encode(toWire(frame));
  },
  /** The frame, or the reason it is refused. */
  decode(bytes: Uint8Array): Frame | string {
    try {
      return fromWire(this.decoder.decode(bytes));
    } catch (err) {
      return (err as Error).message;
    }
  },
};
const limits: HotReadLimits = { maxStringBytes: 4096, maxBinBytes: 1 << 20, maxValues: 1_000_000, maxArrayLength: 10_000 };
const alloc = (n: number) => new Uint8Array(n);

const text = fc.oneof(
  fc.string({ minLength: 1, maxLength: 40 }),
  fc.string({ minLength: 1, maxLength: 300 }),
  // Non-ASCII, lone surrogates included: left to the general path both ways.
  fc.string({ minLength: 1, maxLength: 300, unit: 'grapheme' }),
  fc.string({ minLength: 1, maxLength: 40, unit: 'binary' }),
  fc.string({ minLength: 1, maxLength: 40, unit: 'binary-ascii' }),
  fc.string({ minLength: 1, maxLength: 40, unit: fc.constantFrom('\ud800', '\udc00', 'a', '\u00e9', '\u007f', '\u0000') }),
);
const bin = fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ minLength: 250, maxLength: 70_000 }));
const uint = fc.oneof(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 0xffff_ffff }));
const id = fc.integer({ min: 1, max: 0xffff_ffff });
const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: null });

const hotFrame: fc.Arbitrary<Frame> = fc.oneof(
  fc.record(
    {
      type: fc.constant(FrameType.Request as const),
      id,
      pattern: text,
      payload: bin,
      timeoutMs: fc.integer({ min: 1, max: 0x7fff_ffff }),
      peer: opt(text),
      ext: opt(bin),
      claims: opt(bin),
      window: fc.integer({ min: 1, max: 0x7fff_ffff }),
    },
    { requiredKeys: ['type', 'id', 'pattern', 'payload', 'timeoutMs', 'peer', 'ext', 'claims'] },
  ),
  fc.record({ type: fc.constant(FrameType.Response as const), id, flags: fc.integer({ min: 0, max: 3 }), payload: opt(bin) }),
  fc.record(
    {
      type: fc.constant(FrameType.Event as const),
      id: uint,
      pattern: text,
      payload: bin,
      peer: opt(text),
      ext: opt(bin),
      claims: opt(bin),
      flags: fc.integer({ min: 0, max: 1 }),
      timeoutMs: fc.integer({ min: 1, max: 0x7fff_ffff }),
      attempt: uint,
    },
    { requiredKeys: ['type', 'id', 'pattern', 'payload', 'peer', 'ext', 'claims'] },
  ),
  fc.record({ type: fc.constant(FrameType.Cancel as const), id }),
  fc.record({ type: fc.constant(FrameType.Ack as const), id, recipients: uint }),
  fc.record({ type: fc.constant(FrameType.Handled as const), id, error: opt(bin) }),
  fc.constant<Frame>({ type: FrameType.Ping }),
  fc.constant<Frame>({ type: FrameType.Pong }),
);

describe('hot frames, read and written by hand', () => {
  it('are written byte for byte as the MessagePack encoder writes them, or left to it', () => {
    let writtenByHand = 0;
    fc.assert(
      fc.property(hotFrame, frame => {
        const hot = writeHotFrame(frame, alloc);
        if (hot !== undefined) writtenByHand++;
        expect(hot ?? general.encode(frame)).toEqual(general.encode(frame));
      }),
      { numRuns: 3000 },
    );
    expect(writtenByHand).toBeGreaterThan(1000);
    const nonAscii: Frame = {
      type: FrameType.Event,
      id: 1,
      pattern: 'caf\u00e9',
      payload: new Uint8Array(1),
      peer: '\ud800',
      ext: null,
      claims: null,
    };
    expect(writeHotFrame(nonAscii, alloc)).toBeUndefined();
  });

  it('are read as the general path reads them, or left to it (never read differently)', () => {
    let readByHand = 0;
    fc.assert(
      fc.property(hotFrame, frame => {
        const bytes = general.encode(frame);
        const hot = readHotFrame(bytes, limits);
        if (hot !== undefined) readByHand++;
        expect(hot ?? general.decode(bytes)).toEqual(general.decode(bytes));
      }),
      { numRuns: 3000 },
    );
    // Most frames have ASCII strings: the hand-written reader takes them.
    expect(readByHand).toBeGreaterThan(1000);
  });

  it('a damaged frame (a byte changed, cut short or extended) is read exactly as the general path reads it, or left to it', () => {
    fc.assert(
      fc.property(hotFrame, fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('set', 'cut', 'extend'), (frame, at, byte, how) => {
        const good = general.encode(frame);
        const i = at % good.length;
        const bytes =
          how === 'set'
            ? Uint8Array.from(good, (b, j) => (j === i ? byte : b))
            : how === 'cut'
              ? good.subarray(0, i)
              : Uint8Array.from([...good, byte]);
        const hot = readHotFrame(bytes, limits);
        if (hot !== undefined) expect(hot).toEqual(general.decode(bytes));
      }),
      { numRuns: 20_000 },
    );
  });

  it('leave to the general path what they do not take: other frame types, floats, non-ASCII strings, unknown fields, values over the limits', () => {
    const enc = (v: unknown) => general.encoder.encode(v);
    const payload = new Uint8Array(8);
    const cases: unknown[] = [
      [FrameType.Hello, [1], 'n'],
      [FrameType.Request, 1.5, 'p', payload, 10],
      [FrameType.Request, 1, 'pé', payload, 10],
      [FrameType.Request, 1, 'p', payload, 10, null, null, null, 'extra'],
      [FrameType.Request, 1, 'p', payload, 0],
      [FrameType.Request, 1, '', payload, 10],
      [FrameType.Request, 0, 'p', payload, 10],
      [FrameType.Response, 1, 4],
      [FrameType.Event, 1, 'e', payload, null, null, null, 2],
    ];
    for (const c of cases) expect(readHotFrame(enc(c), limits)).toBeUndefined();
    const tight: HotReadLimits = { maxStringBytes: 3, maxBinBytes: 4, maxValues: 4, maxArrayLength: 10 };
    expect(readHotFrame(enc([FrameType.Ack, 1, 2]), { ...limits, maxArrayLength: 2 })).toBeUndefined();
    expect(() => new FrameCodec({ maxArrayLength: 2 }).decode(enc([FrameType.Ack, 1, 2]))).toThrow('maxArrayLength');
    expect(readHotFrame(enc([FrameType.Request, 1, 'long', new Uint8Array(1), 10]), tight)).toBeUndefined();
    expect(readHotFrame(enc([FrameType.Response, 1, 0, new Uint8Array(5)]), tight)).toBeUndefined();
    expect(readHotFrame(enc([FrameType.Response, 1, 0, new Uint8Array(4)]), tight)).toBeUndefined();
    expect(readHotFrame(enc([FrameType.Response, 1, 0]), tight)).toEqual({ type: FrameType.Response, id: 1, flags: 0, payload: null });
  });

  it('the codec refuses what the general path refuses, with the same reason, and reads through either path alike', () => {
    const codec = new FrameCodec();
    const bad = general.encoder.encode([FrameType.Request, 1, 'p', new Uint8Array(1), 0]);
    expect(() => codec.decode(bad)).toThrow('request.timeoutMs must be greater than 0');
    const frame: Frame = {
      type: FrameType.Request,
      id: 7,
      pattern: 'sum',
      payload: new Uint8Array([1]),
      timeoutMs: 5,
      peer: null,
      ext: null,
      claims: null,
    };
    expect(codec.decode(codec.encode(frame))).toEqual(frame);
  });
});

describe('frames encoded with their WebSocket header', () => {
  const framed = new FrameCodec({ webSocketHeader: true });
  const plain = new FrameCodec();
  const request = (size: number): Frame => ({
    type: FrameType.Request,
    id: 1,
    pattern: 'p',
    payload: new Uint8Array(size),
    timeoutMs: 5,
    peer: null,
    ext: null,
    claims: null,
  });

  const goAway: Frame = { type: FrameType.GoAway, reason: 'bye', drainMs: 5 };

  it.each([
    ['a short frame: a 2-byte header', request(10), [0x82, 18]],
    ['from 126 bytes: a 16-bit length', request(200), [0x82, 126, 0, 208]],
    ['from 64 KiB: a 64-bit length', request(70_000), [0x82, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x7b]],
    ['a frame the general encoder writes', goAway, [0x82, 7]],
  ])('%s', (_what, frame, header) => {
    const message = framed.encode(frame);
    const bytes = plain.encode(frame);
    expect([...message.subarray(0, header.length)]).toEqual(header);
    expect(message.length).toBe(header.length + bytes.length);
    expect(frameOf(message)).toEqual(bytes);
    expect(framed.decode(frameOf(message))).toEqual(frame);
  });
});

describe('frames as WebSocket messages in pieces', () => {
  const join = (pieces: readonly Uint8Array[]) => Uint8Array.from(pieces.flatMap(p => [...p]));

  it('a large payload is a piece of its own, not copied; joined, the pieces are the frame with its header', () => {
    fc.assert(
      fc.property(hotFrame, frame => {
        const whole = writeHotFrame(frame, alloc, true);
        const message = writeHotMessage(frame, alloc, 250);
        if (whole === undefined) return expect(message).toBeUndefined();
        const payload = 'payload' in frame ? frame.payload : null;
        if (!(payload instanceof Uint8Array) || payload.length < 250) return expect(message).toEqual(whole);
        expect(Array.isArray(message)).toBe(true);
        const pieces = message as Uint8Array[];
        expect(pieces[1]).toBe(payload);
        expect(join(pieces)).toEqual(whole);
      }),
      { numRuns: 2000 },
    );
  });

  it('the codec sends a frame in pieces only with webSocketHeader and a payload of 2 KiB or more', () => {
    const framed = new FrameCodec({ webSocketHeader: true });
    const response = (size: number): Frame => ({ type: FrameType.Response, id: 1, flags: 1, payload: new Uint8Array(size) });
    expect(framed.encodeMessage(response(2047))).toBeInstanceOf(Uint8Array);
    const pieces = framed.encodeMessage(response(2048)) as Uint8Array[];
    expect(pieces).toHaveLength(2);
    expect(wholeMessage(pieces)).toEqual(framed.encode(response(2048)));
    expect(messageLength(pieces)).toBe(framed.encode(response(2048)).length);
    const request: Frame = {
      type: FrameType.Request,
      id: 1,
      pattern: 'p',
      payload: new Uint8Array(4096),
      timeoutMs: 5,
      peer: 'n',
      ext: null,
      claims: null,
    };
    const three = framed.encodeMessage(request) as Uint8Array[];
    expect(three.map(p => p.length)).toEqual([12, 4096, 3]);
    expect(wholeMessage(three)).toEqual(framed.encode(request));
  });
});
