/**
 * Pins issue 13 point 6: a relay could never join a cluster whose presence
 * snapshot was over 32 MB (40 servers × 5,000 patterns). The snapshot went
 * as one Redis pub/sub message, Redis cut the joining relay's subscriber at
 * its default output limit (`pubsub 32mb 8mb 60`), the relay reconnected
 * forever, every cross-relay call failed, and its `/status` said 200 all along.
 *
 * Relay A (in this process, on a redis-server of the suite's own with the
 * default limits) holds 40 raw server nodes of 5,000 ~170-byte patterns each;
 * relay B joins, answers 503 on `/status` until it has A's nodes, then 200,
 * and a caller on B reaches a provider on A.
 */
import { decodePayload, encodePayload, FrameType, type RequestFrame, ResponseFlag } from '@wsrelay/protocol';
import { RelayCore } from '@wsrelay/relay';
import { randomBytes } from 'node:crypto';
import { CLUSTER_TIMING } from './support/cluster.js';
import { answerTo, isRequest, request } from './support/frames.js';
import { startRelay, untilAsync, useCleanup } from './support/harness.js';
import { RawNode } from './support/raw-node.js';
import { useTestRedis } from './support/redis.js';

const SERVERS = 40;
const PATTERNS = 5000;
/** Each pattern is about 170 bytes: the whole snapshot is over Redis's 32 MiB hard limit for a subscriber. */
const pattern = (server: number, i: number) => `svc-${server}.${'p'.repeat(160)}.${String(i).padStart(5, '0')}`;

describe('a cluster whose presence snapshot is over 32 MB', () => {
  const { add, track } = useCleanup();
  const redis = useTestRedis();

  it('a relay that joins gets it in chunks, is not ready until it has it, then serves cross-relay calls', async () => {
    const cluster = { redis: redis.url, channelPrefix: `wsrelay-big-${randomBytes(4).toString('hex')}`, ...CLUSTER_TIMING };
    // A HELLO of 5,000 such patterns is about 870 KB.
    const options = { cluster, maxPayloadBytes: 2 * 1024 * 1024 };
    const a = await startRelay({ relayId: 'A', ...options });
    add(a.close);
    let snapshotBytes = 0;
    const servers: RawNode[] = [];
    for (let s = 0; s < SERVERS; s++) {
      const patterns = Array.from({ length: PATTERNS }, (_, i) => pattern(s, i));
      snapshotBytes += patterns.reduce((n, p) => n + p.length, 0);
      servers.push(track(await RawNode.hello(a.url, `server-${s}`, { patterns })));
    }
    expect(snapshotBytes).toBeGreaterThan(32 * 1024 * 1024);
    expect(a.app.get(RelayCore).status().nodes).toBe(SERVERS);

    const b = await startRelay({ relayId: 'B', ...options });
    add(b.close);
    const readiness: Array<{ http: number; status: string; ready: boolean; reason?: string; nodesOfA: number }> = [];
    await untilAsync(
      async () => {
        const res = await fetch(`http://127.0.0.1:${b.port}/status`);
        const body = (await res.json()) as { status: string; ready: boolean; reason?: string };
        const nodesOfA =
          b.app
            .get(RelayCore)
            .status()
            .cluster.relays.find(r => r.relayId === 'A')?.nodes ?? 0;
        readiness.push({ http: res.status, ...body, nodesOfA });
        return res.status === 200;
      },
      60_000,
      'relay B to be ready',
    );
    // Not ready at first, with a reason; ready only once it had every node of A.
    expect(readiness[0]).toMatchObject({ http: 503, status: 'unavailable', ready: false });
    expect(readiness[0].reason).toMatch(/^cluster (backplane down|not synced)$/);
    expect(readiness.filter(r => r.http !== 503 && r.http !== 200)).toEqual([]);
    expect(readiness.at(-1)).toEqual({ http: 200, status: 'ok', ready: true, nodesOfA: SERVERS });

    const caller = track(await RawNode.hello(b.url, 'caller'));
    caller.send(request(1, pattern(SERVERS - 1, PATTERNS - 1), 10_000));
    const served = (await servers[SERVERS - 1].next(isRequest, 10_000)) as RequestFrame;
    servers[SERVERS - 1].send({ type: FrameType.Response, id: served.id, flags: ResponseFlag.DONE, payload: encodePayload('from A') });
    const answer = await caller.next(answerTo(1), 10_000);
    expect(answer.type).toBe(FrameType.Response);
    expect(decodePayload((answer as { payload: Uint8Array }).payload)).toBe('from A');
    // Both relays stayed connected to Redis throughout: B never lost its subscriber.
    expect(b.app.get(RelayCore).status().cluster).toMatchObject({ healthy: true, synced: true });
  }, 90_000);
});
