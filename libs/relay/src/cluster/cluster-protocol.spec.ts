import { decode, encode } from '@msgpack/msgpack';
import {
  CLUSTER_PROTOCOL_VERSION,
  ClusterCodec,
  type ClusterMessage,
  ClusterMessageError,
  ClusterMessageType as T,
  type ClusterNode,
} from './cluster-protocol.js';

const node: ClusterNode = {
  tenant: '',
  nodeId: 'n1',
  service: 'svc',
  patterns: ['a', 'b'],
  events: ['x.*'],
  queue: 'q',
  subject: 'sub',
  since: 42,
};
const bytes = new Uint8Array([1, 2, 3]);

const messages: ClusterMessage[] = [
  { type: T.Beat, from: 'r', relayId: 'relay-1', sentAt: 1_700_000_000_000 },
  { type: T.Sync, from: 'r', relayId: 'relay-1' },
  { type: T.Snapshot, from: 'r', relayId: 'relay-1', nodes: [node, { ...node, nodeId: 'n2', service: null, queue: null, subject: null }] },
  { type: T.NodeUp, from: 'r', node },
  { type: T.NodeDown, from: 'r', tenant: 'acme', nodeId: 'n1', graceful: true, subject: null, reservedForMs: 60_000 },
  { type: T.Bye, from: 'r' },
  {
    type: T.Request,
    from: 'r',
    fwdId: 7,
    tenant: '',
    nodeId: 'n1',
    pattern: 'p',
    payload: bytes,
    timeoutMs: 5000,
    callerNodeId: null,
    ext: bytes,
    claims: null,
    window: 64,
  },
  { type: T.Response, from: 'r', fwdId: 7, flags: 1, payload: null },
  { type: T.Cancel, from: 'r', fwdId: 7 },
  { type: T.Credit, from: 'r', fwdId: 7, credit: 32 },
  { type: T.Error, from: 'r', fwdId: 7, code: 'TIMEOUT', message: 'late' },
  {
    type: T.Event,
    from: 'r',
    tenant: '',
    id: 3,
    pattern: 'x.y',
    payload: bytes,
    emitterNodeId: 'e',
    ext: null,
    claims: bytes,
    targets: ['n1', 'n2'],
  },
  {
    type: T.EventCopies,
    from: 'r',
    tenant: '',
    pattern: 'x.y',
    payload: bytes,
    emitterNodeId: null,
    ext: null,
    claims: null,
    copies: [
      ['n1', 11, 1],
      ['n2', 12, 2],
    ],
  },
  { type: T.Handled, from: 'r', did: 11, code: 'HANDLER_ERROR', error: bytes },
  { type: T.Chunk, from: 'r', transfer: 3, index: 1, count: 4, size: 1000, inner: T.Snapshot, replaces: 2, piece: bytes },
  { type: T.Pull, from: 'r', transfer: 3, received: 2 },
];

describe('ClusterCodec', () => {
  const codec = new ClusterCodec();

  it('round-trips every message type, with the sender written by the codec', () => {
    for (const m of messages) {
      const { from, ...outgoing } = m;
      expect(codec.decode(codec.encode(outgoing, from))).toEqual(m);
    }
    expect(new Set(messages.map(m => m.type)).size).toBe(Object.values(T).filter(v => typeof v === 'number').length);
  });

  // Review of issue 13: a relay matched its own beats coming back to send times it kept, and kept some it never sent.
  it('a BEAT carries its send time as a trailing field: a relay that does not send it reads as 0, a later field is ignored', () => {
    const V = CLUSTER_PROTOCOL_VERSION;
    expect(codec.decode(encode([V, T.Beat, 'r', 'relay-1']))).toEqual({ type: T.Beat, from: 'r', relayId: 'relay-1', sentAt: 0 });
    expect(codec.decode(encode([V, T.Beat, 'r', 'relay-1', 42, 'later']))).toEqual({
      type: T.Beat,
      from: 'r',
      relayId: 'relay-1',
      sentAt: 42,
    });
    expect(encode([V, T.Beat, 'r', 'relay-1', 42])).toEqual(codec.encode({ type: T.Beat, relayId: 'relay-1', sentAt: 42 }, 'r'));
  });

  it("marks a passive client's node with a trailing field; a server's keeps the 8 fields an earlier relay reads", () => {
    const V = CLUSTER_PROTOCOL_VERSION;
    const wireNode = (n: ClusterNode) => (decode(codec.encode({ type: T.NodeUp, node: n }, 'r')) as unknown[][])[3];
    expect(wireNode(node)).toHaveLength(8);
    expect(wireNode({ ...node, passive: true })).toEqual([...wireNode(node), true]);
    expect(codec.decode(codec.encode({ type: T.NodeUp, node: { ...node, passive: true } }, 'r'))).toEqual({
      type: T.NodeUp,
      from: 'r',
      node: { ...node, passive: true },
    });
    // Fields a later version adds after it are ignored; an unmarked node is a server.
    expect(codec.decode(encode([V, T.NodeUp, 'r', [...wireNode(node), true, 'later']]))).toMatchObject({ node: { passive: true } });
    expect(codec.decode(encode([V, T.NodeUp, 'r', wireNode(node)]))).toEqual({ type: T.NodeUp, from: 'r', node });
  });

  it('refuses what another relay cannot have meant, naming the field', () => {
    const wire = (...a: unknown[]) => encode(a);
    const refusal = (b: Uint8Array) => {
      try {
        codec.decode(b);
      } catch (err) {
        expect(err).toBeInstanceOf(ClusterMessageError);
        return (err as Error).message;
      }
      throw new Error('decoded');
    };
    const V = CLUSTER_PROTOCOL_VERSION;
    expect(refusal(wire(V, T.Request, 'r', 'seven'))).toBe('bad request.fwdId');
    expect(refusal(wire(V, T.NodeUp, 'r', ['t']))).toBe('bad node');
    expect(refusal(wire(V, T.EventCopies, 'r', '', 'p', bytes, null, null, null, [['n', 1]]))).toBe('bad copy');
    expect(refusal(wire(V, T.EventCopies, 'r', '', 'p', bytes, null, null, null, 'none'))).toBe('bad eventcopies.copies');
    expect(refusal(wire(V, String(T.Cancel), 'r', 1))).toBe('bad type 9');
    expect(refusal(wire(V, 99, 'r'))).toBe('bad type 99');
    expect(refusal(wire(V + 1, T.Sync, 'r'))).toMatch(/cluster protocol version/);
    expect(refusal(wire(V, T.Sync, 5))).toBe('bad from');
    expect(refusal(new Uint8Array([0xc1]))).toMatch(/never-used byte/);
    const request = (window: unknown) => wire(V, T.Request, 'r', 7, '', 'n', 'p', bytes, 100, null, null, null, window);
    expect(codec.decode(request(null))).toMatchObject({ window: 0 });
    for (const bad of [-1, 1.5, 0x8000_0000, 'x']) expect(refusal(request(bad))).toBe('bad request.window');
    for (const bad of [0, -3, 2.5, 0x8000_0000]) expect(refusal(wire(V, T.Credit, 'r', 7, bad))).toBe('bad credit.credit');
  });

  // Pins issue 13 point 9: the cluster decoder had no bounds, so one message could nest a million arrays deep.
  it('refuses, before decoding, what is nested too deep, has too many values or trailing fields, or is too large', () => {
    const why = (b: Uint8Array, c = codec) => {
      try {
        c.decode(b);
        return 'decoded';
      } catch (err) {
        return (err as Error).message;
      }
    };
    const V = CLUSTER_PROTOCOL_VERSION;
    const deep = new Uint8Array([0x94, V, T.Beat, 0xa1, 0x72, ...new Array<number>(100_000).fill(0x91), 0xc0]);
    expect(why(deep)).toBe('over the cluster message bounds (nested deeper than 4)');
    const node = ['', 'n', null, ['p'], [], null, null, 1];
    expect(why(encode([V, T.Snapshot, 'r', 'R', [node]]))).toBe('decoded');
    expect(why(encode([V, T.Snapshot, 'r', 'R', [[...node.slice(0, 3), [['p']], ...node.slice(4)]]]))).toMatch(/nested deeper than 4/);
    expect(why(encode([V, T.Beat, 'r', 'R', ...new Array<number>(13).fill(0)]))).toMatch(/more than 16 top-level entries/);
    expect(why(encode([V, T.NodeUp, 'r', [...node, 0, 0, 0, 0, 0]]))).toBe('bad node');
    expect(why(new Uint8Array([...encode([V, T.Beat, 'r', 'R']), 0xc0]))).toMatch(/1 bytes after the value/);
    expect(why(encode([V, T.Beat, 'r', 'relay-R']), new ClusterCodec(8))).toMatch(/^13 bytes, over 8$/);
    expect(why(encode([V, T.Beat, 'r', 'x'.repeat(70_000)]))).toMatch(/not MessagePack/);
  });
});
