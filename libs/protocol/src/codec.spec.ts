import { encode } from '@msgpack/msgpack';
import { decodePayload, encodePayload, errorFromFrame, FrameCodec } from './codec.js';
import { FrameError, RelayError, RelayErrorCode } from './errors.js';
import { EventFlag, type Frame, FrameType, ResponseFlag } from './frames.js';

describe('FrameCodec', () => {
  const codec = new FrameCodec();
  const bytes = new Uint8Array([1, 2, 3]);

  const frames: Frame[] = [
    { type: FrameType.Hello, versions: [1], nodeId: 'n1', service: 'svc', patterns: ['a', '{"cmd":"b"}'], events: ['x.*'], queue: 'q' },
    { type: FrameType.Hello, versions: [1, 2], nodeId: 'n2', service: null, patterns: [], events: [], queue: null },
    {
      type: FrameType.Welcome,
      version: 1,
      relayId: 'r',
      sessionId: 's',
      nodeId: 'n',
      maxPayloadBytes: 1048576,
      heartbeatIntervalMs: 10000,
    },
    { type: FrameType.Request, id: 1, pattern: 'p', payload: bytes, timeoutMs: 30000, peer: null, ext: null, claims: null },
    { type: FrameType.Request, id: 0xffffffff, pattern: 'p', payload: bytes, timeoutMs: 1, peer: 'node', ext: bytes, claims: bytes },
    { type: FrameType.Response, id: 5, flags: ResponseFlag.DONE, payload: null },
    { type: FrameType.Response, id: 5, flags: ResponseFlag.ERROR | ResponseFlag.DONE, payload: bytes },
    { type: FrameType.Cancel, id: 3 },
    { type: FrameType.Event, id: 0, pattern: 'a.b', payload: bytes, peer: null, ext: null, claims: null },
    { type: FrameType.Event, id: 9, pattern: 'a.b', payload: bytes, peer: 'emitter', ext: bytes, claims: null },
    { type: FrameType.Ack, id: 9, recipients: 0 },
    { type: FrameType.Error, id: 0, code: 'BAD_FRAME', message: '' },
    { type: FrameType.Ping },
    { type: FrameType.Pong },
    { type: FrameType.Wait, id: 2, pattern: 'p', timeoutMs: 100 },
    { type: FrameType.Discover, id: 4 },
    { type: FrameType.Nodes, id: 4, nodes: [{ nodeId: 'n', service: null, patterns: ['p'], events: [], queue: null }] },
    { type: FrameType.TokenExpiring, expiresAt: 1_800_000_000_000 },
    { type: FrameType.Auth, token: new TextEncoder().encode('a.b.c') },
    { type: FrameType.Authorized, expiresAt: 0 },
    {
      type: FrameType.Event,
      id: 7,
      pattern: 'a.b',
      payload: bytes,
      peer: null,
      ext: null,
      claims: null,
      flags: EventFlag.ACK_HANDLERS,
      timeoutMs: 500,
    },
    {
      type: FrameType.Event,
      id: 8,
      pattern: 'a.b',
      payload: bytes,
      peer: 'e',
      ext: null,
      claims: bytes,
      flags: EventFlag.ACK_HANDLERS,
      attempt: 2,
    },
    { type: FrameType.Error, id: 3, code: 'HANDLER_FAILED', message: 'm', details: bytes },
    { type: FrameType.GoAway, reason: 'shutting down', drainMs: 10_000 },
    { type: FrameType.Drain, id: 1 },
    { type: FrameType.Handled, id: 12, error: null },
    { type: FrameType.Handled, id: 12, error: bytes },
    { type: FrameType.Hello, versions: [1], nodeId: 'n3', service: null, patterns: [], events: [], queue: null, caps: ['credit', 'x'] },
    {
      type: FrameType.Welcome,
      version: 1,
      relayId: 'r',
      sessionId: 's',
      nodeId: 'n',
      maxPayloadBytes: 1048576,
      heartbeatIntervalMs: 10000,
      caps: ['credit'],
    },
    { type: FrameType.Request, id: 2, pattern: 'p', payload: bytes, timeoutMs: 30000, peer: null, ext: null, claims: null, window: 64 },
    { type: FrameType.Credit, id: 2, credit: 32 },
  ];

  it.each(frames.map(f => [FrameType[f.type], f] as const))('round-trips %s', (_name, frame) => {
    expect(codec.decode(codec.encode(frame))).toEqual(frame);
  });

  it('reads a plain EVENT without the handler-ack fields, and refuses bad ones naming the field', () => {
    const plain = codec.decode(encode([FrameType.Event, 1, 'a', bytes]));
    expect(plain).not.toHaveProperty('flags');
    expect(() => codec.decode(encode([FrameType.Event, 1, 'a', bytes, null, null, null, 4]))).toThrow(/event.flags/);
    expect(() => codec.decode(encode([FrameType.Event, 1, 'a', bytes, null, null, null, 1, 0]))).toThrow(/event.timeoutMs/);
    expect(() => codec.decode(encode([FrameType.Handled, 0]))).toThrow(/id must be greater than 0/);
  });

  it('reads the capability and flow-control fields, and refuses bad ones naming the field', () => {
    const hello = [FrameType.Hello, [1], 'n', null, [], [], null];
    expect(codec.decode(encode(hello))).not.toHaveProperty('caps');
    expect(() => codec.decode(encode([...hello, Array(33).fill('c')]))).toThrow(/hello.caps must list at most 32 capabilities/);
    expect(() => codec.decode(encode([...hello, [1]]))).toThrow(/hello.caps must be an array of non-empty strings/);
    expect(codec.decode(encode([FrameType.Request, 1, 'p', bytes, 5]))).not.toHaveProperty('window');
    expect(() => codec.decode(encode([FrameType.Request, 1, 'p', bytes, 5, null, null, null, 0]))).toThrow(
      /request.window must be greater than 0/,
    );
    expect(() => codec.decode(encode([FrameType.Credit, 1, 0]))).toThrow(/credit.credit must be greater than 0/);
    expect(() => codec.decode(encode([FrameType.Credit, 1]))).toThrow(/needs at least 3 fields/);
    // An empty capability list is left off the wire, as no list.
    const welcome = {
      type: FrameType.Welcome,
      version: 1,
      relayId: 'r',
      sessionId: 's',
      nodeId: 'n',
      maxPayloadBytes: 1,
      heartbeatIntervalMs: 1,
    };
    expect(codec.encode({ ...welcome, caps: [] } as Frame)).toEqual(codec.encode(welcome as Frame));
  });

  it('leaves trailing empty optional fields off the wire', () => {
    const frame: Frame = {
      type: FrameType.Request,
      id: 1,
      pattern: 'p',
      payload: bytes,
      timeoutMs: 5,
      peer: null,
      ext: null,
      claims: null,
    };
    expect(codec.encode(frame)).toEqual(encode([FrameType.Request, 1, 'p', bytes, 5]));
  });

  const bad: Array<[string, Uint8Array, RegExp]> = [
    ['not MessagePack', new Uint8Array([0xc1]), /malformed or over-limit MessagePack/],
    ['trailing bytes', new Uint8Array([...encode([FrameType.Ping]), 1]), /malformed or over-limit MessagePack/],
    ['a map', encode({ a: 1 }), /malformed or over-limit MessagePack.*map length/],
    ['an empty array', encode([]), /non-empty MessagePack array/],
    ['an unknown type', encode([42]), /unknown frame type 42/],
    ['a string type', encode(['request']), /unknown frame type "request"/],
    ['a short request', encode([FrameType.Request, 1, 'p']), /needs at least 5 fields/],
    ['a zero id', encode([FrameType.Request, 0, 'p', bytes, 5]), /id must be greater than 0/],
    ['a negative id', encode([FrameType.Cancel, -1]), /id must be an integer/],
    ['a float id', encode([FrameType.Cancel, 1.5]), /id must be an integer/],
    ['an empty pattern', encode([FrameType.Request, 1, '', bytes, 5]), /request.pattern must be a non-empty string/],
    ['a string payload', encode([FrameType.Request, 1, 'p', 'data', 5]), /request.payload must be bin/],
    ['a zero timeout', encode([FrameType.Request, 1, 'p', bytes, 0]), /request.timeoutMs must be greater than 0/],
    ['an unknown flag', encode([FrameType.Response, 1, 8]), /response.flags must be an integer from 0 to 3/],
    ['hello without versions', encode([FrameType.Hello, [], 'n']), /hello.versions must be a non-empty array/],
    ['hello with a numeric pattern', encode([FrameType.Hello, [1], 'n', null, [1]]), /hello.patterns/],
    ['a map inside a frame', encode([FrameType.Cancel, { id: 1 }]), /malformed or over-limit MessagePack/],
    ['a short NODES entry', encode([FrameType.Nodes, 1, [['n', null, []]]]), /nodes.nodes entries must be 5-field arrays/],
    // An entry's fields are judged in order: the first bad one is named.
    [
      'a NODES entry with an empty id',
      encode([FrameType.Nodes, 1, [['', null, null, [], null]]]),
      /: nodes.nodeId must be a non-empty string/,
    ],
    ['a NODES entry without patterns', encode([FrameType.Nodes, 1, [['n', null, null, [], null]]]), /: nodes.patterns must be an array/],
  ];

  it.each(bad)('rejects %s with a FrameError naming the problem', (_name, input, reason) => {
    let caught: unknown;
    try {
      codec.decode(input);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(FrameError);
    expect((caught as FrameError).code).toBe('BAD_FRAME');
    expect((caught as FrameError).status).toBe(400);
    expect((caught as FrameError).message).toMatch(reason);
  });

  it('keeps the request id of a frame with a bad later field', () => {
    let caught: unknown;
    try {
      codec.decode(encode([FrameType.Request, 77, 1, bytes, 5]));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(FrameError);
    expect((caught as FrameError).frameId).toBe(77);
  });

  it('bounds strings, arrays and bins in a frame header', () => {
    const small = new FrameCodec({ maxStringBytes: 8, maxArrayLength: 2, maxBinBytes: 4 });
    expect(() => small.decode(encode([FrameType.Request, 1, 'a-long-pattern', bytes, 5]))).toThrow(FrameError);
    expect(() => small.decode(encode([FrameType.Hello, [1], 'n', null, ['a', 'b', 'c']]))).toThrow(FrameError);
    expect(() => small.decode(encode([FrameType.Request, 1, 'p', new Uint8Array(5), 5]))).toThrow(FrameError);
  });
});

describe('payloads', () => {
  it('round-trip application values and drop undefined fields like JSON', () => {
    expect(decodePayload(encodePayload({ a: 1, b: undefined, c: [null, 'x'] }))).toEqual({ a: 1, c: [null, 'x'] });
  });
});

describe('errorFromFrame', () => {
  it("decodes a HANDLER_FAILED error's failed deliveries, each handler error included", () => {
    const details = encodePayload([
      ['n1', 'HANDLER_ERROR', encodePayload({ status: 'error', message: 'boom' })],
      ['n2', 'TIMEOUT', null],
    ]);
    const err = errorFromFrame({ type: FrameType.Error, id: 1, code: RelayErrorCode.HANDLER_FAILED, message: 'not handled', details });
    expect(err).toBeInstanceOf(RelayError);
    expect(err).toMatchObject({ code: RelayErrorCode.HANDLER_FAILED, status: 500, message: 'not handled' });
    expect(err.details).toEqual([
      { nodeId: 'n1', code: 'HANDLER_ERROR', error: { status: 'error', message: 'boom' } },
      { nodeId: 'n2', code: 'TIMEOUT' },
    ]);
  });

  it('keeps the error and drops details that do not decode', () => {
    const err = errorFromFrame({
      type: FrameType.Error,
      id: 1,
      code: RelayErrorCode.TIMEOUT,
      message: 'late',
      details: new Uint8Array([0xc1]),
    });
    expect(err).toMatchObject({ code: RelayErrorCode.TIMEOUT, status: 504, details: undefined });
  });
});
