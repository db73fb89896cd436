import { CloseCode, type NodeInfo, RelayErrorCode, RelayErrorMessages } from '@wsrelay/protocol';
import type { Permissions } from '../auth/permissions.js';
import type { ClusterNode } from '../cluster/cluster-protocol.js';
import type { RelayCluster } from '../cluster/relay-cluster.js';
import { claimBeats } from '../cluster/remote.js';
import { RemoteNode } from '../cluster/remote.js';
import { closeReason } from '../internal/utf8.js';
import type { Replies } from '../session/replies.js';
import type { Session } from '../session/session.js';
import { type Announcement, LocalNode } from './local-node.js';
import type { NodeReservations } from './node-reservations.js';
import { Standby } from './standby.js';
import type { World, Worlds } from './world.js';

/** What membership changes mean for what is waiting and in flight. */
export interface MembershipListener {
  /** Nodes serving `patterns` came into routing: calls waiting for them can go. */
  providersArrived(world: World, patterns: readonly string[]): void;
  /** A node of another relay left routing without draining: what was in flight with it settles. */
  remoteNodeLost(node: RemoteNode): void;
}

/**
 * Who is in routing: the nodes of this relay (from HELLO until they drain,
 * lose their id or close) and those of other relays (from presence), with
 * node-id claims settled the same way on every relay and node ids bound to
 * their token subjects.
 */
export class Membership {
  private readonly locals = new Map<Session, LocalNode>();
  /** Per tenant: providers the relay's shutdown drain moved off routing. */
  private readonly standbys = new Map<string, Standby>();

  constructor(
    private readonly worlds: Worlds,
    private readonly reservations: NodeReservations,
    private readonly cluster: RelayCluster,
    private readonly replies: Replies,
  ) {}

  /** Who hears what membership changes mean for what is waiting and in flight (set once, while the relay is put together). */
  listener: MembershipListener = { providersArrived: () => undefined, remoteNodeLost: () => undefined };

  /** The node a session became with HELLO. */
  nodeOf(session: Session): LocalNode | undefined {
    return this.locals.get(session);
  }

  /** A node of this relay by its id (a scan: for diagnostics, not routing). */
  find(tenant: string, nodeId: string): LocalNode | undefined {
    let found: LocalNode | undefined;
    for (const node of this.locals.values()) {
      if (node.nodeId !== nodeId || node.world.tenant !== tenant) continue;
      // After a DRAIN a new session may hold the id while the old one finishes: the one in routing first.
      if (node.routed) return node;
      found = node;
    }
    return found;
  }

  /** Nodes of this relay (established sessions). */
  get size(): number {
    return this.locals.size;
  }

  /** Why `session` may not take `nodeId`: another live node holds it, or it is bound to another subject. */
  conflict(session: Session, nodeId: string): string | undefined {
    const world = this.worlds.get(session.tenant);
    if (world?.nodes.has(nodeId)) return RelayErrorMessages.nodeIdConflict(nodeId);
    const owner = this.reservations.ownerOf(session.tenant, nodeId);
    return owner !== undefined && owner !== session.identity.subject ? RelayErrorMessages.nodeIdOwned(nodeId) : undefined;
  }

  /** HELLO accepted: the session is a node in routing, here and (through presence) on every relay. */
  join(session: Session, announced: Announcement): LocalNode {
    const world = this.worlds.ensure(session.tenant);
    const node = new LocalNode(session, world, announced, Date.now());
    this.locals.set(session, node);
    world.members++;
    world.route(node);
    this.cluster.nodeUp(clusterNode(node));
    const subject = session.identity.subject;
    if (subject !== null) this.reservations.hold(world.tenant, node.nodeId, subject, node);
    return node;
  }

  /** DRAIN: the node leaves routing at once, gracefully (what it has in flight completes); its id stays bound for a while. */
  drain(node: LocalNode): void {
    // Moved off by the relay's own drain: it is leaving itself now, so not even a request crossing the GOAWAY goes to it.
    this.removeFromStandby(node);
    if (!node.routed) return;
    this.leaveRouting(node, true);
    this.reservations.release(node);
  }

  /** The relay's shutdown drain moves a node off routing; a provider stays reachable for requests that cross the GOAWAY. */
  moveOff(node: LocalNode): void {
    if (!node.routed) return;
    this.leaveRouting(node, true);
    if (node.patterns.length > 0) this.standbyOf(node.world.tenant).add(node);
  }

  /** A provider the drain moved off that serves `pattern` (`peer`: that node only), in turn. */
  standbyPick(tenant: string, pattern: string, peer: string | null): LocalNode | undefined {
    return this.standbys.get(tenant)?.pick(pattern, peer);
  }

  /** The node's connection closed: it leaves routing (a claim of another relay to its id takes over). */
  closed(node: LocalNode): void {
    this.reservations.release(node);
    this.removeFromStandby(node);
    if (!node.routed) return;
    this.leaveRouting(node, false);
    const other = this.cluster.claimant(node.world.tenant, node.nodeId);
    if (other !== undefined) this.remoteUp(other);
  }

  /** Forgets a closed node once what it had in flight has settled. */
  forget(node: LocalNode): void {
    if (this.locals.get(node.session) !== node) return;
    this.locals.delete(node.session);
    node.world.members--;
    this.worlds.dropIfEmpty(node.world);
  }

  /**
   * A token refresh narrowed what the node may serve and subscribe to:
   * routing follows (in routing here and in presence; in the drain's stand-by).
   * Returns how many patterns and subscriptions it lost.
   */
  narrow(node: LocalNode, allowed: { serve(pattern: string): boolean; subscribe(pattern: string): boolean }): [number, number] {
    const patterns = node.patterns.filter(p => allowed.serve(p));
    const events = node.events.filter(e => allowed.subscribe(e));
    const lost: [number, number] = [node.patterns.length - patterns.length, node.events.length - events.length];
    if (lost[0] === 0 && lost[1] === 0) return lost;
    const world = node.world;
    const routed = node.routed;
    const standby = this.removeFromStandby(node);
    if (routed) world.unroute(node);
    node.narrow(patterns, events);
    if (standby && patterns.length > 0) this.standbyOf(world.tenant).add(node);
    // Not a node out of routing (it drained, or the relay's drain moved it off): it stays out.
    if (!routed) return lost;
    world.route(node);
    this.cluster.nodeUp(clusterNode(node));
    return lost;
  }

  /**
   * A node of another relay is online. A node id is held by one node in the
   * cluster: between two claims the older wins (ties by relay instance), so
   * every relay settles a race the same way; a local node that loses is
   * closed with NODE_ID_CONFLICT.
   */
  remoteUp(node: RemoteNode): void {
    const world = this.worlds.ensure(node.info.tenant);
    const held = world.nodes.get(node.nodeId);
    if (held === node) return;
    if (held instanceof LocalNode) {
      if (!claimBeats(node.info, node.relay.instanceId, held, this.cluster.instanceId)) return;
      this.lose(held);
    } else if (held instanceof RemoteNode) {
      if (held.relay !== node.relay && !claimBeats(node.info, node.relay.instanceId, held.info, held.relay.instanceId)) return;
      // Not remoteDown(): it would put the best claimant (this very node) in, and we are about to.
      this.unrouteRemote(world, held, false, 0);
    }
    world.route(node);
    // Its id is bound to its subject here as well, so no other subject takes it over through this relay.
    if (node.info.subject !== null) this.reservations.hold(world.tenant, node.nodeId, node.info.subject);
    this.listener.providersArrived(world, node.patterns);
  }

  /** A node of another relay went offline (`graceful`: it drained, its requests in flight complete). */
  remoteDown(node: RemoteNode, graceful: boolean, reservedForMs: number): void {
    const world = this.worlds.get(node.info.tenant);
    if (world === undefined || !world.routes(node)) return;
    this.unrouteRemote(world, node, graceful, reservedForMs);
    // Another relay's claim to the id, kept out while this one held it.
    const other = this.cluster.claimant(node.info.tenant, node.nodeId);
    if (other !== undefined && other !== node) this.remoteUp(other);
    this.worlds.dropIfEmpty(world);
  }

  /** The same claim with other patterns or subscriptions (a token refresh on its relay withdrew some): routing follows, what is in flight stays. */
  remoteChanged(node: RemoteNode, info: ClusterNode): void {
    const world = this.worlds.get(node.info.tenant);
    const routed = world?.routes(node) === true;
    if (routed) world.unroute(node);
    node.update(info);
    if (!routed) return;
    world.route(node);
    this.listener.providersArrived(world, node.patterns);
  }

  /** This relay's nodes in routing, as presence announces them. */
  localNodes(): ClusterNode[] {
    const nodes: ClusterNode[] = [];
    for (const node of this.locals.values()) if (node.routed) nodes.push(clusterNode(node));
    return nodes;
  }

  /**
   * The nodes in a tenant's routing as DISCOVER lists them to a connection
   * with `permissions`: only the patterns it may call and the subscriptions
   * it may emit to; a node with neither is left out. A connection that may
   * call and emit everything (the default) sees every node. A passive
   * client (a browser) is listed without a service label: it chose its own,
   * and must not pass itself off as a service.
   */
  discover(tenant: string, permissions: Permissions): NodeInfo[] {
    const world = this.worlds.get(tenant);
    if (world === undefined) return [];
    const all = permissions.callsAndPublishesAll;
    const nodes: NodeInfo[] = [];
    for (const node of world.nodes.values()) {
      const patterns = node.patterns.filter(p => permissions.allows('call', p));
      const events = node.events.filter(e => permissions.mayPublishTo(e));
      if (all || patterns.length + events.length > 0)
        nodes.push({ nodeId: node.nodeId, service: node.passive === true ? null : node.service, patterns, events, queue: node.queue });
    }
    return nodes;
  }

  /** Takes a routed local node out of routing, here and in the cluster (`graceful`: it drains). */
  private leaveRouting(node: LocalNode, graceful: boolean): void {
    node.world.unroute(node);
    this.cluster.nodeDown(node.world.tenant, node.nodeId, graceful, node.session.identity.subject);
  }

  /** A local node lost its id to an older claim on another relay. */
  private lose(node: LocalNode): void {
    this.leaveRouting(node, false);
    this.reservations.release(node);
    const message = RelayErrorMessages.nodeIdConflict(node.nodeId);
    this.replies.error(node, 0, RelayErrorCode.NODE_ID_CONFLICT, message);
    node.session.socket.close(CloseCode.NODE_ID_CONFLICT, closeReason(message));
  }

  /** Takes a remote node out of routing; what was in flight to it settles unless it drained. */
  private unrouteRemote(world: World, node: RemoteNode, graceful: boolean, reservedForMs: number): void {
    world.unroute(node);
    this.reservations.releaseRemote(world.tenant, node.nodeId, node.info.subject, reservedForMs);
    if (!graceful) this.listener.remoteNodeLost(node);
  }

  private standbyOf(tenant: string): Standby {
    let standby = this.standbys.get(tenant);
    if (standby === undefined) this.standbys.set(tenant, (standby = new Standby()));
    return standby;
  }

  private removeFromStandby(node: LocalNode): boolean {
    const standby = this.standbys.get(node.world.tenant);
    if (standby === undefined || !standby.remove(node)) return false;
    if (standby.size === 0) this.standbys.delete(node.world.tenant);
    return true;
  }
}

/** A local node as presence announces it to the other relays. */
function clusterNode(node: LocalNode): ClusterNode {
  return {
    tenant: node.world.tenant,
    nodeId: node.nodeId,
    service: node.service,
    patterns: node.patterns,
    events: node.events,
    queue: node.queue,
    subject: node.session.identity.subject,
    since: node.since,
    ...(node.passive ? { passive: true } : {}),
  };
}
