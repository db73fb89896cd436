import { Logger, type OnModuleInit } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Backplane } from './backplane.js';
import {
  ClusterCodec,
  type ClusterMessage,
  ClusterMessageError,
  type ClusterOutgoing,
  ClusterMessageType,
  type ClusterNode,
  type Msg,
} from './cluster-protocol.js';
import { InMemoryBackplane } from './in-memory.backplane.js';
import { nodeKey, RemoteNode, RemoteRelay } from './remote.js';

/** How a relay takes part in its cluster. */
export interface ClusterSettings {
  /** This relay's id (its WELCOME's and status's), sent with its heartbeats. */
  relayId: string;
  backplane: Backplane;
  /** Interval of the relays' heartbeat, in ms. */
  heartbeatIntervalMs: number;
  /** A relay silent this long is gone with its nodes (and this relay's own heartbeat must come back within it). */
  timeoutMs: number;
  /** How long the id of a node whose relay is gone stays bound to its subject, in ms. */
  reservationMs: number;
}

/** What the cluster needs from the router: its nodes, and where remote events go. */
export interface ClusterListener {
  /** This relay's established nodes, for a snapshot. */
  localNodes(): ClusterNode[];
  remoteNodeUp(node: RemoteNode): void;
  /** `graceful`: it drained, and its requests in flight complete; `reservedForMs`: how long its id stays bound to its subject. */
  remoteNodeDown(node: RemoteNode, graceful: boolean, reservedForMs: number): void;
  /** The same claim announced again with other patterns or subscriptions (a token refresh withdrew some). */
  remoteNodeChanged(node: RemoteNode, info: ClusterNode): void;
  /**
   * A relay is gone, or started over (a SYNC from a relay already known: it
   * forgot what was in flight with this one): settle what was in flight with it.
   */
  relayGone(relay: RemoteRelay): void;
  remoteRequest(relay: RemoteRelay, m: Msg<ClusterMessageType.Request>): void;
  remoteResponse(relay: RemoteRelay, m: Msg<ClusterMessageType.Response>): void;
  remoteCancel(relay: RemoteRelay, m: Msg<ClusterMessageType.Cancel>): void;
  remoteError(relay: RemoteRelay, m: Msg<ClusterMessageType.Error>): void;
  remoteEventCopies(relay: RemoteRelay, m: Msg<ClusterMessageType.EventCopies>): void;
  remoteEvent(relay: RemoteRelay, m: Msg<ClusterMessageType.Event>): void;
  remoteHandled(relay: RemoteRelay, m: Msg<ClusterMessageType.Handled>): void;
}

/** What `RelayCluster.status()` reports. */
export interface ClusterStatus {
  /** This relay process's id on the backplane. */
  instanceId: string;
  backplane: string;
  /** The backplane works (this relay hears its own heartbeat): remote relays are reachable. */
  healthy: boolean;
  relays: Array<{ relayId: string; instanceId: string; nodes: number; lastSeenMsAgo: number }>;
}

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
  private readonly codec = new ClusterCodec();
  private readonly relays = new Map<string, RemoteRelay>();
  private readonly heartbeatIntervalMs: number;
  private readonly timeoutMs: number;
  private listener: ClusterListener | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** The backend says it is connected (undefined until start() resolves without its saying otherwise). */
  private connected: boolean | undefined;
  /** Last time this relay heard its own heartbeat back through the backplane. */
  private lastHeard = 0;
  private healthy = false;
  private stopped = false;
  private readonly complaints = new Set<string>();
  private readonly relayId: string;
  private readonly reservationMs: number;

  constructor(settings: ClusterSettings) {
    this.relayId = settings.relayId;
    this.backplane = settings.backplane;
    this.reservationMs = settings.reservationMs;
    this.heartbeatIntervalMs = settings.heartbeatIntervalMs;
    this.timeoutMs = settings.timeoutMs;
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
    return {
      instanceId: this.instanceId,
      backplane: this.backplane.description,
      healthy: this.healthy,
      relays: [...this.relays.values()].map(r => ({
        relayId: r.relayId,
        instanceId: r.instanceId,
        nodes: r.nodes.size,
        lastSeenMsAgo: now - r.lastSeen,
      })),
    };
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
    this.broadcast({ type: ClusterMessageType.NodeUp, node });
  }

  /**
   * A node left, lost its id, or drained (`graceful`: other relays let its
   * requests in flight complete); its id stays bound to `subject` for the
   * reservation time.
   */
  nodeDown(tenant: string, nodeId: string, graceful: boolean, subject: string | null): void {
    this.broadcast({
      type: ClusterMessageType.NodeDown,
      tenant,
      nodeId,
      graceful,
      subject,
      reservedForMs: subject === null ? 0 : this.reservationMs,
    });
  }

  /** Sends a message to one relay; false when it is gone or the backplane is not usable. */
  send(relay: RemoteRelay, m: ClusterOutgoing): boolean {
    if (relay.gone || !this.healthy || this.connected !== true || this.stopped) return false;
    this.backplane.send(relay.instanceId, this.codec.encode(m, this.instanceId));
    return true;
  }

  private broadcast(m: ClusterOutgoing): void {
    if (this.connected === true && !this.stopped) this.backplane.publish(this.codec.encode(m, this.instanceId));
  }

  /**
   * The heartbeat. Until it has come back once (healthy), only to this
   * relay's own channel: the others first hear of it through the SYNC it
   * then broadcasts (see onMessage), not through beats it could not answer.
   */
  private beat(): void {
    const m: ClusterOutgoing = { type: ClusterMessageType.Beat, relayId: this.relayId };
    if (this.healthy) this.broadcast(m);
    else if (this.connected === true && !this.stopped) this.backplane.send(this.instanceId, this.codec.encode(m, this.instanceId));
  }

  private onConnection(up: boolean): void {
    if (up === this.connected || this.stopped) return;
    const before = this.connected;
    this.connected = up;
    if (up) {
      this.logger.log(`Cluster backplane ${this.backplane.description} connected`);
      this.beat();
    } else {
      if (before !== undefined) {
        this.logger.warn(
          `Cluster backplane ${this.backplane.description} lost: routing among this relay's own connections until it is back`,
        );
      }
      this.unhealthy();
    }
  }

  private tick(): void {
    this.beat();
    const now = Date.now();
    if (this.healthy && now - this.lastHeard > this.timeoutMs) {
      this.logger.warn(
        `Cluster backplane ${this.backplane.description}: this relay's own heartbeat has not come back for ${now - this.lastHeard} ms; routing among its own connections until it does`,
      );
      this.unhealthy();
      // Throw away whatever the stalled connections still hold, so nothing stale is delivered when they recover.
      this.backplane.reset?.();
      return;
    }
    for (const relay of [...this.relays.values()]) {
      if (now - relay.lastSeen > this.timeoutMs) this.drop(relay, `silent for ${now - relay.lastSeen} ms`);
    }
  }

  private unhealthy(): void {
    this.healthy = false;
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
    this.dispatch(relay, m, known === undefined, this.listener);
  }

  private decode(bytes: Uint8Array): ClusterMessage | undefined {
    try {
      return this.codec.decode(bytes);
    } catch (err) {
      const why = err instanceof ClusterMessageError ? err.message : String(err);
      if (!this.complaints.has(why) && this.complaints.size < 100) {
        this.complaints.add(why);
        this.logger.warn(`Dropped a cluster message: ${why}`);
      }
      return undefined;
    }
  }

  /** Only our own heartbeat, back through the backplane, proves it carries what we publish. */
  private onOwnMessage(m: ClusterMessage): void {
    if (m.type !== ClusterMessageType.Beat || this.connected !== true) return;
    this.lastHeard = Date.now();
    if (!this.healthy) {
      // Usable (again): ask every relay for its nodes. Relays that knew
      // this one take the SYNC as a restart and settle what was in flight with it.
      this.healthy = true;
      this.broadcast({ type: ClusterMessageType.Sync, relayId: this.relayId });
    }
  }

  /** A relay heard from for the first time: first contact either way, each side sends the other its nodes (a SYNC is answered in dispatch). */
  private meet(m: ClusterMessage): RemoteRelay {
    const relay = new RemoteRelay(m.from, 'relayId' in m ? m.relayId : undefined);
    this.relays.set(m.from, relay);
    if (m.type !== ClusterMessageType.Sync) this.send(relay, this.snapshot());
    if (m.type !== ClusterMessageType.Snapshot && m.type !== ClusterMessageType.Sync) {
      this.send(relay, { type: ClusterMessageType.Sync, relayId: this.relayId });
    }
    this.logger.log(`Relay ${relay.relayId} joined the cluster`);
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
        this.send(relay, this.snapshot());
        return;
      case ClusterMessageType.Snapshot:
        relay.relayId = m.relayId;
        this.replaceNodes(relay, m.nodes);
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

  private snapshot(): ClusterOutgoing {
    return {
      type: ClusterMessageType.Snapshot,
      relayId: this.relayId,
      nodes: this.listener?.localNodes() ?? [],
    };
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

  /** Forgets a relay and its nodes; `why` is logged (undefined: quietly, as part of a wider loss). */
  private drop(relay: RemoteRelay, why: string | undefined): void {
    if (this.relays.get(relay.instanceId) !== relay) return;
    this.relays.delete(relay.instanceId);
    relay.gone = true;
    if (why !== undefined)
      this.logger.warn(`Relay ${relay.relayId} left the cluster (${why}); its ${relay.nodes.size} node(s) are offline`);
    // Their relay is gone, not they: their ids stay bound to their subjects while they reconnect.
    for (const node of [...relay.nodes.values()]) this.remove(relay, node, false, this.reservationMs);
    this.listener?.relayGone(relay);
  }
}

/** Whether claim `a` to a node id beats claim `b`: the older wins, ties by relay instance id. */
export function claimBeats(a: { since: number }, aInstance: string, b: { since: number }, bInstance: string): boolean {
  return a.since < b.since || (a.since === b.since && aInstance < bInstance);
}

function sameNode(a: ClusterNode, b: ClusterNode): boolean {
  return (
    a.since === b.since &&
    a.service === b.service &&
    a.queue === b.queue &&
    a.subject === b.subject &&
    a.patterns.length === b.patterns.length &&
    a.patterns.every((p, i) => p === b.patterns[i]) &&
    a.events.length === b.events.length &&
    a.events.every((e, i) => e === b.events[i])
  );
}
