import { encode } from '@msgpack/msgpack';
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
  { type: T.Beat, from: 'r', relayId: 'relay-1' },
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
  },
  { type: T.Response, from: 'r', fwdId: 7, flags: 1, payload: null },
  { type: T.Cancel, from: 'r', fwdId: 7 },
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
    expect(refusal(new Uint8Array([0xc1]))).toMatch(/not MessagePack/);
  });
});
