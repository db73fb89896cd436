import { InMemoryBackplane } from '../cluster/in-memory.backplane.js';
import { RedisBackplane } from '../cluster/redis.backplane.js';
import { RelayCluster } from '../cluster/relay-cluster.js';
import type { ResolvedRelayOptions } from '../interfaces/relay-options.interface.js';
import type { ClusterObserver } from '../observe/relay-observer.js';

/**
 * The relay's cluster, on the backplane its options name (Redis, one of the
 * app's, or in memory: a cluster of one). The observer hears of other relays
 * and of the backplane only in a real cluster: a cluster of one has neither.
 */
export function createCluster(options: ResolvedRelayOptions, observer?: ClusterObserver): RelayCluster {
  const c = options.cluster;
  const clustered = c.backplane !== undefined || c.redis !== undefined;
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
    observer: clustered ? observer : undefined,
  });
}
