import { Logger, type OnModuleInit } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Backplane } from './backplane.js';
import type { ClusterListener, ClusterSettings, ClusterStatus } from './cluster-interfaces.js';
import {
  ClusterCodec,
  type ClusterMessage,
  ClusterMessageError,
  type ClusterOutgoing,
  ClusterMessageType,
  type ClusterNode,
} from './cluster-protocol.js';
import { DEFAULT_CLUSTER_MAX_MESSAGE_BYTES } from './cluster-limits.js';
import { ClusterReadiness } from './cluster-readiness.js';
import { InboundTransfers, OutgoingTransfers, transferLimits } from './cluster-transfers.js';
import { InMemoryBackplane } from './in-memory.backplane.js';
import { claimBeats, nodeKey, RemoteNode, RemoteRelay, sameNode } from './remote.js';

export type { ClusterListener, ClusterSettings, ClusterStatus } from './cluster-interfaces.js';

/**
 * The inter-relay protocol over a `Backplane`: presence of remote nodes
 * (announced on change, snapshots on SYNC), liveness (a heartbeat; a relay
 * not heard from for `cluster.timeoutMs` is gone with its nodes), and the
 * messages that forward requests, responses, cancels, errors and events.
 *
 * A relay hears its own heartbeat back through the backplane; when it does
 * not (Redis down or cut off), it drops every remote relay and routes among
 * its own connections only, until its heartbeat comes back and a SYNC
 * rebuilds the cluster state.
 */
export class RelayCluster implements OnModuleInit {
  readonly instanceId = randomUUID();
  private readonly logger = new Logger(RelayCluster.name);
  private readonly backplane: Backplane;
  private readonly codec: ClusterCodec;
  private readonly outgoing: OutgoingTransfers;
  private readonly inbound: InboundTransfers;
  private readonly chunkBytes: number;
  private readonly relays = new Map<string, RemoteRelay>();
  private readonly heartbeatIntervalMs: number;
  private readonly timeoutMs: number;
  private listener: ClusterListener | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** The backend says it is connected (undefined until start() resolves without its saying otherwise). */
  private connected: boolean | undefined;
  /** Last time this relay heard its own heartbeat back through the backplane. */
  private lastHeard = 0;
  private lastTickAt = 0; // when the heartbeat timer last ran
  private healthy = false;
  private readonly readiness: ClusterReadiness;
  /** Its snapshot, encoded once for the relays that ask for it about the same time (until its nodes change). */
  private encodedSnapshot: { bytes: Uint8Array; at: number } | undefined;
  private stopped = false;
  private readonly complaints = new Set<string>();
  private readonly relayId: string;
  private readonly reservationMs: number;
  private readonly observer: ClusterSettings['observer'];

  constructor(settings: ClusterSettings) {
    this.relayId = settings.relayId;
    this.backplane = settings.backplane;
    this.reservationMs = settings.reservationMs;
    this.observer = settings.observer;
    this.heartbeatIntervalMs = settings.heartbeatIntervalMs;
    this.timeoutMs = settings.timeoutMs;
    this.readiness = new ClusterReadiness(settings.timeoutMs, this.logger);
    const limits = transferLimits(settings.maxMessageBytes ?? DEFAULT_CLUSTER_MAX_MESSAGE_BYTES, settings.timeoutMs, settings.chunkBytes);
    this.chunkBytes = limits.chunkBytes;
    this.codec = new ClusterCodec(limits.maxMessageBytes);
    this.outgoing = new OutgoingTransfers(limits, (relay, m) => this.post(relay, this.codec.encode(m, this.instanceId)));
    this.inbound = new InboundTransfers(limits, {
      deliver: (relay, m) => this.listener !== undefined && this.dispatch(relay, m, false, this.listener),
      broken: (relay, why) => this.drop(relay, why, true),
      refused: (relay, why) => {
        if (!relay.synced) relay.syncTrouble = why;
        this.complain(`from relay ${relay.relayId}: ${why}`);
      },
      reply: (relay, m) => this.post(relay, this.codec.encode(m, this.instanceId)),
      decode: bytes => this.decode(bytes),
    });
  }

  /** Nest's init hook: a backplane that cannot load (ioredis missing) stops the relay from starting. */
  async onModuleInit(): Promise<void> {
    await this.backplane.prepare?.();
  }

  async start(listener: ClusterListener): Promise<void> {
    this.listener = listener;
    this.timer = setInterval(() => this.tick(), this.heartbeatIntervalMs);
    await this.backplane.start(this.instanceId, {
      message: bytes => this.onMessage(bytes),
      connection: up => this.onConnection(up),
    });
    if (this.stopped) return;
    // start() resolves once the backplane can publish, unless it said otherwise meanwhile.
    if (this.connected === undefined) {
      this.connected = true;
      this.beat();
    }
    if (!(this.backplane instanceof InMemoryBackplane)) {
      this.logger.log(`Relay ${this.relayId} joining the cluster on ${this.backplane.description}`);
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    const goodbye = this.connected === true;
    // From here nothing more goes out (a NODE_DOWN after BYE would bring this relay back as a ghost).
    this.stopped = true;
    clearInterval(this.timer);
    if (goodbye) this.backplane.publish(this.codec.encode({ type: ClusterMessageType.Bye }, this.instanceId));
    for (const relay of [...this.relays.values()]) this.drop(relay, undefined);
    // Let the goodbye leave before the connection closes.
    await new Promise(resolve => setImmediate(resolve));
    await this.backplane.close();
  }

  status(): ClusterStatus {
    const now = Date.now();
    const [sending, receiving] = [this.outgoing.counts, this.inbound.counts];
    return {
      instanceId: this.instanceId,
      backplane: this.backplane.description,
      healthy: this.healthy,
      synced: this.synced(),
      transfers: { sending: sending.messages, sendingBytes: sending.bytes, receiving: receiving.messages, receivingBytes: receiving.bytes },
      relays: [...this.relays.values()].map(r => ({
        relayId: r.relayId,
        instanceId: r.instanceId,
        nodes: r.nodes.size,
        synced: r.synced,
        ...(r.syncTrouble === undefined ? {} : { syncTrouble: r.syncTrouble }),
        lastSeenMsAgo: now - r.lastSeen,
      })),
    };
  }

  /** Whether it has finished syncing (see ClusterStatus.synced and ClusterReadiness). */
  private synced(): boolean {
    return this.healthy && this.readiness.synced(this.relays.values(), this.inbound.lastProgressAt);
  }

  /** Another relay's claim to (tenant, node id), if one is known (after a local holder left). */
  claimant(tenant: string, nodeId: string): RemoteNode | undefined {
    let best: RemoteNode | undefined;
    const key = nodeKey(tenant, nodeId);
    for (const relay of this.relays.values()) {
      const n = relay.nodes.get(key);
      if (n !== undefined && (best === undefined || claimBeats(n.info, n.relay.instanceId, best.info, best.relay.instanceId))) best = n;
    }
    return best;
  }

  nodeUp(node: ClusterNode): void {
    this.encodedSnapshot = undefined;
    this.broadcast({ type: ClusterMessageType.NodeUp, node });
  }

  /**
   * A node left, lost its id, or drained (`graceful`: other relays let its
   * requests in flight complete); its id stays bound to `subject` for the
   * reservation time.
   */
  nodeDown(tenant: string, nodeId: string, graceful: boolean, subject: string | null): void {
    this.encodedSnapshot = undefined;
    this.broadcast({
      type: ClusterMessageType.NodeDown,
      tenant,
      nodeId,
      graceful,
      subject,
      reservedForMs: subject === null ? 0 : this.reservationMs,
    });
  }

  /** Sends a message to one relay (in chunks when it is large); false when it is gone or the backplane is not usable. */
  send(relay: RemoteRelay, m: ClusterOutgoing): boolean {
    return this.reachable(relay) && this.sendBytes(relay, m.type, this.codec.encode(m, this.instanceId));
  }

  private sendBytes(relay: RemoteRelay, type: ClusterMessageType, bytes: Uint8Array): boolean {
    if (!this.reachable(relay)) return false;
    if (bytes.length > this.chunkBytes) this.outgoing.start(relay, type, bytes);
    else this.backplane.send(relay.instanceId, bytes);
    return true;
  }

  /** One encoded message no larger than a chunk, to one relay. */
  private post(relay: RemoteRelay, bytes: Uint8Array): boolean {
    if (!this.reachable(relay)) return false;
    this.backplane.send(relay.instanceId, bytes);
    return true;
  }

  private reachable(relay: RemoteRelay): boolean {
    return !relay.gone && this.healthy && this.connected === true && !this.stopped;
  }

  /** To every relay; a large message goes in chunks to each relay known (the others get it in the snapshot they get on meeting). */
  private broadcast(m: ClusterOutgoing): void {
    if (this.connected !== true || this.stopped) return;
    const bytes = this.codec.encode(m, this.instanceId);
    if (bytes.length <= this.chunkBytes) this.backplane.publish(bytes);
    else if (this.healthy) for (const relay of this.relays.values()) this.outgoing.start(relay, m.type, bytes);
  }

  /**
   * The heartbeat. Until it has come back once (healthy), only to this
   * relay's own channel: the others first hear of it through the SYNC it
   * then broadcasts (see onMessage), not through beats it could not answer.
   */
  private beat(): void {
    // It says when it left: coming back, it is matched exactly (a beat not sent leaves nothing behind).
    const m: ClusterOutgoing = { type: ClusterMessageType.Beat, relayId: this.relayId, sentAt: Date.now() };
    if (this.healthy) this.broadcast(m);
    else if (this.connected === true && !this.stopped) this.backplane.send(this.instanceId, this.codec.encode(m, this.instanceId));
  }

  private onConnection(up: boolean): void {
    if (up === this.connected || this.stopped) return;
    this.connected = up;
    if (up) this.beat();
    else this.unhealthy('its connection was lost');
  }

  private tick(): void {
    const now = Date.now();
    // A stall of this relay (busy taking in a large snapshot, say; not a tick a little late) is nobody's silence.
    const late = this.lastTickAt === 0 ? 0 : now - this.lastTickAt - this.heartbeatIntervalMs;
    const blocked = late > this.heartbeatIntervalMs ? late : 0;
    this.lastTickAt = now;
    this.lastHeard = Math.min(now, this.lastHeard + blocked);
    for (const relay of this.relays.values()) relay.lastSeen = Math.min(now, relay.lastSeen + blocked);
    this.beat();
    if (this.healthy && now - this.lastHeard > this.timeoutMs) {
      this.unhealthy(`this relay's own heartbeat has not come back for ${now - this.lastHeard} ms`);
      // Throw away whatever the stalled connections still hold, so nothing stale is delivered when they recover.
      this.backplane.reset?.();
      return;
    }
    this.outgoing.sweep(now, blocked);
    this.inbound.sweep(now, blocked);
    for (const relay of [...this.relays.values()]) {
      if (now - relay.lastSeen > this.timeoutMs) this.drop(relay, `silent for ${now - relay.lastSeen} ms`);
    }
    if (this.encodedSnapshot !== undefined && now - this.encodedSnapshot.at > this.heartbeatIntervalMs) this.encodedSnapshot = undefined;
    // Past its wait for other relays it says so now, not at the next status request.
    this.synced();
  }

  /** The backplane does not carry what this relay publishes (`why`): it routes among its own connections until it does. */
  private unhealthy(why: string): void {
    if (this.healthy) this.observer?.backplaneDown({ backplane: this.backplane.description, why });
    this.healthy = false;
    this.readiness.lost(Date.now());
    this.encodedSnapshot = undefined;
    this.outgoing.clear();
    this.inbound.clear();
    for (const relay of [...this.relays.values()]) this.drop(relay, undefined);
  }

  private onMessage(bytes: Uint8Array): void {
    if (this.stopped || this.listener === undefined) return;
    const m = this.decode(bytes);
    if (m === undefined) return;
    if (m.from === this.instanceId) {
      this.onOwnMessage(m);
      return;
    }
    // While unhealthy, other relays' traffic is not acted on: we could not answer it.
    if (!this.healthy) return;
    const known = this.relays.get(m.from);
    if (known === undefined && m.type === ClusterMessageType.Bye) return;
    const relay = known ?? this.meet(m);
    relay.lastSeen = Date.now();
    if (m.type === ClusterMessageType.Chunk) this.inbound.chunk(relay, m);
    else if (m.type === ClusterMessageType.Pull) this.outgoing.pulled(relay, m);
    else if (!this.inbound.defer(relay, m, bytes.length)) this.dispatch(relay, m, known === undefined, this.listener);
  }

  private decode(bytes: Uint8Array): ClusterMessage | undefined {
    try {
      return this.codec.decode(bytes);
    } catch (err) {
      this.complain(err instanceof ClusterMessageError ? err.message : String(err));
      return undefined;
    }
  }

  /** Logs a dropped message, once per reason (a hundred reasons at most). */
  private complain(why: string): void {
    if (this.complaints.has(why) || this.complaints.size >= 100) return;
    this.complaints.add(why);
    this.logger.warn(`Dropped a cluster message: ${why}`);
  }

  /** Only our own heartbeat, back through the backplane, proves it carries what we publish. */
  private onOwnMessage(m: ClusterMessage): void {
    if (m.type !== ClusterMessageType.Beat || this.connected !== true || !this.readiness.echo(m.sentAt)) return;
    this.lastHeard = Date.now();
    if (!this.healthy) {
      // Usable (again): ask every relay for its nodes. Relays that knew
      // this one take the SYNC as a restart and settle what was in flight with it.
      this.healthy = true;
      this.readiness.healthy(Date.now());
      this.observer?.backplaneUp({ backplane: this.backplane.description });
      this.broadcast({ type: ClusterMessageType.Sync, relayId: this.relayId });
    }
  }

  /** A relay heard from for the first time: first contact either way, each side sends the other its nodes (a SYNC is answered in dispatch). */
  private meet(m: ClusterMessage): RemoteRelay {
    const relay = new RemoteRelay(m.from, 'relayId' in m ? m.relayId : undefined);
    relay.syncTrouble = this.readiness.trouble(m.from);
    this.relays.set(m.from, relay);
    if (m.type !== ClusterMessageType.Sync) this.sendSnapshot(relay);
    // The first chunk of its snapshot: it is already sending us its nodes.
    const snapshot =
      m.type === ClusterMessageType.Snapshot || (m.type === ClusterMessageType.Chunk && m.inner === ClusterMessageType.Snapshot);
    if (!snapshot && m.type !== ClusterMessageType.Sync) {
      this.send(relay, { type: ClusterMessageType.Sync, relayId: this.relayId });
    }
    this.observer?.clusterMemberJoined({ relayId: relay.relayId });
    return relay;
  }

  private dispatch(relay: RemoteRelay, m: ClusterMessage, fresh: boolean, l: ClusterListener): void {
    switch (m.type) {
      case ClusterMessageType.Beat:
        relay.relayId = m.relayId;
        return;
      case ClusterMessageType.Sync:
        relay.relayId = m.relayId;
        // From a relay we already knew: it started over (it dropped us, or
        // restarted its view) and forgot what was in flight with us.
        if (!fresh) l.relayGone(relay);
        this.sendSnapshot(relay);
        return;
      case ClusterMessageType.Snapshot:
        relay.relayId = m.relayId;
        this.replaceNodes(relay, m.nodes);
        relay.synced = true;
        relay.syncTrouble = undefined;
        this.readiness.settled(relay.instanceId);
        return;
      case ClusterMessageType.NodeUp:
        this.upsert(relay, m.node);
        return;
      case ClusterMessageType.NodeDown: {
        const node = relay.nodes.get(nodeKey(m.tenant, m.nodeId));
        if (node !== undefined) this.remove(relay, node, m.graceful, m.subject === node.info.subject ? m.reservedForMs : 0);
        return;
      }
      case ClusterMessageType.Bye:
        this.drop(relay, 'it shut down');
        return;
      default:
        this.traffic(relay, m, l);
    }
  }

  /** Forwarded requests, their answers, and events: the listener's. */
  private traffic(relay: RemoteRelay, m: ClusterMessage, l: ClusterListener): void {
    switch (m.type) {
      case ClusterMessageType.Request:
        return l.remoteRequest(relay, m);
      case ClusterMessageType.Response:
        return l.remoteResponse(relay, m);
      case ClusterMessageType.Cancel:
        return l.remoteCancel(relay, m);
      case ClusterMessageType.Credit:
        return l.remoteCredit(relay, m);
      case ClusterMessageType.Error:
        return l.remoteError(relay, m);
      case ClusterMessageType.Event:
        return l.remoteEvent(relay, m);
      case ClusterMessageType.EventCopies:
        return l.remoteEventCopies(relay, m);
      case ClusterMessageType.Handled:
        return l.remoteHandled(relay, m);
    }
  }

  /** Every node of this relay, to `relay`: encoded once for the relays that ask within a heartbeat while its nodes stay the same. */
  private sendSnapshot(relay: RemoteRelay): void {
    if (!this.reachable(relay)) return;
    if (this.encodedSnapshot === undefined) {
      const m: ClusterOutgoing = { type: ClusterMessageType.Snapshot, relayId: this.relayId, nodes: this.listener?.localNodes() ?? [] };
      this.encodedSnapshot = { bytes: this.codec.encode(m, this.instanceId), at: Date.now() };
    }
    this.sendBytes(relay, ClusterMessageType.Snapshot, this.encodedSnapshot.bytes);
  }

  private upsert(relay: RemoteRelay, info: ClusterNode): void {
    const key = nodeKey(info.tenant, info.nodeId);
    const old = relay.nodes.get(key);
    if (old !== undefined) {
      if (sameNode(old.info, info)) return;
      if (old.info.since === info.since && old.info.subject === info.subject) {
        // The same claim with other patterns or subscriptions: what is in flight to it stays.
        this.listener?.remoteNodeChanged(old, info);
        return;
      }
      this.remove(relay, old, false, 0);
    }
    const node = new RemoteNode(relay, info);
    relay.nodes.set(key, node);
    this.listener?.remoteNodeUp(node);
  }

  private remove(relay: RemoteRelay, node: RemoteNode, graceful: boolean, reservedForMs: number): void {
    relay.nodes.delete(nodeKey(node.info.tenant, node.info.nodeId));
    this.listener?.remoteNodeDown(node, graceful, reservedForMs);
  }

  private replaceNodes(relay: RemoteRelay, nodes: ClusterNode[]): void {
    const keep = new Set(nodes.map(n => nodeKey(n.tenant, n.nodeId)));
    for (const [key, node] of [...relay.nodes]) if (!keep.has(key)) this.remove(relay, node, false, 0);
    for (const n of nodes) this.upsert(relay, n);
  }

  /**
   * Forgets a relay and its nodes; `why` is logged (undefined: quietly, as
   * part of a wider loss). `resync`: it is still there but what it sent was
   * lost: it is met again when next heard from (before this relay first synced, it waits for that; see ClusterReadiness).
   */
  private drop(relay: RemoteRelay, why: string | undefined, resync = false): void {
    if (this.relays.get(relay.instanceId) !== relay) return;
    this.relays.delete(relay.instanceId);
    relay.gone = true;
    this.outgoing.forget(relay);
    this.inbound.forget(relay);
    if (resync && why !== undefined) this.readiness.broken(relay, why);
    else this.readiness.settled(relay.instanceId);
    this.observer?.clusterMemberLost({ relayId: relay.relayId, why, nodes: relay.nodes.size });
    // Their relay is gone, not they: their ids stay bound to their subjects while they reconnect.
    for (const node of [...relay.nodes.values()]) this.remove(relay, node, false, this.reservationMs);
    this.listener?.relayGone(relay);
  }
}
