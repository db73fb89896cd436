import { ClusterCodec, type ClusterNode, ClusterMessageType } from './cluster-protocol.js';
import { InMemoryBackplane, InMemoryHub } from './in-memory.backplane.js';
import { clusterListener, untilTrue } from '../../spec-support/cluster-setup.js';
import { RelayCluster } from './relay-cluster.js';

const codec = new ClusterCodec();

/** Counts what one relay sends, by kind ("pub Beat", "send Snapshot"). */
class CountingBackplane extends InMemoryBackplane {
  readonly counts = new Map<string, number>();

  override publish(m: Uint8Array): void {
    this.count('pub', m);
    super.publish(m);
  }

  override send(relay: string, m: Uint8Array): void {
    this.count('send', m);
    super.send(relay, m);
  }

  get(key: string): number {
    return this.counts.get(key) ?? 0;
  }

  private count(how: string, m: Uint8Array): void {
    const key = `${how} ${ClusterMessageType[codec.decode(m).type]}`;
    this.counts.set(key, this.get(key) + 1);
  }
}

function node(nodeId: string): ClusterNode {
  return { tenant: '', nodeId, service: null, patterns: ['p'], events: [], queue: null, subject: null, since: 1 };
}

describe('RelayCluster joining', () => {
  it('a relay that joins exchanges one snapshot each way, and nobody takes the join for a restart', async () => {
    const hub = new InMemoryHub();
    const make = (relayId: string, backplane: CountingBackplane, heartbeatIntervalMs: number) =>
      new RelayCluster({ relayId, backplane, heartbeatIntervalMs, timeoutMs: 10_000, reservationMs: 60_000 });
    const [bpA, bpB] = [new CountingBackplane(hub), new CountingBackplane(hub)];
    // A beats rarely: its heartbeat cannot reach B between B's SYNC and A's answer to it (that crossing, on a loaded machine, is a known race).
    const [a, b] = [make('A', bpA, 5000), make('B', bpB, 20)];
    const seenA: string[] = [],
      seenB: string[] = [],
      goneA: string[] = [],
      goneB: string[] = [];
    await a.start(clusterListener(() => [node('on-a')], seenA, goneA));
    await untilTrue(() => a.status().healthy, 'A to be healthy');
    await b.start(clusterListener(() => [node('on-b')], seenB, goneB));
    try {
      await untilTrue(() => seenA.includes('on-b') && seenB.includes('on-a'), 'each relay to know the other’s node');
      // A few more heartbeats: nothing more comes of the join.
      const beats = bpB.get('pub Beat');
      await untilTrue(() => bpB.get('pub Beat') >= beats + 3, 'three more beats of B');
      expect([bpA.get('send Snapshot'), bpB.get('send Snapshot')]).toEqual([1, 1]);
      expect([bpA.get('send Sync'), bpB.get('pub Sync')]).toEqual([0, 1]);
      expect([goneA, goneB]).toEqual([[], []]);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });
});

describe('RelayCluster with a snapshot larger than a chunk', () => {
  // Pins issue 13 point 6: a relay joining a cluster whose snapshot is large got it as one message, and said it was ready meanwhile.
  it('the joining relay gets it in chunks no larger than chunkBytes, and is synced only once it has every node', async () => {
    const hub = new InMemoryHub();
    let largest = 0;
    class SizeBackplane extends InMemoryBackplane {
      override send(relay: string, m: Uint8Array): void {
        largest = Math.max(largest, m.length);
        super.send(relay, m);
      }
    }
    const make = (relayId: string) =>
      new RelayCluster({
        relayId,
        backplane: new SizeBackplane(hub),
        heartbeatIntervalMs: 20,
        timeoutMs: 1000,
        reservationMs: 0,
        chunkBytes: 512,
      });
    const [a, b] = [make('A'), make('B')];
    const many = Array.from({ length: 50 }, (_, i) => ({ ...node(`on-a-${i}`), patterns: [`pattern.${'x'.repeat(40)}.${i}`] }));
    const seenB: string[] = [];
    await a.start({ ...clusterListener(() => [node('unused')], [], []), localNodes: () => many });
    await untilTrue(() => a.status().synced, 'A alone to be synced');
    await b.start(clusterListener(() => [node('on-b')], seenB, []));
    try {
      const early: Array<{ synced: boolean; seen: number }> = [];
      await untilTrue(() => {
        const synced = b.status().synced;
        early.push({ synced, seen: seenB.length });
        return synced;
      }, 'B to be synced');
      expect(early[0]).toEqual({ synced: false, seen: 0 });
      expect(early.filter(e => e.synced && e.seen < many.length)).toEqual([]);
      expect(seenB.sort()).toEqual(many.map(n => n.nodeId).sort());
      expect(largest).toBeGreaterThan(0);
      expect(largest).toBeLessThanOrEqual(512 + 64);
      expect(b.status().relays).toMatchObject([{ relayId: 'A', nodes: 50, synced: true }]);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });
});
