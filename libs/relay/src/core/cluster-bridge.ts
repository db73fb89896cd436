import type { ClusterMessageType as Cmt, ClusterNode, Msg } from '../cluster/cluster-protocol.js';
import type { ClusterListener } from '../cluster/relay-cluster.js';
import type { RemoteNode, RemoteRelay } from '../cluster/remote.js';
import type { EventAcks } from '../events/event-acks.js';
import type { EventFanout } from '../events/event-fanout.js';
import type { RequestRouter } from '../requests/request-router.js';
import type { Membership, MembershipListener } from '../routing/membership.js';
import type { World } from '../routing/world.js';

/**
 * Where what other relays say goes: their nodes into membership, forwarded
 * requests and answers to the request router, events to the fan-out and
 * handler acks; and what membership changes mean for what is in flight.
 */
export class ClusterBridge implements ClusterListener, MembershipListener {
  constructor(
    private readonly membership: Membership,
    private readonly requests: RequestRouter,
    private readonly fanout: EventFanout,
    private readonly acks: EventAcks,
  ) {}

  localNodes(): ClusterNode[] {
    return this.membership.localNodes();
  }

  remoteNodeUp(node: RemoteNode): void {
    this.membership.remoteUp(node);
  }

  remoteNodeDown(node: RemoteNode, graceful: boolean, reservedForMs: number): void {
    this.membership.remoteDown(node, graceful, reservedForMs);
  }

  remoteNodeChanged(node: RemoteNode, info: ClusterNode): void {
    this.membership.remoteChanged(node, info);
  }

  relayGone(relay: RemoteRelay): void {
    this.acks.relayGone(relay);
    this.requests.relayGone(relay);
  }

  remoteRequest(relay: RemoteRelay, m: Msg<Cmt.Request>): void {
    this.requests.remoteRequest(relay, m);
  }

  remoteResponse(relay: RemoteRelay, m: Msg<Cmt.Response>): void {
    this.requests.remoteResponse(relay, m);
  }

  remoteCancel(relay: RemoteRelay, m: Msg<Cmt.Cancel>): void {
    this.requests.remoteCancel(relay, m);
  }

  remoteCredit(relay: RemoteRelay, m: Msg<Cmt.Credit>): void {
    this.requests.remoteCredit(relay, m);
  }

  remoteError(relay: RemoteRelay, m: Msg<Cmt.Error>): void {
    this.requests.remoteError(relay, m);
  }

  remoteEvent(relay: RemoteRelay, m: Msg<Cmt.Event>): void {
    this.fanout.remoteEvent(m, relay.relayId);
  }

  remoteEventCopies(relay: RemoteRelay, m: Msg<Cmt.EventCopies>): void {
    this.fanout.remoteEventCopies(relay, m);
  }

  remoteHandled(relay: RemoteRelay, m: Msg<Cmt.Handled>): void {
    this.acks.remoteHandled(relay, m.did, m.code, m.error);
  }

  providersArrived(world: World, patterns: readonly string[]): void {
    this.requests.providersArrived(world, patterns);
  }

  remoteNodeLost(node: RemoteNode): void {
    this.acks.remoteNodeGone(node);
    this.requests.providerLost(node);
  }
}
