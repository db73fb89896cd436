import { Logger, type OnModuleDestroy } from '@nestjs/common';
import {
  type AuthFrame,
  type CancelFrame,
  type CreditFrame,
  CloseCode,
  type DiscoverFrame,
  DEFAULT_MAX_ARRAY_LENGTH,
  type DrainFrame,
  type EventFrame,
  FrameCodec,
  FrameType,
  type HandledFrame,
  type HelloFrame,
  MAX_CAPABILITIES,
  MAX_FRAME_FIELDS,
  RelayError,
  RelayErrorCode,
  RelayErrorMessages,
  type RequestFrame,
  type ResponseFrame,
  type WaitFrame,
} from '@wsrelay/protocol';
import type WebSocket from 'ws';
import type { ConnectionIdentity, RelayAuthService } from '../auth/relay-auth.service.js';
import type { RelayCluster } from '../cluster/relay-cluster.js';
import { EventAcks } from '../events/event-acks.js';
import { EventFanout } from '../events/event-fanout.js';
import type { ResolvedRelayOptions } from '../interfaces/relay-options.interface.js';
import { RelayLifecycle } from '../lifecycle/relay-lifecycle.js';
import type { RelayObserver } from '../observe/relay-observer.js';
import { RelayTally } from '../observe/relay-tally.js';
import { RelayTracing } from '../observe/relay-tracing.js';
import { RequestBook } from '../requests/request-book.js';
import { RequestRouter } from '../requests/request-router.js';
import { Waits } from '../requests/waits.js';
import type { LocalNode } from '../routing/local-node.js';
import { Membership } from '../routing/membership.js';
import { NodeReservations } from '../routing/node-reservations.js';
import { Worlds } from '../routing/world.js';
import { Heartbeat } from '../session/heartbeat.js';
import { InFlightLimit } from '../session/in-flight-limit.js';
import { Replies } from '../session/replies.js';
import { Session } from '../session/session.js';
import { SessionRegistry } from '../session/session-registry.js';
import { TokenBucket } from '../session/token-bucket.js';
import { TokenExpiry } from '../session/token-expiry.js';
import { ClusterBridge } from './cluster-bridge.js';
import { RelayBudgets } from './relay-budgets.js';
import { Handshake } from './handshake.js';
import type { NodeDiagnostics, RelayDiagnostics, RelayReadiness, RelayStatus } from './relay-status.js';
import { ShutdownDrain } from './shutdown-drain.js';
import { TokenRefresh } from './token-refresh.js';

/** The relay's codec: inbound frames bounded by its options, outbound ones encoded with their WebSocket header. */
function relayCodec(options: ResolvedRelayOptions): FrameCodec {
  // Inbound frames: HELLO's lists at their longest and its fields are the most values one may hold.
  return new FrameCodec({
    maxBinBytes: options.maxPayloadBytes,
    maxValues: 2 * DEFAULT_MAX_ARRAY_LENGTH + MAX_CAPABILITIES + MAX_FRAME_FIELDS,
    allocate: size => Buffer.allocUnsafe(size),
    // Sessions write a frame to their socket as one piece, header and all (see Session.send).
    webSocketHeader: true,
  });
}

/**
 * The relay: its parts put together, and the one door the gateway goes
 * through. Each method hands a frame to the part that owns what it is about:
 * sessions (socket, identity, budget, liveness), membership (HELLO, node ids,
 * presence), requests (RPC, WAIT, the startup grace), events (fan-out and
 * handler acks), the cluster bridge, token refresh and expiry, and the
 * shutdown drain.
 */
export class RelayCore implements OnModuleDestroy {
  readonly codec: FrameCodec;
  private readonly lifecycle = new RelayLifecycle();
  private readonly sessions = new SessionRegistry();
  readonly membership: Membership;
  readonly replies: Replies;
  private readonly logger = new Logger(RelayCore.name);
  private readonly worlds: Worlds;
  /** What the relay keeps for all connections together. */
  private readonly budgets: RelayBudgets;
  private readonly reservations: NodeReservations;
  private readonly book: RequestBook;
  private readonly waits: Waits;
  private readonly requests: RequestRouter;
  private readonly acks: EventAcks;
  private readonly fanout: EventFanout;
  private readonly bridge: ClusterBridge;
  private readonly limit: InFlightLimit<LocalNode>;
  private readonly heartbeat: Heartbeat;
  private readonly expiry: TokenExpiry;
  private readonly handshake: Handshake;
  private readonly refresh: TokenRefresh;
  private readonly drain: ShutdownDrain;
  private readonly pong: Uint8Array;
  /** The ping and pong listener every socket shares (`this` is the socket). */
  private readonly markHeard: (this: WebSocket) => void;

  constructor(
    private readonly options: ResolvedRelayOptions,
    auth: RelayAuthService,
    private readonly cluster: RelayCluster,
    /** Where what the relay does is counted and told (metrics, logs). */
    private readonly observer: RelayObserver = new RelayTally(),
  ) {
    this.codec = relayCodec(options);
    this.replies = new Replies(this.codec);
    this.pong = this.codec.encode({ type: FrameType.Pong });
    this.reservations = new NodeReservations(options.nodeIdReservationMs);
    this.budgets = new RelayBudgets(options.budgets);
    this.worlds = new Worlds(this.budgets.routes);
    this.membership = new Membership(this.worlds, this.reservations, cluster, this.replies);
    const settled = () => this.drain.settled();
    this.book = new RequestBook(settled);
    const { waitBytes, heldBytes, retainedBytes } = this.budgets;
    const waitLimits = { waitBytes, heldBytes, maxWaitTimeoutMs: options.maxWaitTimeoutMs };
    this.waits = new Waits(this.replies, options.maxBufferedBytes, waitLimits, observer);
    this.acks = new EventAcks(this.codec, cluster, {
      attemptTimeoutMs: options.eventAckTimeoutMs,
      maxAttempts: options.maxEventAttempts,
      maxRetainedBytes: options.maxBufferedBytes,
      retainedBytes,
      onSettled: settled,
      observer,
    });
    const tracing = options.tracing ? new RelayTracing(options.relayId) : undefined;
    const limit = (this.limit = new InFlightLimit<LocalNode>(options.maxInFlightPerConnection))
      .counts(node => this.book.askedCount(node))
      .counts(node => this.waits.count(node))
      .counts(node => this.acks.pending(node));
    this.requests = new RequestRouter(
      this.book,
      this.waits,
      this.worlds,
      this.membership,
      cluster,
      this.lifecycle,
      this.replies,
      limit,
      observer,
      tracing,
    );
    const ackTimeoutMs = options.eventAckTimeoutMs * options.maxEventAttempts;
    this.fanout = new EventFanout(this.acks, this.worlds, cluster, this.replies, limit, ackTimeoutMs, observer, tracing);
    this.bridge = new ClusterBridge(this.membership, this.requests, this.fanout, this.acks);
    this.membership.listener = this.bridge;
    this.expiry = new TokenExpiry(this.codec, auth.expiryWarningMs);
    this.heartbeat = new Heartbeat(this.sessions, options.heartbeatIntervalMs, s => this.membership.nodeOf(s)?.nodeId ?? s.sessionId);
    this.handshake = new Handshake(this.membership, this.lifecycle, this.requests, this.expiry, this.replies, options, observer);
    this.refresh = new TokenRefresh(auth, this.sessions, this.membership, this.expiry, this.replies, observer);
    const drainSettings = { drainTimeoutMs: options.drainTimeoutMs, inFlight: () => this.inFlight(), observer };
    this.drain = new ShutdownDrain(this.lifecycle, this.sessions, this.membership, this.waits, this.replies, drainSettings);
    const heartbeat = this.heartbeat;
    this.markHeard = function (this: WebSocket) {
      heartbeat.heard(this);
    };
  }

  /** Starts the startup grace and the heartbeat, and joins the cluster (called once the gateway is up). */
  start(): void {
    this.lifecycle.started(this.options.startupGraceMs);
    this.heartbeat.start(now => {
      this.reservations.sweep(now);
      this.budgets.unsent.sweep(this.sessions.values());
    });
    this.cluster.start(this.bridge).catch((err: unknown) => {
      this.logger.error(`The cluster backplane failed to start: ${err instanceof Error ? err.message : String(err)}`);
    });
  }

  /**
   * Shutdown (SIGTERM, `app.close()`) drains: new connections are refused,
   * every node is told to move (GOAWAY) and leaves routing here and in the
   * cluster, what is in flight completes (up to `drainTimeoutMs`), then every
   * connection closes with 1001.
   */
  async onModuleDestroy(): Promise<void> {
    await this.drain.run();
    this.heartbeat.stop();
    // Before the cluster stops: what forgetting the sessions tells other relays must still go out.
    const sessions = [...this.sessions.values()];
    for (const session of sessions) this.forget(session, false);
    await this.cluster.stop();
    for (const session of sessions) if (session.isOpen) session.socket.close(CloseCode.GOING_AWAY, RelayErrorMessages.goingAway());
  }

  /** Whether the relay takes new connections (not while it drains for shutdown). */
  get accepting(): boolean {
    return this.lifecycle.accepting;
  }

  get connectionCount(): number {
    return this.sessions.size;
  }

  /** A socket opened with the identity its upgrade established: it has `handshakeTimeoutMs` to say HELLO. */
  accept(socket: WebSocket, identity: ConnectionIdentity): Session {
    const o = this.options;
    const rate = o.rateLimit === false ? undefined : new TokenBucket(o.rateLimit.perSecond, o.rateLimit.burst);
    const budget = { slowBytes: o.maxBufferedBytes / 16, budgetBytes: o.maxBufferedBytes, watch: this.budgets.unsent };
    const session = new Session(socket, identity, budget, rate, this.observer);
    this.sessions.add(session);
    this.observer.connectionAccepted({
      role: identity.isServer ? 'server' : 'client',
      session: session.sessionId,
      subject: identity.subject,
      address: (socket as WebSocket & { _socket?: { remoteAddress?: string } })._socket?.remoteAddress,
    });
    // The TOKEN_EXPIRING warning waits for HELLO; the close at expiry does not.
    this.expiry.schedule(session, false);
    socket.on('pong', this.markHeard);
    socket.on('ping', this.markHeard);
    this.handshake.expect(session);
    return session;
  }

  /** A socket closed: its node goes offline and everything it had in flight is settled. */
  drop(socket: WebSocket): void {
    const session = this.sessions.of(socket);
    if (session !== undefined && this.sessions.has(session)) this.forget(session, true);
  }

  /** The session of a socket (also one the relay has let go of in its shutdown). */
  sessionOf(socket: WebSocket): Session | undefined {
    return this.sessions.of(socket);
  }

  /** Whether the relay still serves the session (not after it was forgotten in the shutdown). */
  holds(session: Session): boolean {
    return this.sessions.has(session);
  }

  hello(session: Session, frame: HelloFrame): void {
    // Its socket closed while the HELLO was in Nest's pipeline: it must not join routing after it left.
    if (!this.sessions.has(session)) return;
    this.handshake.hello(session, frame);
  }

  request(session: Session, frame: RequestFrame): void {
    this.requests.request(this.node(session), frame);
  }

  response(session: Session, frame: ResponseFrame): void {
    this.requests.response(this.node(session), frame);
  }

  cancel(session: Session, frame: CancelFrame): void {
    this.requests.cancel(this.node(session), frame.id);
  }

  credit(session: Session, frame: CreditFrame): void {
    this.requests.credit(this.node(session), frame.id, frame.credit);
  }

  /**
   * Fans an event out and ACKs it with the number of nodes it reached (0
   * included; none for id 0); with handler acks the ACK comes once they have
   * answered. Returns that number, or undefined while handler acks are awaited.
   */
  publish(session: Session, frame: EventFrame): number | undefined {
    const node = this.node(session);
    const recipients = this.fanout.publish(node, frame);
    this.fanout.acknowledge(node, frame.id, recipients);
    return recipients;
  }

  handled(session: Session, frame: HandledFrame): void {
    this.fanout.handled(this.node(session), frame.id, frame.error);
  }

  wait(session: Session, frame: WaitFrame): void {
    this.requests.wait(this.node(session), frame);
  }

  discover(session: Session, frame: DiscoverFrame): void {
    const nodes = this.membership.discover(session.tenant, session.identity.permissions);
    session.send(this.codec.encode({ type: FrameType.Nodes, id: frame.id, nodes }));
  }

  reauth(session: Session, frame: AuthFrame): Promise<void> {
    return this.refresh.reauth(session, frame);
  }

  /**
   * DRAIN: the node is shutting down. It leaves routing at once (no new
   * request, event or WAIT answer goes to it, its node id is free again),
   * what it has in flight completes, and the relay ACKs with how many
   * requests that is. Other relays unroute it without failing its requests.
   */
  drainNode(session: Session, frame: DrainFrame): void {
    const node = this.node(session);
    this.membership.drain(node);
    this.replies.ack(session, frame.id, this.requests.inFlightAt(node));
  }

  ping(session: Session): void {
    session.send(this.pong);
  }

  status(): RelayStatus {
    const m = process.memoryUsage();
    return {
      relayId: this.options.relayId,
      connections: this.sessions.size,
      nodes: this.membership.size,
      inFlight: this.inFlight() + this.waits.size,
      memory: { rssBytes: m.rss, heapUsedBytes: m.heapUsed },
      cluster: this.cluster.status(),
      budgets: this.budgets.status(),
      readiness: this.readiness(),
    };
  }

  /**
   * Whether the relay should get traffic (the public `GET /status`): not
   * while it drains, nor, in a cluster, while its backplane is down or it has
   * not yet got the nodes of the other relays.
   */
  readiness(): RelayReadiness {
    if (!this.lifecycle.accepting) return { ready: false, reason: 'draining' };
    const c = this.options.cluster;
    if (c.redis === undefined && c.backplane === undefined) return { ready: true };
    const cluster = this.cluster.status();
    if (!cluster.healthy) return { ready: false, reason: 'cluster backplane down' };
    return cluster.synced ? { ready: true } : { ready: false, reason: 'cluster not synced' };
  }

  diagnostics(): RelayDiagnostics {
    return {
      connections: this.sessions.size,
      localNodes: this.membership.size,
      worlds: [...this.worlds.values()].map(w => ({
        tenant: w.tenant,
        nodes: [...w.nodes.keys()].sort(),
        providedPatterns: w.providers.patternCount,
        ...w.subscriptions.counts,
      })),
      requests: this.book.size,
      waits: this.waits.counts,
      eventCopies: this.acks.size,
      reservations: this.reservations.size,
      droppedFrames: this.requests.dropped + this.acks.dropped,
      budgets: this.budgets.status(),
      stalled: this.budgets.unsent.stalledCount,
    };
  }

  /** One node as this relay routes it (tenant '' without tenants), or undefined when it knows none by that id. */
  nodeDiagnostics(nodeId: string, tenant = ''): NodeDiagnostics | undefined {
    const routed = this.worlds.get(tenant)?.nodes.get(nodeId);
    const local = this.membership.find(tenant, nodeId);
    if (local !== undefined) {
      const s = local.session;
      const [requestsIn, requestsOut, waits] = [this.requests.inFlightAt(local), this.book.askedCount(local), this.waits.count(local)];
      return {
        local: true,
        routed: local.routed,
        requestsIn,
        requestsOut,
        waits,
        bufferedBytes: s.socket.bufferedAmount,
        slow: s.slow,
        closedAsSlowConsumer: s.overBudget,
      };
    }
    if (routed === undefined) return undefined;
    return {
      local: false,
      routed: true,
      requestsIn: 0,
      requestsOut: 0,
      waits: 0,
      bufferedBytes: 0,
      slow: false,
      closedAsSlowConsumer: false,
    };
  }

  /** Requests and handler-acked event copies in flight through this relay. */
  private inFlight(): number {
    return this.book.size + this.acks.size;
  }

  /** The node an established session is (the frame policy let only those through). */
  private node(session: Session): LocalNode {
    const node = this.membership.nodeOf(session);
    if (node === undefined) throw new RelayError(RelayErrorCode.BAD_FRAME, RelayErrorMessages.badFrame(RelayErrorMessages.helloFirst()));
    return node;
  }

  /** Forgets a session: its node leaves routing, what it had in flight settles (`notify`: others are told). */
  private forget(session: Session, notify: boolean): void {
    this.sessions.delete(session);
    this.budgets.unsent.forget(session);
    const node = this.membership.nodeOf(session);
    this.observer.connectionClosed(session.connectedAsServer ? 'server' : 'client');
    if (session.overBudget) {
      this.observer.slowConsumerClosed({ name: node?.nodeId ?? session.sessionId, reason: session.slowConsumerReason ?? 'slow consumer' });
    }
    this.handshake.forget(session);
    this.expiry.clear(session);
    if (node === undefined) return;
    this.observer.nodeGone({ nodeId: node.nodeId, tenant: node.world.tenant, why: notify ? 'disconnected' : 'shutdown' });
    this.membership.closed(node);
    this.requests.nodeGone(node, notify);
    this.waits.forget(node);
    this.acks.nodeGone(node);
    this.membership.forget(node);
  }
}
