import { encode } from '@msgpack/msgpack';
import { FrameType } from '@wsrelay/protocol';
import fc from 'fast-check';

/** One hostile WebSocket message: what kind of attack it is (for reports) and its bytes. */
export interface Hostile {
  kind: string;
  data: Uint8Array | string;
  /** false: sent as a text frame (a string, or bytes that may not be UTF-8). */
  binary: boolean;
}

/** Small pools, so that generated frames meet each other: conflicts, routing, fan-out. */
const FUZZ_NODE_IDS = ['fuzz-a', 'fuzz-b', 'fuzz-c'];
export const FUZZ_PATTERNS = ['p.a', 'p.b', 'orders.created', 'orders.eu.created'];
export const FUZZ_SUBSCRIPTIONS = ['orders.*', 'orders.>', '>', '*', 'p.a', 'a.>.b', '>.x', 'a..*'];
export const FUZZ_QUEUES = ['q1', 'q2'];

type Wire = unknown[];

const w = <T>(weight: number, arbitrary: fc.Arbitrary<T>) => ({ weight, arbitrary });
const head = (...b: number[]) => new Uint8Array(b);
const concat = (...parts: Uint8Array[]) => Buffer.concat(parts);
const filled = (n: number, byte: number) => new Uint8Array(n).fill(byte);

/** Any MessagePack value of the wrong kind for a field. */
const junk: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.double(),
  fc.constantFrom(-1, 0, 2 ** 32, 2 ** 53, -(2 ** 63), 0.5),
  fc.string({ maxLength: 16 }),
  fc.uint8Array({ maxLength: 16 }),
  fc.array(fc.integer(), { maxLength: 4 }),
  fc.dictionary(fc.string({ maxLength: 4 }), fc.integer(), { maxKeys: 3 }),
);

/** Strings around the header limit of 4096 UTF-8 bytes (ASCII and 3-byte characters). */
const longString = fc.oneof(
  fc.integer({ min: 4000, max: 4200 }).map(n => 'x'.repeat(n)),
  fc.integer({ min: 1330, max: 1400 }).map(n => 'ノ'.repeat(n)),
);

const id = fc.oneof(w(8, fc.integer({ min: 1, max: 16 })), w(1, fc.constant(0)), w(1, fc.constant(0xffff_ffff)), w(2, junk));
const pattern = fc.oneof(
  w(10, fc.constantFrom(...FUZZ_PATTERNS)),
  w(3, fc.string({ maxLength: 24 })),
  w(1, fc.constant('')),
  w(1, longString),
);
const optional = <T>(a: fc.Arbitrary<T>) => fc.oneof(w(3, fc.constant(null)), w(2, a));
const timeoutMs = fc.oneof(w(2, fc.integer({ min: 1, max: 30 })), w(4, fc.integer({ min: 1000, max: 0x7fff_ffff })), w(1, junk));
const nodeId = fc.oneof(w(6, fc.constantFrom(...FUZZ_NODE_IDS)), w(3, fc.uuid()), w(1, fc.constant('')), w(1, longString));

/** Built with the relay's `maxPayloadBytes`, so that sizes straddle both of its limits. */
export function hostileFrames(maxPayloadBytes: number): fc.Arbitrary<Hostile> {
  const payload = fc.oneof(
    w(30, fc.uint8Array({ maxLength: 48 })),
    w(
      1,
      fc.integer({ min: maxPayloadBytes - 64, max: 2 * maxPayloadBytes + 64 }).map(n => new Uint8Array(n)),
    ),
  );

  const hello: fc.Arbitrary<Wire> = fc
    .tuple(
      fc.oneof(
        w(12, fc.constant([1])),
        w(2, fc.constantFrom([2], [99], [1, 2], [0], [])),
        w(1, fc.array(fc.integer({ min: 2, max: 0xffff_ffff }), { minLength: 1, maxLength: 1200 })),
      ),
      nodeId,
      optional(fc.string({ maxLength: 12 })),
      optional(
        fc.oneof(w(5, fc.array(pattern, { maxLength: 4 })), w(1, fc.array(fc.constant('p.z'), { minLength: 500, maxLength: 2000 }))),
      ),
      optional(
        fc.oneof(
          w(5, fc.array(fc.oneof(fc.constantFrom(...FUZZ_SUBSCRIPTIONS), fc.string({ maxLength: 8 })), { maxLength: 4 })),
          w(1, fc.array(fc.constantFrom('a.>.b', 'x..*'), { minLength: 100, maxLength: 400 })),
        ),
      ),
      optional(fc.oneof(fc.constantFrom(...FUZZ_QUEUES), fc.string({ minLength: 1, maxLength: 12 }))),
    )
    .map(([versions, nid, service, patterns, events, queue]) => [FrameType.Hello, versions, nid, service, patterns, events, queue]);

  const inbound: fc.Arbitrary<Wire> = fc.oneof(
    w(3, hello),
    w(
      6,
      fc
        .tuple(id, pattern, payload, timeoutMs, optional(nodeId), optional(fc.uint8Array({ maxLength: 16 })))
        .map(f => [FrameType.Request, ...f]),
    ),
    w(
      3,
      fc.tuple(id, fc.oneof(w(5, fc.integer({ min: 0, max: 3 })), w(1, junk)), optional(payload)).map(f => [FrameType.Response, ...f]),
    ),
    w(
      3,
      id.map(i => [FrameType.Cancel, i]),
    ),
    w(
      5,
      fc.tuple(id, pattern, payload, optional(nodeId)).map(f => [FrameType.Event, ...f]),
    ),
    w(2, fc.constant<Wire>([FrameType.Ping])),
    w(1, fc.constant<Wire>([FrameType.Pong])),
    w(
      3,
      fc.tuple(id, pattern, timeoutMs).map(f => [FrameType.Wait, ...f]),
    ),
    w(
      2,
      id.map(i => [FrameType.Discover, i]),
    ),
    w(
      1,
      fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.constant(new TextEncoder().encode('e30.e30.'))).map(t => [FrameType.Auth, t]),
    ),
  );

  /** Frames only a relay sends. */
  const outbound: fc.Arbitrary<Wire> = fc.oneof(
    fc.tuple(fc.constant(1), fc.uuid(), fc.uuid(), nodeId, fc.nat(), fc.nat()).map(f => [FrameType.Welcome, ...f]),
    fc.tuple(id, fc.nat()).map(f => [FrameType.Ack, ...f]),
    fc.tuple(id, fc.constantFrom('BAD_FRAME', 'INTERNAL'), fc.string()).map(f => [FrameType.Error, ...f]),
    fc
      .tuple(id, fc.array(fc.tuple(nodeId, fc.constant(null), fc.constant([]), fc.constant([]), fc.constant(null)), { maxLength: 2 }))
      .map(f => [FrameType.Nodes, ...f]),
    fc.tuple(fc.constantFrom(FrameType.TokenExpiring, FrameType.Authorized), fc.nat()).map(f => [...f]),
  );

  /** One field wrong: missing, of the wrong type, extra, or the type itself unknown. */
  const mutated: fc.Arbitrary<Hostile> = fc
    .tuple(
      inbound,
      fc.nat(),
      fc.constantFrom('truncated', 'wrong field', 'extra fields', 'unknown type'),
      junk,
      // A type given as bin: small, or as big as the relay reads.
      fc.oneof(
        w(3, fc.uint8Array({ maxLength: 8 })),
        w(
          1,
          fc.integer({ min: 16, max: 2 * maxPayloadBytes - 16 }).map(n => filled(n, 0xff)),
        ),
      ),
    )
    .map(([wire, n, how, value, bigBin]) => {
      const out = wire.slice();
      if (how === 'truncated') out.length = n % out.length;
      else if (how === 'wrong field') out[1 + (n % Math.max(1, out.length - 1))] = value;
      else if (how === 'extra fields') out.push(value, value);
      else out[0] = [17, 255, -1, 0, 'hello', value, [[[1]]], bigBin][n % 8];
      return { kind: `${how} ${FrameType[wire[0] as FrameType]}`, data: encode(out), binary: true };
    });

  const frame = (kind: string, a: fc.Arbitrary<Wire>): fc.Arbitrary<Hostile> =>
    a.map(wire => ({ kind: `${kind} ${FrameType[wire[0] as FrameType] ?? wire[0]}`, data: encode(wire), binary: true }));
  const bytes = (kind: string, a: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Hostile> => a.map(data => ({ kind, data, binary: true }));

  // Frames that end the connection (over twice the limit, text that is not UTF-8) are rare, so each connection sees many frames.
  return fc.oneof(
    w(80, frame('valid', inbound)),
    w(80, mutated),
    w(16, frame('relay-only', outbound)),
    w(
      24,
      bytes(
        'not an array',
        fc.oneof(junk, fc.string(), fc.constant([])).map(v => encode(v)),
      ),
    ),
    w(24, bytes('random bytes', fc.uint8Array({ maxLength: 64 }))),
    w(
      12,
      bytes(
        'reserved byte 0xc1',
        fc.uint8Array({ maxLength: 8 }).map(b => head(0xc1, ...b)),
      ),
    ),
    w(
      16,
      bytes(
        'truncated',
        fc.tuple(inbound, fc.nat()).map(([wire, n]) => {
          const b = encode(wire);
          return b.subarray(0, n % b.length);
        }),
      ),
    ),
    w(
      16,
      bytes(
        'trailing garbage',
        fc.tuple(inbound, fc.uint8Array({ minLength: 1, maxLength: 8 })).map(([wire, g]) => concat(encode(wire), g)),
      ),
    ),
    w(
      12,
      bytes(
        'lying length header',
        fc.constantFrom(
          head(0xdd, 0xff, 0xff, 0xff, 0xff, 0x01), // array32 of 4G entries
          head(0xdb, 0x7f, 0xff, 0xff, 0xff, 0x61), // str32 of 2 GiB
          head(0xc6, 0xff, 0xff, 0xff, 0xff, 0x00), // bin32 of 4 GiB
          head(0x91, 0xdf, 0x00, 0x00, 0x00, 0x01, 0x01, 0x01), // a map (the relay takes none)
          head(0x92, 0x09, 0xd4, 0x01, 0x00), // an ext value
        ),
      ),
    ),
    w(
      4,
      bytes(
        'array over 10000 entries',
        fc.integer({ min: 10_001, max: 10_100 }).map(n => concat(head(0xdd, 0, 0, n >> 8, n & 0xff), filled(n, 0xc0))),
      ),
    ),
    w(
      2,
      bytes(
        'deep nesting',
        fc
          .oneof(w(5, fc.integer({ min: 100, max: 3000 })), w(1, fc.integer({ min: 3000, max: 2 * maxPayloadBytes - 1 })))
          .map(n => concat(filled(n, 0x91), head(0xc0))),
      ),
    ),
    w(
      12,
      fc.string({ maxLength: 64 }).map(data => ({ kind: 'text frame', data, binary: false })),
    ),
    w(
      1,
      fc
        .uint8Array({ minLength: 1, maxLength: 16 })
        .map(b => ({ kind: 'text frame, not UTF-8', data: head(0xff, 0xfe, ...b), binary: false })),
    ),
    w(
      1,
      bytes(
        'over twice maxPayloadBytes',
        fc.integer({ min: 2 * maxPayloadBytes + 1, max: 2 * maxPayloadBytes + 4096 }).map(n => new Uint8Array(n)),
      ),
    ),
  );
}
