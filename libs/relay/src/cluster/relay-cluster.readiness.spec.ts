// Review of issue 13 (readiness and pacing of a relay that joins): stale heartbeat times delayed readiness after an
// outage; one relay's transfer trouble, or a snapshot refused, kept every other relay not ready; each relay asking
// for a snapshot got its own encoded copy.
import { jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import type { BackplaneListener } from './backplane.js';
import { ClusterCodec, ClusterMessageType, type ClusterNode } from './cluster-protocol.js';
import { InMemoryBackplane, InMemoryHub } from './in-memory.backplane.js';
import { clusterListener, untilTrue } from '../../spec-support/cluster-setup.js';
import { RelayCluster } from './relay-cluster.js';

const codec = new ClusterCodec();

function node(nodeId: string, patterns = 1): ClusterNode {
  const p = Array.from({ length: patterns }, (_, i) => `pattern.${'x'.repeat(40)}.${i}`);
  return { tenant: '', nodeId, service: null, patterns: p, events: [], queue: null, subject: null, since: 1 };
}

/** An in-memory backplane that can lose its connection (dropping what is published meanwhile) and drop chunks past a head. */
class FlakyBackplane extends InMemoryBackplane {
  listener: BackplaneListener | undefined;
  connected = true;
  dropChunks = false;

  override start(self: string, listener: BackplaneListener): Promise<void> {
    this.listener = listener;
    return super.start(self, listener);
  }

  override publish(m: Uint8Array): void {
    if (this.connected) super.publish(m);
  }

  override send(relay: string, m: Uint8Array): void {
    if (!this.connected) return;
    const decoded = codec.decode(m);
    if (this.dropChunks && decoded.type === ClusterMessageType.Chunk && decoded.index > 0) return;
    super.send(relay, m);
  }

  setConnected(up: boolean): void {
    this.connected = up;
    this.listener?.connection(up);
  }
}

const settings = { heartbeatIntervalMs: 20, timeoutMs: 100, reservationMs: 0, chunkBytes: 512 };

describe('RelayCluster readiness', () => {
  it('after an outage of many heartbeats, it is synced timeoutMs after it is healthy again, not later', async () => {
    jest.useFakeTimers({ now: 1_000_000 });
    const backplane = new FlakyBackplane();
    const a = new RelayCluster({ relayId: 'A', backplane, heartbeatIntervalMs: 100, timeoutMs: 1000, reservationMs: 0 });
    try {
      await a.start(clusterListener(() => []));
      await jest.advanceTimersByTimeAsync(1500);
      expect(a.status()).toMatchObject({ healthy: true, synced: true });
      // Fifty heartbeats while cut off: none is sent, so none may be waited for.
      backplane.setConnected(false);
      await jest.advanceTimersByTimeAsync(5000);
      expect(a.status()).toMatchObject({ healthy: false, synced: false });
      backplane.setConnected(true);
      await jest.advanceTimersByTimeAsync(150);
      expect(a.status()).toMatchObject({ healthy: true, synced: false });
      // Its beats come back at once: one published timeoutMs after it was healthy again is back within a beat or two.
      await jest.advanceTimersByTimeAsync(1000 + 2 * 100);
      expect(a.status()).toMatchObject({ healthy: true, synced: true });
    } finally {
      jest.useRealTimers();
      await a.stop();
    }
  });

  it('a relay whose snapshot it refuses keeps it not ready at most 10 × timeoutMs; then it is ready, and says which relay', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn');
    const hub = new InMemoryHub();
    const a = new RelayCluster({ relayId: 'A', backplane: new InMemoryBackplane(hub), ...settings });
    const b = new RelayCluster({ relayId: 'B', backplane: new InMemoryBackplane(hub), ...settings, maxMessageBytes: 2048 });
    const many = Array.from({ length: 20 }, (_, i) => node(`on-a-${i}`, 2));
    try {
      await a.start(clusterListener(() => many));
      await untilTrue(() => a.status().synced, 'A alone to be synced');
      await b.start(clusterListener(() => []));
      await untilTrue(() => b.status().relays.length === 1, 'B to meet A');
      await untilTrue(() => b.status().synced, 'B to be ready anyway');
      expect(b.status().relays).toMatchObject([{ relayId: 'A', nodes: 0, synced: false }]);
      expect(b.status().relays[0]?.syncTrouble).toMatch(/^a message of \d+ bytes, over 2048$/);
      expect(warn.mock.calls.map(c => String(c[0]))).toContainEqual(
        expect.stringMatching(/^Cluster not synced \d+ ms after joining; reporting ready without the nodes of relay\(s\) A \(a message of/),
      );
    } finally {
      warn.mockRestore();
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it('once synced, a transfer from one relay that stalls does not make it not ready: it resyncs with that relay meanwhile', async () => {
    const hub = new InMemoryHub();
    const bpA = new FlakyBackplane(hub);
    const a = new RelayCluster({ relayId: 'A', backplane: bpA, ...settings });
    const b = new RelayCluster({ relayId: 'B', backplane: new InMemoryBackplane(hub), ...settings });
    const nodesOfA = [node('on-a')];
    const seenB: string[] = [];
    try {
      await a.start(clusterListener(() => nodesOfA));
      await b.start(clusterListener(() => [], seenB));
      await untilTrue(() => b.status().synced && seenB.includes('on-a'), 'B to be synced with A');
      const readiness: boolean[] = [];
      const watch = (what: () => boolean) => () => (readiness.push(b.status().synced), what());
      // A announces a node too large for one message; only its head reaches B.
      bpA.dropChunks = true;
      nodesOfA.push(node('large', 40));
      a.nodeUp(nodesOfA[1]);
      const trouble = () => b.status().relays.find(r => r.relayId === 'A')?.syncTrouble ?? '';
      await untilTrue(
        watch(() => /^a chunked message stalled at 1 of \d+ chunks$/.test(trouble())),
        'B to give up the transfer',
      );
      bpA.dropChunks = false;
      await untilTrue(
        watch(() => seenB.includes('large') && b.status().relays[0]?.synced === true),
        'B to resync with A',
      );
      expect(b.status().relays).toEqual([expect.objectContaining({ relayId: 'A', nodes: 2, synced: true })]);
      expect(b.status().relays[0]).not.toHaveProperty('syncTrouble');
      expect(readiness.filter(r => !r)).toEqual([]);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it('a relay whose event loop was blocked past timeoutMs (taking in a large snapshot, say) drops neither itself nor the others', async () => {
    const hub = new InMemoryHub();
    const timing = { heartbeatIntervalMs: 50, timeoutMs: 300, reservationMs: 0 };
    const a = new RelayCluster({ relayId: 'A', backplane: new InMemoryBackplane(hub), ...timing });
    const b = new RelayCluster({ relayId: 'B', backplane: new InMemoryBackplane(hub), ...timing });
    let gone = 0;
    try {
      await a.start(clusterListener(() => [node('on-a')]));
      await b.start({ ...clusterListener(() => []), relayGone: () => void gone++ });
      await untilTrue(() => b.status().synced && b.status().relays[0]?.nodes === 1, 'B to be synced with A');
      // The event loop busy for more than three timeouts: no timer and no message runs meanwhile.
      const busyUntil = Date.now() + 1000;
      while (Date.now() < busyUntil);
      const lastSeen = () => b.status().relays.find(r => r.relayId === 'A')?.lastSeenMsAgo ?? Infinity;
      await untilTrue(() => lastSeen() < timing.heartbeatIntervalMs, 'B to hear A again after the block');
      expect(gone).toBe(0);
      expect(b.status()).toMatchObject({ healthy: true, synced: true, relays: [{ relayId: 'A', nodes: 1 }] });
      expect(a.status()).toMatchObject({ healthy: true, relays: [{ relayId: 'B' }] });
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it('relays that ask for its snapshot about the same time share one encoding of it', async () => {
    const hub = new InMemoryHub();
    const slow = { heartbeatIntervalMs: 1000, timeoutMs: 3000, reservationMs: 0, chunkBytes: 512 };
    const a = new RelayCluster({ relayId: 'A', backplane: new InMemoryBackplane(hub), ...slow });
    const [b, c] = ['B', 'C'].map(relayId => new RelayCluster({ relayId, backplane: new InMemoryBackplane(hub), ...slow }));
    const many = Array.from({ length: 20 }, (_, i) => node(`on-a-${i}`, 2));
    let encodings = 0;
    const [seenB, seenC]: string[][] = [[], []];
    try {
      await a.start(clusterListener(() => (encodings++, many)));
      await untilTrue(() => a.status().healthy, 'A to be healthy');
      await Promise.all([b.start(clusterListener(() => [], seenB)), c.start(clusterListener(() => [], seenC))]);
      await untilTrue(() => seenB.length === many.length && seenC.length === many.length, 'B and C to have the nodes of A');
      expect(encodings).toBe(1);
    } finally {
      await Promise.all([a, b, c].map(r => r.stop()));
    }
  });
});
