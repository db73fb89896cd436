import type { Logger } from '@nestjs/common';
import type { RemoteRelay } from './remote.js';

/** How many `timeoutMs` a relay waits at most, after it became healthy, for other relays' nodes before it reports ready anyway. */
export const CLUSTER_MAX_SYNC_TIMEOUTS = 10;

/**
 * Whether a relay has synced (see ClusterStatus.synced), from its own
 * heartbeats coming back and the snapshots of the relays it heard of.
 *
 * A relay hears its own beats back; each carries when it was published, so
 * a beat that came back says exactly when it left (a beat not sent, lost, or
 * sent before the backplane was last lost never counts). Once synced, it
 * stays ready until the backplane is lost again: one relay's transfer
 * trouble (it is forgotten and met again) resyncs with that relay in the
 * background, shown per relay in the detail status. And it does not wait
 * for other relays forever: `CLUSTER_MAX_SYNC_TIMEOUTS × timeoutMs` after it
 * became healthy (or after the last chunk of a message coming in, while
 * one is) it reports ready, logging the relays it could not sync with.
 */
export class ClusterReadiness {
  /** Since when it is healthy (undefined: it is not). */
  private healthySince: number | undefined;
  /** Since when it waits for the relays it will hear of to send their nodes. */
  private syncingSince = 0;
  /** When the latest of its own beats that came back had been published. */
  private echoedSentAt = 0;
  /** Own beats published until then do not count: the backplane was lost (or reset) since. */
  private lostAt = 0;
  private syncedOnce = false;
  /** Relays forgotten for transfer trouble since it became healthy, not synced again (by instance id): their relay id and why. */
  private readonly troubles = new Map<string, { relayId: string; why: string }>();

  constructor(
    private readonly timeoutMs: number,
    private readonly logger: Logger,
  ) {}

  /**
   * One of its own beats came back, published at `sentAt`: false when it
   * left before the backplane was last lost (it proves nothing about now).
   */
  echo(sentAt: number): boolean {
    if (sentAt <= this.lostAt) return false;
    this.echoedSentAt = Math.max(this.echoedSentAt, sentAt);
    return true;
  }

  healthy(now: number): void {
    this.healthySince = now;
    this.syncingSince = now;
    this.syncedOnce = false;
  }

  /** The backplane was lost, or is being reset: what was published before does not count. */
  lost(now: number): void {
    this.healthySince = undefined;
    this.lostAt = now;
    this.troubles.clear();
  }

  /** A relay was forgotten for transfer trouble: before this relay first synced, it waits to hear from it again. */
  broken(relay: RemoteRelay, why: string): void {
    if (this.healthySince === undefined) return;
    this.troubles.set(relay.instanceId, { relayId: relay.relayId, why });
    if (!this.syncedOnce) this.syncingSince = Date.now();
  }

  /** A relay met (again): the trouble that made it be forgotten, if any. */
  trouble(instanceId: string): string | undefined {
    return this.troubles.get(instanceId)?.why;
  }

  /** A relay is gone for good, or has sent its nodes. */
  settled(instanceId: string): void {
    this.troubles.delete(instanceId);
  }

  /** `progressAt`: when a chunk of another relay's message last came in (the wait counts from then, while one is coming). */
  synced(relays: Iterable<RemoteRelay>, progressAt = 0): boolean {
    if (this.healthySince === undefined) return false;
    if (this.syncedOnce) return true;
    // A live relay beats within timeoutMs (past it, it would be taken for gone). The backplane keeps the order of
    // what it carries, so once a beat of ours published that long after syncing began is back, every live relay's
    // beat from that span came before it: this relay has heard of each (not merely waited while busy).
    const waiting = [...relays].filter(r => !r.synced);
    if (this.echoedSentAt - this.syncingSince >= this.timeoutMs && waiting.length === 0) return (this.syncedOnce = true);
    const waited = Date.now() - this.healthySince;
    if (Date.now() - Math.max(this.healthySince, progressAt) < CLUSTER_MAX_SYNC_TIMEOUTS * this.timeoutMs) return false;
    const names = new Map<string, string>();
    for (const [instanceId, t] of this.troubles) names.set(instanceId, `${t.relayId} (${t.why})`);
    for (const r of waiting) names.set(r.instanceId, r.syncTrouble === undefined ? r.relayId : `${r.relayId} (${r.syncTrouble})`);
    this.logger.warn(
      `Cluster not synced ${waited} ms after joining; reporting ready without the nodes of relay(s) ${[...names.values()].join(', ') || 'none named'}`,
    );
    return (this.syncedOnce = true);
  }
}
