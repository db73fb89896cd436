// Pins issue 13 point 6: a presence snapshot went as one pub/sub message, and
// Redis cut the subscriber of a relay that joined a large cluster. Large
// messages now go in chunks the receiver pulls, put together with bounds.
import { jest } from '@jest/globals';
import { ClusterCodec, type ClusterMessage, ClusterMessageType, type ClusterNode, type ClusterOutgoing } from './cluster-protocol.js';
import { InboundTransfers, OutgoingTransfers, type TransferLimits } from './cluster-transfers.js';
import { RemoteRelay } from './remote.js';

const codec = new ClusterCodec();
const LIMITS: TransferLimits = { chunkBytes: 64, headBytes: 16, window: 2, maxMessageBytes: 4096, timeoutMs: 1000, maxDeferredBytes: 512 };

function node(nodeId: string, patterns = 1): ClusterNode {
  const p = Array.from({ length: patterns }, (_, i) => `pattern.${i}`);
  return { tenant: '', nodeId, service: null, patterns: p, events: [], queue: null, subject: null, since: 1 };
}

const snapshot = (...nodes: ClusterNode[]): ClusterOutgoing => ({ type: ClusterMessageType.Snapshot, relayId: 'A', nodes });

/**
 * Relay A's sender and relay B's receiver, joined by an in-order queue that
 * the test drains: what B delivered, refused or broke, and how many chunks
 * past their message's head were ever sent to B and not yet pulled at once,
 * all messages together.
 */
function link(limits: TransferLimits = LIMITS) {
  const [toB, toA] = [new RemoteRelay('B'), new RemoteRelay('A')];
  const queue: Array<() => void> = [];
  const delivered: ClusterMessage[] = [];
  const [refused, broken]: string[][] = [[], []];
  const chunks = new Map<number, { sent: number; pulled: number; count: number }>();
  let maxOutstanding = 0;
  const outstanding = () => {
    let n = 0;
    for (const c of chunks.values()) if (c.pulled >= 0 && c.pulled < c.count) n += Math.max(0, c.sent - Math.max(c.pulled, 1));
    return n;
  };
  const outgoing = new OutgoingTransfers(limits, (_relay, m) => {
    const bytes = codec.encode(m, 'A');
    queue.push(() => {
      const decoded = codec.decode(bytes);
      if (decoded.type === ClusterMessageType.Chunk) inbound.chunk(toA, decoded);
      else if (!inbound.defer(toA, decoded, bytes.length)) delivered.push(decoded);
    });
    if (m.type === ClusterMessageType.Chunk) {
      const c = chunks.get(m.transfer) ?? { sent: 0, pulled: 0, count: m.count };
      chunks.set(m.transfer, { ...c, sent: m.index + 1 });
      maxOutstanding = Math.max(maxOutstanding, outstanding());
    }
    return true;
  });
  const inbound: InboundTransfers = new InboundTransfers(limits, {
    deliver: (_relay, m) => void delivered.push(m),
    broken: (relay, why) => {
      broken.push(why);
      inbound.forget(relay);
    },
    refused: (_relay, why) => void refused.push(why),
    reply: (_relay, m) =>
      void queue.push(() => {
        const c = m.type === ClusterMessageType.Pull ? chunks.get(m.transfer) : undefined;
        if (c !== undefined && m.type === ClusterMessageType.Pull) c.pulled = m.received < 0 ? -1 : Math.max(c.pulled, m.received);
        outgoing.pulled(toB, codec.decode(codec.encode(m, 'B')) as Extract<ClusterMessage, { type: ClusterMessageType.Pull }>);
      }),
    decode: bytes => codec.decode(bytes),
  });
  /** A message from A to B, chunked when large, as RelayCluster.send() does. */
  const send = (m: ClusterOutgoing) => {
    const bytes = codec.encode(m, 'A');
    if (bytes.length > limits.chunkBytes) outgoing.start(toB, m.type, bytes);
    else queue.push(() => (inbound.defer(toA, codec.decode(bytes), bytes.length) ? undefined : delivered.push(codec.decode(bytes))));
  };
  const drain = () => {
    for (let step = queue.shift(); step !== undefined; step = queue.shift()) step();
  };
  return { outgoing, inbound, send, drain, delivered, refused, broken, stats: () => ({ maxOutstanding }), toA, toB, queue };
}

const types = (ms: ClusterMessage[]) => ms.map(m => ClusterMessageType[m.type]);

describe('chunked cluster messages', () => {
  it('a snapshot larger than a chunk arrives whole, with never more than the window of chunks unpulled', () => {
    const l = link();
    const big = snapshot(node('n1', 20), node('n2', 20));
    l.send(big);
    l.drain();
    expect(l.delivered).toEqual([{ ...big, from: 'A' }]);
    expect(l.stats().maxOutstanding).toBe(LIMITS.window);
    // The last pull ends the transfer on both sides.
    expect([l.outgoing.counts, l.inbound.counts]).toEqual([
      { messages: 0, bytes: 0 },
      { messages: 0, bytes: 0 },
    ]);
  });

  it('what a relay sends after a chunked message is delivered after it, in order', () => {
    const l = link();
    l.send(snapshot(node('n1', 20)));
    l.send({ type: ClusterMessageType.NodeDown, tenant: '', nodeId: 'n1', graceful: false, subject: null, reservedForMs: 0 });
    l.send({ type: ClusterMessageType.NodeUp, node: node('n2', 30) });
    l.send({ type: ClusterMessageType.Beat, relayId: 'A', sentAt: 1 });
    l.drain();
    expect(types(l.delivered)).toEqual(['Snapshot', 'NodeDown', 'NodeUp', 'Beat']);
  });

  it('a newer snapshot supersedes an incomplete one: the older is never delivered, what came between goes first', () => {
    const l = link();
    l.send(snapshot(node('old', 20)));
    // Only the first window of the old snapshot reaches B before the newer one starts.
    l.queue.splice(1);
    l.queue.shift()?.();
    l.send({ type: ClusterMessageType.Beat, relayId: 'A', sentAt: 1 });
    l.send(snapshot(node('new', 20)));
    l.drain();
    expect(types(l.delivered)).toEqual(['Beat', 'Snapshot']);
    expect((l.delivered[1] as { nodes: ClusterNode[] }).nodes.map(n => n.nodeId)).toEqual(['new']);
    expect(l.outgoing.counts.messages).toBe(0);
  });

  it('refuses a message over maxMessageBytes at its first chunk, and the sender stops', () => {
    const l = link();
    l.send(snapshot(...Array.from({ length: 10 }, (_, i) => node(`n${i}`, 60))));
    l.send({ type: ClusterMessageType.Beat, relayId: 'A', sentAt: 1 });
    l.drain();
    expect(l.refused).toEqual([expect.stringMatching(/^a message of \d+ bytes, over 4096$/)]);
    expect(types(l.delivered)).toEqual(['Beat']);
    expect([l.outgoing.counts.messages, l.inbound.counts.messages]).toEqual([0, 0]);
  });

  it('refuses a chunk out of order and one announcing more chunks than bytes', () => {
    const l = link();
    const piece = new Uint8Array(8);
    const chunk = { type: ClusterMessageType.Chunk, from: 'A', size: 16, inner: ClusterMessageType.Snapshot, replaces: 0, piece } as const;
    l.inbound.chunk(l.toA, { ...chunk, transfer: 1, index: 0, count: 2 });
    l.inbound.chunk(l.toA, { ...chunk, transfer: 1, index: 5, count: 2 });
    l.inbound.chunk(l.toA, { ...chunk, transfer: 2, index: 0, count: 17 });
    expect(l.refused).toEqual(['chunk 5 of 2 out of order or over its size', 'a message in 17 chunks']);
    expect(l.inbound.counts.messages).toBe(0);
  });

  it('gives up a stalled message on both sides after timeoutMs, and breaks the relay it came from', () => {
    const l = link();
    l.send(snapshot(node('n1', 20)));
    l.queue.shift()?.();
    l.queue.length = 0;
    const later = Date.now() + LIMITS.timeoutMs + 1;
    l.inbound.sweep(Date.now());
    expect(l.broken).toEqual([]);
    l.inbound.sweep(later);
    l.outgoing.sweep(later);
    expect(l.broken).toEqual([expect.stringMatching(/^a chunked message stalled at 1 of \d+ chunks$/)]);
    expect([l.outgoing.counts.messages, l.inbound.counts.messages]).toEqual([0, 0]);
  });

  it('breaks the relay when more than maxDeferredBytes wait behind an incomplete message', () => {
    const l = link();
    l.send(snapshot(node('n1', 20)));
    l.queue.shift()?.();
    l.queue.length = 0;
    for (let i = 0; i < 30; i++) l.send({ type: ClusterMessageType.Beat, relayId: `A-${'x'.repeat(20)}`, sentAt: 1 });
    l.drain();
    expect(l.broken).toEqual(['over 512 bytes of its messages waiting behind an incomplete chunked one']);
  });

  // Review of issue 13: each chunked message had a window of its own, so 40 large requests to one relay added up past Redis's limit.
  it('every chunked message to one relay shares its window, and all arrive in the order sent', () => {
    const l = link();
    for (let i = 0; i < 5; i++) {
      l.send({ type: ClusterMessageType.NodeUp, node: node(`n${i}`, 20) });
      l.send({ type: ClusterMessageType.NodeDown, tenant: '', nodeId: `n${i}`, graceful: false, subject: null, reservedForMs: 0 });
    }
    l.drain();
    expect(l.stats().maxOutstanding).toBe(LIMITS.window);
    const order = l.delivered.map(m => `${ClusterMessageType[m.type]} ${'node' in m ? m.node.nodeId : (m as { nodeId: string }).nodeId}`);
    expect(order).toEqual([0, 1, 2, 3, 4].flatMap(i => [`NodeUp n${i}`, `NodeDown n${i}`]));
    expect([l.outgoing.counts.messages, l.inbound.counts.messages]).toEqual([0, 0]);
  });

  it('a message waiting for the window behind another is not taken for stalled while chunks of that one arrive', () => {
    jest.useFakeTimers({ now: 1_000_000, doNotFake: ['setImmediate', 'nextTick', 'queueMicrotask'] });
    try {
      const l = link();
      const [first, second] = [1, 2].map(i => codec.encode({ type: ClusterMessageType.NodeUp, node: node(`n${i}`, 4) }, 'A'));
      const chunk = (transfer: number, bytes: Uint8Array, index: number, count: number) => {
        const size = Math.ceil(bytes.length / count);
        const piece = bytes.subarray(index * size, (index + 1) * size);
        l.inbound.chunk(l.toA, {
          type: ClusterMessageType.Chunk,
          from: 'A',
          transfer,
          index,
          count,
          size: bytes.length,
          inner: 4,
          replaces: 0,
          piece,
        });
      };
      // Both heads at once; then the first message's chunks, each well within timeoutMs of the last, the second's long after its head.
      chunk(1, first, 0, 4);
      chunk(2, second, 0, 2);
      for (let i = 1; i < 4; i++) {
        jest.setSystemTime(Date.now() + LIMITS.timeoutMs * 0.6);
        l.inbound.sweep(Date.now());
        chunk(1, first, i, 4);
      }
      expect(l.broken).toEqual([]);
      // Now nothing comes for longer than timeoutMs: the relay is broken.
      jest.setSystemTime(Date.now() + LIMITS.timeoutMs + 1);
      l.inbound.sweep(Date.now());
      expect(l.broken).toEqual(['a chunked message stalled at 1 of 2 chunks']);
      expect(types(l.delivered)).toEqual(['NodeUp']);
    } finally {
      jest.useRealTimers();
    }
  });
});
