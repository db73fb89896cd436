import { InMemoryBackplane } from '../cluster/in-memory.backplane.js';
import { RedisBackplane } from '../cluster/redis.backplane.js';
import { RelayCluster } from '../cluster/relay-cluster.js';
import type { ResolvedRelayOptions } from '../interfaces/relay-options.interface.js';

/** The relay's cluster, on the backplane its options name (Redis, one of the app's, or in memory: a cluster of one). */
export function createCluster(options: ResolvedRelayOptions): RelayCluster {
  const c = options.cluster;
  const backplane =
    c.backplane ??
    (c.redis !== undefined ? new RedisBackplane({ redis: c.redis, channelPrefix: c.channelPrefix }) : new InMemoryBackplane());
  return new RelayCluster({
    relayId: options.relayId,
    backplane,
    heartbeatIntervalMs: c.heartbeatIntervalMs,
    timeoutMs: c.timeoutMs,
    reservationMs: options.nodeIdReservationMs,
    maxMessageBytes: c.maxMessageBytes,
  });
}
