import { Inject, Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import {
  type AuthFrame,
  CloseCode,
  type CancelFrame,
  type DiscoverFrame,
  type DrainFrame,
  EventFlag,
  type EventFrame,
  type Frame,
  FrameCodec,
  FrameType,
  type HandledFrame,
  type HelloFrame,
  listed,
  RelayError,
  RelayErrorCode,
  RelayErrorMessages,
  type RequestFrame,
  type ResponseFrame,
  ResponseFlag,
  subscriptionProblem,
  SUPPORTED_PROTOCOL_VERSIONS,
  type WaitFrame,
} from '@wsrelay/protocol';
import type WebSocket from 'ws';
import { type ConnectionIdentity, RelayAuthService, TokenRefusal } from '../auth/relay-auth.service.js';
import type { ClusterMessageType, ClusterNode, Msg } from '../cluster/cluster-protocol.js';
import { ClusterMessageType as Cmt } from '../cluster/cluster-protocol.js';
import { claimBeats, type ClusterListener, type ClusterStatus, RelayCluster } from '../cluster/relay-cluster.js';
import { nodeKey, RemoteNode, type RemoteRelay } from '../cluster/remote.js';
import type { ResolvedRelayOptions } from '../interfaces/relay-options.interface.js';
import { RELAY_OPTIONS } from '../relay.constants.js';
import { attachSession, type PendingRequest, type PendingWait, Session, sessionOf } from '../session.js';
import { EventAcks, eventFrame } from './event-acks.js';
import { type Routable, target, World } from './world.js';

const MAX_RID = 0xffff_ffff;
/** Longest delay setTimeout takes (about 24.8 days). */
const MAX_TIMER_MS = 0x7fff_ffff;
/** How long past a forwarded request's deadline its provider's relay waits for the caller's relay to end it. */
const FORWARDED_DEADLINE_GRACE_MS = 2000;
/** An error reply is skipped while the socket already has this much unsent (a flooder that does not read). */
const ERROR_REPLY_BUDGET = 1024 * 1024;
/** Longest ERROR message the relay sends, in UTF-8 bytes (well under every node's header string bound). */
const MAX_ERROR_MESSAGE_BYTES = 1024;

/** A relay's health at a glance (`GET /status` of `createRelayApp`). */
export interface RelayStatus {
  relayId: string;
  /** Open WebSocket connections. */
  connections: number;
  /** Connections that completed HELLO. */
  nodes: number;
  /** Requests in flight through this relay. */
  inFlight: number;
  /** This process's memory. */
  memory: { rssBytes: number; heapUsedBytes: number };
  cluster: ClusterStatus;
}

/** Who holds (or recently held) a node id, for binding node ids to token subjects. */
interface NodeReservation {
  subject: string;
  /** Infinity while the connection lives. */
  until: number;
  /** The local session it is held for (none for a node of another relay). */
  holder?: Session;
}

/**
 * The relay's routing state: who is connected, who serves which pattern, who
 * subscribes to what, and every request in flight. Frames arrive already
 * decoded and validated; payloads are forwarded as the bytes that came in.
 */
@Injectable()
export class RelayRouter implements OnModuleDestroy, ClusterListener {
  private readonly logger = new Logger(RelayRouter.name);
  private readonly codec: FrameCodec;
  private readonly sessions = new Set<Session>();
  private readonly worlds = new Map<string, World>();
  private readonly reservations = new Map<string, NodeReservation>();
  private heartbeat: NodeJS.Timeout | undefined;
  private lastRid = 0;
  /** Responses and cancels that named no request routed to their sender. */
  droppedFrames = 0;
  private readonly acks: EventAcks;
  /** Set while draining for shutdown: resolves the drain once nothing is in flight. */
  private drained: (() => void) | undefined;
  private drainCheck = false;
  /** Until when (epoch ms) a request nothing serves yet is held rather than failed: the startup grace. */
  private graceUntil = 0;

  constructor(
    @Inject(RELAY_OPTIONS) private readonly options: ResolvedRelayOptions,
    private readonly auth: RelayAuthService,
    private readonly cluster: RelayCluster,
  ) {
    this.codec = new FrameCodec({ maxBinBytes: options.maxPayloadBytes * 2 });
    this.acks = new EventAcks(this.codec, cluster, {
      attemptTimeoutMs: options.eventAckTimeoutMs,
      maxAttempts: options.maxEventAttempts,
      maxRetainedBytes: options.maxBufferedBytes,
      onSettled: () => this.checkDrained(),
    });
  }

  get connectionCount(): number {
    return this.sessions.size;
  }

  /** Starts the heartbeat and joins the cluster (called once the gateway is up). */
  start(): void {
    this.graceUntil = Date.now() + this.options.startupGraceMs;
    this.startHeartbeat();
    this.cluster.start(this).catch(err => this.logger.error(`The cluster backplane failed to start: ${(err as Error).message}`));
  }

  private startHeartbeat(): void {
    clearInterval(this.heartbeat);
    // Twice per interval, so that a silent node is found within two intervals (see beat()).
    this.heartbeat = setInterval(() => this.beat(), this.options.heartbeatIntervalMs / 2);
  }

  /**
   * Shutdown (SIGTERM, `app.close()`) drains: new connections are refused,
   * every node is told to move (GOAWAY) and leaves routing here and in the
   * cluster, what is in flight completes (up to `drainTimeoutMs`), then every
   * connection closes with 1001.
   */
  async onModuleDestroy(): Promise<void> {
    await this.drainAll();
    clearInterval(this.heartbeat);
    // Before the cluster stops: what forgetting the sessions tells other relays must still go out.
    const sessions = [...this.sessions];
    for (const session of sessions) this.forget(session, false);
    await this.cluster.stop();
    for (const session of sessions) if (session.isOpen) session.socket.close(CloseCode.GOING_AWAY, RelayErrorMessages.goingAway());
  }

  /** Whether the relay takes new connections (not while it drains for shutdown). */
  get accepting(): boolean {
    return this.drained === undefined;
  }

  private async drainAll(): Promise<void> {
    if (this.drained !== undefined) return;
    const drainMs = this.options.drainTimeoutMs;
    const done = new Promise<void>(resolve => (this.drained = resolve));
    const goAway = this.codec.encode({ type: FrameType.GoAway, reason: RelayErrorMessages.goingAway(), drainMs });
    for (const session of this.sessions) {
      if (session.routed) {
        this.leaveRouting(session, true);
        // A request that crosses the GOAWAY (sent before its caller read it) may still go to it.
        if (session.patterns.length > 0) session.world.standby.add(session);
      }
      session.send(goAway);
      // Requests held in the startup grace: no provider will say HELLO here any more.
      for (const wait of [...session.waits.values()]) {
        if (wait.request === undefined) continue;
        this.removeWait(wait);
        const message = RelayErrorMessages.relayUnavailable(RelayErrorMessages.goingAway());
        this.sendError(session, wait.id, RelayErrorCode.RELAY_UNAVAILABLE, message);
      }
    }
    if (this.inFlightCount() === 0 || drainMs === 0) return;
    this.logger.log(`Draining: ${this.inFlightCount()} request(s) in flight, waiting up to ${drainMs} ms`);
    const timer = setTimeout(() => this.drained?.(), drainMs);
    await done;
    clearTimeout(timer);
  }

  /** While draining: resolves the drain once nothing is in flight (checked once per turn of the event loop). */
  private checkDrained(): void {
    if (this.drained === undefined || this.drainCheck) return;
    this.drainCheck = true;
    setImmediate(() => {
      this.drainCheck = false;
      if (this.inFlightCount() === 0) this.drained?.();
    });
  }

  /**
   * Requests in flight through this relay (each counted once, at its
   * provider's end here or its caller's), and copies of handler-acked events.
   */
  private inFlightCount(): number {
    let n = this.acks.size + this.cluster.forwardedCount;
    for (const session of this.sessions) n += session.inbound.size;
    return n;
  }

  /** What the relay's status endpoint reports: counts and cluster membership, no node ids. */
  status(): RelayStatus {
    let nodes = 0;
    for (const session of this.sessions) if (session.established) nodes++;
    const m = process.memoryUsage();
    return {
      relayId: this.options.relayId,
      connections: this.sessions.size,
      nodes,
      inFlight: this.inFlightCount(),
      memory: { rssBytes: m.rss, heapUsedBytes: m.heapUsed },
      cluster: this.cluster.status(),
    };
  }

  /** Open connections of one tenant ('' without tenants). */
  tenantConnections(tenant: string): number {
    return this.worlds.get(tenant)?.sessions ?? 0;
  }

  /** A socket opened with the identity its upgrade established: it has `handshakeTimeoutMs` to say HELLO. */
  accept(socket: WebSocket, identity: ConnectionIdentity): Session {
    const world = this.world(identity.tenant);
    world.sessions++;
    const session = new Session(socket, identity, world, this.options.maxBufferedBytes / 16, this.options.maxBufferedBytes);
    attachSession(socket, session);
    this.sessions.add(session);
    // The TOKEN_EXPIRING warning waits for HELLO; the close at expiry does not.
    if (identity.expiresAt !== null) this.at(session, identity.expiresAt, () => this.expireToken(session));
    socket.on('pong', markHeard);
    socket.on('ping', markHeard);
    session.handshakeTimer = setTimeout(() => {
      if (!session.established) {
        socket.close(CloseCode.HANDSHAKE_TIMEOUT, `no HELLO within ${this.options.handshakeTimeoutMs} ms`);
      }
    }, this.options.handshakeTimeoutMs);
    return session;
  }

  /** A socket closed: its node goes offline and everything it had in flight is settled. */
  drop(socket: WebSocket): void {
    const session = sessionOf(socket);
    if (session !== undefined && this.sessions.has(session)) this.forget(session, true);
  }

  hello(session: Session, frame: HelloFrame): void {
    if (session.established) {
      throw new RelayError(RelayErrorCode.BAD_FRAME, RelayErrorMessages.badFrame(RelayErrorMessages.helloTwice()));
    }
    if (!this.accepting) {
      // It opened before the drain and said HELLO after: it must go elsewhere, not join routing here.
      this.sendError(session, 0, RelayErrorCode.RELAY_UNAVAILABLE, RelayErrorMessages.relayUnavailable(RelayErrorMessages.goingAway()));
      session.socket.close(CloseCode.GOING_AWAY, RelayErrorMessages.goingAway());
      return;
    }
    const version = Math.max(...frame.versions.filter(v => SUPPORTED_PROTOCOL_VERSIONS.includes(v)));
    if (!Number.isFinite(version)) {
      const message = RelayErrorMessages.protocolMismatch(frame.versions, SUPPORTED_PROTOCOL_VERSIONS);
      this.sendError(session, 0, RelayErrorCode.PROTOCOL_MISMATCH, message);
      session.socket.close(CloseCode.PROTOCOL_MISMATCH, truncateReason(message));
      return;
    }
    const world = session.world;
    const owner = this.ownerOf(world, frame.nodeId);
    if (world.nodes.has(frame.nodeId) || (owner !== undefined && owner !== session.identity.subject)) {
      const message = world.nodes.has(frame.nodeId)
        ? RelayErrorMessages.nodeIdConflict(frame.nodeId)
        : RelayErrorMessages.nodeIdOwned(frame.nodeId);
      this.sendError(session, 0, RelayErrorCode.NODE_ID_CONFLICT, message);
      session.socket.close(CloseCode.NODE_ID_CONFLICT, truncateReason(message));
      return;
    }
    const problems = frame.events.map(subscriptionProblem).filter(p => p !== null);
    if (problems.length > 0) {
      throw new RelayError(RelayErrorCode.BAD_FRAME, RelayErrorMessages.badFrame(listed(problems)));
    }
    clearTimeout(session.handshakeTimer);
    session.nodeId = frame.nodeId;
    session.service = frame.service;
    session.serves = new Set(frame.patterns);
    session.patterns = [...session.serves];
    session.events = [...new Set(frame.events)];
    session.queue = frame.queue;
    session.since = Date.now();
    world.nodes.set(frame.nodeId, session);
    world.providers.add(session);
    world.subscriptions.add(session);
    this.cluster.nodeUp(clusterNode(session));
    if (session.identity.subject !== null) {
      this.reservations.set(nodeKey(world.tenant, frame.nodeId), { subject: session.identity.subject, until: Infinity, holder: session });
    }
    session.send(
      this.codec.encode({
        type: FrameType.Welcome,
        version,
        relayId: this.options.relayId,
        sessionId: session.sessionId,
        nodeId: frame.nodeId,
        maxPayloadBytes: this.options.maxPayloadBytes,
        heartbeatIntervalMs: this.options.heartbeatIntervalMs,
      }),
    );
    for (const pattern of session.patterns) this.releaseWaits(world, pattern);
    this.scheduleExpiry(session);
  }

  request(caller: Session, frame: RequestFrame): void {
    if (caller.outbound.has(frame.id) || (caller.waits.size !== 0 && caller.waits.has(frame.id))) {
      throw new RelayError(RelayErrorCode.BAD_FRAME, RelayErrorMessages.badFrame(RelayErrorMessages.duplicateId(frame.id)));
    }
    this.checkInFlight(caller);
    this.route(caller, frame, 0);
  }

  /** Routes a request to its provider; `expiresAt` is set (epoch ms) once it has been held in the startup grace. */
  private route(caller: Session, frame: RequestFrame, expiresAt: number): void {
    const provider =
      frame.peer === null ? caller.world.providers.pick(frame.pattern) : target(caller.world.nodes, frame.peer, frame.pattern);
    if (provider === undefined) {
      this.unroutable(caller, frame, expiresAt);
      return;
    }
    this.deliver(caller, frame, provider);
  }

  /** Nothing in routing serves the request: held in the startup grace, sent to a provider the drain moved off, or failed. */
  private unroutable(caller: Session, frame: RequestFrame, expiresAt: number): void {
    if (!this.accepting) {
      const provider = caller.world.standby.pick(frame.pattern, frame.peer);
      if (provider !== undefined) this.deliver(caller, frame, provider);
      else {
        const message = RelayErrorMessages.relayUnavailable(RelayErrorMessages.goingAway());
        this.sendError(caller, frame.id, RelayErrorCode.RELAY_UNAVAILABLE, message);
      }
      return;
    }
    if (Date.now() < this.graceUntil) {
      this.hold(caller, frame, expiresAt || Date.now() + frame.timeoutMs);
      return;
    }
    const message = RelayErrorMessages.microserviceOffline(frame.pattern, frame.peer);
    this.sendError(caller, frame.id, RelayErrorCode.MICROSERVICE_OFFLINE, message);
  }

  /** Sends a routed request to its provider, here or on another relay; the deadline is kept here. */
  private deliver(caller: Session, frame: RequestFrame, provider: Routable): void {
    if (provider instanceof RemoteNode) {
      this.forward(caller, frame, provider);
      return;
    }
    const pending = this.book(caller, frame.id, provider, frame.pattern, frame.timeoutMs, frame.timeoutMs);
    this.sendRequest(pending, frame, caller.nodeId ?? null, caller.claims);
  }

  /** Books a request on both its ends (the mirror of settle()); at `timerMs` it expires. */
  private book(
    caller: Session | RemoteRelay,
    callerRequestId: number,
    provider: Session | RemoteNode,
    pattern: string,
    timeoutMs: number,
    timerMs: number,
  ): PendingRequest {
    const providerBooks = provider instanceof Session ? provider.inbound : provider.relay.outbound;
    const rid = this.nextRid(providerBooks);
    const pending: PendingRequest = { rid, callerRequestId, caller, provider, pattern, timeoutMs, timer: undefined };
    (caller instanceof Session ? caller.outbound : caller.inbound).set(callerRequestId, pending);
    providerBooks.set(pending.rid, pending);
    pending.timer = setTimeout(() => this.expire(pending), timerMs);
    return pending;
  }

  /** The REQUEST to a provider on this relay, under the relay's id for it. */
  private sendRequest(
    pending: PendingRequest,
    r: { pattern: string; payload: Uint8Array; timeoutMs: number; ext: Uint8Array | null },
    peer: string | null,
    claims: Uint8Array | null,
  ): void {
    const { pattern, payload, timeoutMs, ext } = r;
    (pending.provider as Session).send(
      this.codec.encode({ type: FrameType.Request, id: pending.rid, pattern, payload, timeoutMs, peer, ext, claims }),
    );
  }

  /** A request for a node on another relay: it goes there over the backplane; the deadline is kept here. */
  private forward(caller: Session, frame: RequestFrame, provider: RemoteNode): void {
    const relay = provider.relay;
    const pending = this.book(caller, frame.id, provider, frame.pattern, frame.timeoutMs, frame.timeoutMs);
    const sent = this.cluster.send(relay, {
      type: Cmt.Request,
      fwdId: pending.rid,
      tenant: caller.world.tenant,
      nodeId: provider.nodeId,
      pattern: frame.pattern,
      payload: frame.payload,
      timeoutMs: frame.timeoutMs,
      callerNodeId: caller.nodeId ?? null,
      ext: frame.ext,
      claims: caller.claims,
    });
    if (!sent) this.fail(pending, RelayErrorCode.PROVIDER_DISCONNECTED, RelayErrorMessages.providerDisconnected(frame.pattern));
  }

  response(provider: Session, frame: ResponseFrame): void {
    // Only the session a request was routed to can answer it.
    const pending = provider.inbound.get(frame.id);
    if (pending === undefined) {
      this.droppedFrames++;
      return;
    }
    this.answer(pending, frame.flags, frame.payload);
  }

  /** A value, completion or error from a request's provider, on to its caller (here or on another relay). */
  private answer(pending: PendingRequest, flags: number, payload: Uint8Array | null): void {
    if (flags & (ResponseFlag.DONE | ResponseFlag.ERROR)) this.settle(pending);
    const caller = pending.caller;
    const id = pending.callerRequestId;
    if (caller instanceof Session) caller.send(this.codec.encode({ type: FrameType.Response, id, flags, payload }));
    else this.cluster.send(caller, { type: Cmt.Response, fwdId: id, flags, payload });
  }

  cancel(caller: Session, frame: CancelFrame): void {
    const pending = caller.outbound.get(frame.id);
    if (pending !== undefined) {
      this.abort(pending);
      return;
    }
    const wait = caller.waits.get(frame.id);
    if (wait !== undefined) {
      this.removeWait(wait);
      return;
    }
    this.droppedFrames++;
  }

  /**
   * Fans an event out; returns how many nodes it was delivered to (on this
   * relay and, through the backplane, on others), or undefined when the
   * emitter asked for handler acks: the ACK (or HANDLER_FAILED) comes once
   * every handler has answered.
   */
  publish(emitter: Session, frame: EventFrame): number | undefined {
    const handlers = frame.flags !== undefined && (frame.flags & EventFlag.ACK_HANDLERS) !== 0 && frame.id !== 0;
    if (handlers) {
      if (emitter.hasPendingEvents && emitter.pendingEvents.has(frame.id)) {
        throw new RelayError(RelayErrorCode.BAD_FRAME, RelayErrorMessages.badFrame(RelayErrorMessages.duplicateId(frame.id)));
      }
      this.checkInFlight(emitter);
    }
    let recipients: Routable[];
    const world = emitter.world;
    if (frame.peer === null) {
      recipients = world.subscriptions.recipients(frame.pattern);
    } else {
      const target = world.nodes.get(frame.peer);
      recipients = target !== undefined && world.subscriptions.subscribes(target, frame.pattern) ? [target] : [];
    }
    if (recipients.length === 0) return 0;
    if (handlers) {
      const copies = this.acks.start(
        emitter,
        frame,
        recipients,
        frame.timeoutMs ?? this.options.eventAckTimeoutMs * this.options.maxEventAttempts,
      );
      return copies === 0 ? 0 : undefined;
    }
    let bytes: Uint8Array | undefined;
    let remote: Map<RemoteRelay, string[]> | undefined;
    let delivered = 0;
    for (const node of recipients) {
      if (!node.isOpen) continue;
      if (node instanceof RemoteNode) {
        remote ??= new Map();
        const targets = remote.get(node.relay);
        if (targets === undefined) remote.set(node.relay, [node.nodeId]);
        else targets.push(node.nodeId);
        continue;
      }
      // One encoding for every local recipient.
      bytes ??= this.codec.encode(eventFrame(frame, frame.id, emitter.nodeId ?? null, emitter.claims));
      node.send(bytes);
      delivered++;
    }
    if (remote !== undefined) {
      for (const [relay, targets] of remote) {
        const sent = this.cluster.send(relay, {
          type: Cmt.Event,
          tenant: world.tenant,
          id: frame.id,
          pattern: frame.pattern,
          payload: frame.payload,
          emitterNodeId: emitter.nodeId ?? null,
          ext: frame.ext,
          claims: emitter.claims,
          targets,
        });
        if (sent) delivered += targets.length;
      }
    }
    return delivered;
  }

  /**
   * DRAIN: the node is shutting down. It leaves routing at once (no new
   * request, event or WAIT answer goes to it, its node id is free again),
   * what it has in flight completes, and the relay ACKs with how many
   * requests that is. Other relays unroute it without failing its requests.
   */
  drain(session: Session, frame: DrainFrame): void {
    // Moved off by the relay's own drain: it is leaving itself now, so not even a request crossing the GOAWAY goes to it.
    session.world.standby.remove(session);
    if (session.routed) {
      this.leaveRouting(session, true);
      this.releaseReservation(session);
    }
    session.send(this.codec.encode({ type: FrameType.Ack, id: frame.id, recipients: session.inbound.size }));
  }

  /** HANDLED: a node finished a copy of an event with handler acks. */
  handled(session: Session, frame: HandledFrame): void {
    if (!this.acks.handled(session, frame.id, frame.error)) this.droppedFrames++;
  }

  /** ACKs an event (called by the gateway's ack interceptor). */
  ack(session: Session, id: number, recipients: number): void {
    if (id !== 0) session.send(this.codec.encode({ type: FrameType.Ack, id, recipients }));
  }

  wait(session: Session, frame: WaitFrame): void {
    if (session.waits.has(frame.id)) {
      throw new RelayError(RelayErrorCode.BAD_FRAME, RelayErrorMessages.badFrame(RelayErrorMessages.duplicateId(frame.id)));
    }
    this.checkInFlight(session);
    const world = session.world;
    const online = world.providers.count(frame.pattern);
    if (online > 0) {
      session.send(this.codec.encode({ type: FrameType.Ack, id: frame.id, recipients: online }));
      return;
    }
    this.addWait({ id: frame.id, session, pattern: frame.pattern, timer: undefined }, frame.timeoutMs, RelayErrorCode.TIMEOUT, () =>
      RelayErrorMessages.waitTimeout(frame.pattern, frame.timeoutMs),
    );
  }

  /**
   * In the startup grace, a request nothing serves yet waits for a provider
   * (releaseWaits routes it) until the grace or its own deadline ends.
   */
  private hold(caller: Session, frame: RequestFrame, expiresAt: number): void {
    const bytes = frame.payload.byteLength;
    if (caller.heldRequestBytes + bytes > this.options.maxBufferedBytes) {
      this.sendError(caller, frame.id, RelayErrorCode.RATE_LIMITED, RelayErrorMessages.tooMuchHeld(this.options.maxBufferedBytes));
      return;
    }
    caller.heldRequestBytes += bytes;
    const ms = Math.min(this.graceUntil, expiresAt) - Date.now();
    const wait: PendingWait = { id: frame.id, session: caller, pattern: frame.pattern, timer: undefined, request: { frame, expiresAt } };
    this.addWait(wait, ms, RelayErrorCode.MICROSERVICE_OFFLINE, () => RelayErrorMessages.microserviceOffline(frame.pattern, frame.peer));
  }

  /** Books a wait on its session and its pattern; at `ms` it ends with an error. */
  private addWait(wait: PendingWait, ms: number, code: RelayErrorCode, message: () => string): void {
    wait.timer = setTimeout(() => {
      this.removeWait(wait);
      this.sendError(wait.session, wait.id, code, message());
    }, ms);
    wait.session.waits.set(wait.id, wait);
    const waits = wait.session.world.waits;
    let set = waits.get(wait.pattern);
    if (set === undefined) waits.set(wait.pattern, (set = new Set()));
    set.add(wait);
  }

  discover(session: Session, frame: DiscoverFrame): void {
    const nodes = [...session.world.nodes.values()].map(s => ({
      nodeId: s.nodeId as string,
      service: s.service,
      patterns: s.patterns,
      events: s.events,
      queue: s.queue,
    }));
    session.send(this.codec.encode({ type: FrameType.Nodes, id: frame.id, nodes }));
  }

  pong(session: Session): void {
    session.send(this.codec.encode({ type: FrameType.Pong }));
  }

  /**
   * A fresh token for a live connection (AUTH): verified, same subject and
   * tenant; its permissions apply at once (patterns and subscriptions they
   * no longer allow are withdrawn) and the expiry timer restarts.
   */
  async reauth(session: Session, frame: AuthFrame): Promise<void> {
    let identity: ConnectionIdentity;
    try {
      identity = await this.auth.refresh(session.identity, new TextDecoder().decode(frame.token));
    } catch (err) {
      if (!(err instanceof TokenRefusal)) throw err;
      this.sendError(session, 0, RelayErrorCode.UNAUTHORIZED, err.message);
      return;
    }
    if (!this.sessions.has(session)) return;
    session.identity = identity;
    session.claims = identity.encodedClaims;
    // The guards judged earlier frames by the old token: they judge again.
    session.memo.clear();
    if (session.established) this.withdrawForbidden(session);
    this.scheduleExpiry(session);
    session.send(this.codec.encode({ type: FrameType.Authorized, expiresAt: identity.expiresAt ?? 0 }));
  }

  /** Answers a frame the relay refused; closes a connection that keeps sending bad frames. */
  refuse(session: Session | undefined, socket: WebSocket, id: number, err: RelayError): void {
    if (socket.readyState === 1 && socket.bufferedAmount < ERROR_REPLY_BUDGET) {
      socket.send(this.encodeError(id, err.code, err.message));
    }
    if (session === undefined) return;
    if (err.code === RelayErrorCode.BAD_FRAME) {
      if (++session.badFrames >= this.options.maxBadFrames) {
        socket.close(CloseCode.BAD_FRAME, `${session.badFrames} bad frames`);
      }
    } else if (err.code === RelayErrorCode.FORBIDDEN && !session.established) {
      // A refused HELLO: the connection cannot be used as asked.
      socket.close(CloseCode.FORBIDDEN, truncateReason(err.message));
    }
  }

  private checkInFlight(session: Session): void {
    if (session.inFlight >= this.options.maxInFlightPerConnection) {
      throw new RelayError(RelayErrorCode.RATE_LIMITED, RelayErrorMessages.tooManyInFlight(this.options.maxInFlightPerConnection));
    }
  }

  /** The subject a node id is bound to, if any (expired reservations are dropped). */
  private ownerOf(world: World, nodeId: string): string | undefined {
    const key = nodeKey(world.tenant, nodeId);
    const r = this.reservations.get(key);
    if (r === undefined) return undefined;
    if (r.until <= Date.now()) {
      this.reservations.delete(key);
      return undefined;
    }
    return r.subject;
  }

  /** After a token refresh: stops routing to patterns and subscriptions the new permissions deny. */
  private withdrawForbidden(session: Session): void {
    const perms = session.identity.permissions;
    const patterns = session.patterns.filter(p => perms.allows('serve', p));
    const events = session.events.filter(e => perms.allows('subscribe', e));
    if (patterns.length === session.patterns.length && events.length === session.events.length) return;
    const world = session.world;
    // A provider the shutdown drain moved off keeps serving crossing requests, for what it may still serve.
    const standby = world.standby.remove(session);
    world.providers.remove(session);
    world.subscriptions.remove(session);
    this.logger.log(
      `Node ${session.nodeId} refreshed its token; withdrew ${session.patterns.length - patterns.length} pattern(s) and ${
        session.events.length - events.length
      } subscription(s) its new permissions deny.`,
    );
    session.patterns = patterns;
    session.serves = new Set(patterns);
    session.events = events;
    if (standby) world.standby.add(session);
    // Not a node out of routing (it drained, or the relay's drain moved it off): it stays out.
    if (world.nodes.get(session.nodeId as string) !== session) return;
    world.providers.add(session);
    world.subscriptions.add(session);
    this.cluster.nodeUp(clusterNode(session));
  }

  /** TOKEN_EXPIRING `expiryWarningMs` before the token's `exp`, then the close (4401) at `exp`. */
  private scheduleExpiry(session: Session): void {
    clearTimeout(session.expiryTimer);
    session.expiryTimer = undefined;
    const expiresAt = session.identity.expiresAt;
    if (expiresAt === null) return;
    const warnAt = expiresAt - this.auth.expiryWarningMs;
    const warn = () => {
      session.send(this.codec.encode({ type: FrameType.TokenExpiring, expiresAt }));
      this.at(session, expiresAt, () => this.expireToken(session));
    };
    if (warnAt > Date.now()) this.at(session, warnAt, warn);
    else warn();
  }

  private expireToken(session: Session): void {
    session.expiryTimer = undefined;
    session.socket.close(CloseCode.UNAUTHORIZED, RelayErrorMessages.tokenExpired());
  }

  /** Runs `fn` at time `when` (chaining timers past setTimeout's limit). */
  private at(session: Session, when: number, fn: () => void): void {
    const delay = when - Date.now();
    session.expiryTimer =
      delay > MAX_TIMER_MS ? setTimeout(() => this.at(session, when, fn), MAX_TIMER_MS) : setTimeout(fn, Math.max(0, delay));
  }

  private expire(pending: PendingRequest): void {
    pending.timer = undefined;
    this.fail(pending, RelayErrorCode.TIMEOUT, RelayErrorMessages.timeout(pending.pattern, pending.timeoutMs));
    this.cancelAtProvider(pending);
  }

  /** Settles a request and tells its caller why it failed. */
  private fail(pending: PendingRequest, code: RelayErrorCode, message: string): void {
    this.settle(pending);
    const caller = pending.caller;
    if (caller instanceof Session) {
      this.sendError(caller, pending.callerRequestId, code, message);
    } else {
      this.cluster.send(caller, { type: Cmt.Error, fwdId: pending.callerRequestId, code, message });
    }
  }

  /** The caller no longer wants it: out of the books, and its provider is told to stop. */
  private abort(pending: PendingRequest): void {
    this.settle(pending);
    this.cancelAtProvider(pending);
  }

  /** Tells a request's provider (here or on its relay) to stop. */
  private cancelAtProvider(pending: PendingRequest): void {
    const provider = pending.provider;
    if (provider instanceof Session) {
      provider.send(this.codec.encode({ type: FrameType.Cancel, id: pending.rid }));
    } else {
      this.cluster.send(provider.relay, { type: Cmt.Cancel, fwdId: pending.rid });
    }
  }

  /** Removes a request from both ends' books. */
  private settle(pending: PendingRequest): void {
    clearTimeout(pending.timer);
    const { caller, provider } = pending;
    if (caller instanceof Session) caller.outbound.delete(pending.callerRequestId);
    else caller.inbound.delete(pending.callerRequestId);
    if (provider instanceof Session) provider.inbound.delete(pending.rid);
    else provider.relay.outbound.delete(pending.rid);
    this.checkDrained();
  }

  private forget(session: Session, notify: boolean): void {
    this.sessions.delete(session);
    if (session.overBudget) {
      this.logger.warn(
        `Closed ${session.nodeId ?? session.sessionId} as a slow consumer: over ${this.options.maxBufferedBytes} bytes unsent`,
      );
    }
    clearTimeout(session.handshakeTimer);
    clearTimeout(session.expiryTimer);
    const world = session.world;
    if (session.established) this.releaseReservation(session);
    world.standby.remove(session);
    if (session.routed) {
      this.leaveRouting(session, false);
      // Another relay's node with the same id, kept out while this one held it.
      const other = this.cluster.claimant(world.tenant, session.nodeId as string);
      if (other !== undefined) this.remoteNodeUp(other);
    }

    for (const pending of [...session.inbound.values()]) {
      if (notify) this.fail(pending, RelayErrorCode.PROVIDER_DISCONNECTED, RelayErrorMessages.providerDisconnected(pending.pattern));
      else this.settle(pending);
    }
    for (const pending of [...session.outbound.values()]) {
      this.settle(pending);
      if (notify) this.cancelAtProvider(pending);
    }
    for (const wait of [...session.waits.values()]) this.removeWait(wait);
    this.acks.sessionGone(session);
    world.sessions--;
    this.dropWorldIfEmpty(world);
  }

  /** A session's node id stays bound to its subject for `nodeIdReservationMs` from now (it left, lost it, or drained). */
  private releaseReservation(session: Session): void {
    const r = this.reservations.get(nodeKey(session.world.tenant, session.nodeId as string));
    // Only its own: after a DRAIN the id may have been taken by a new session of the same subject.
    if (r !== undefined && r.until === Infinity && r.holder === session) {
      r.until = Date.now() + this.options.nodeIdReservationMs;
      r.holder = undefined;
    }
  }

  /** Takes a node out of its world's routing. */
  private unroute(world: World, node: Routable): void {
    world.nodes.delete(node.nodeId as string);
    world.providers.remove(node);
    world.subscriptions.remove(node);
  }

  /** A routed session leaves routing, here and in the cluster (`graceful`: it drains, what is in flight completes). */
  private leaveRouting(session: Session, graceful: boolean): void {
    this.unroute(session.world, session);
    this.cluster.nodeDown(session.world.tenant, session.nodeId as string, graceful, session.identity.subject);
  }

  private world(tenant: string): World {
    let world = this.worlds.get(tenant);
    if (world === undefined) this.worlds.set(tenant, (world = new World(tenant)));
    return world;
  }

  private dropWorldIfEmpty(world: World): void {
    // Without sessions, what is left in `nodes` are other relays' nodes.
    if (world.sessions === 0 && world.nodes.size === 0 && this.worlds.get(world.tenant) === world) this.worlds.delete(world.tenant);
  }

  // ---- The cluster's side (ClusterListener): nodes and traffic of other relays ----

  remoteHandled(relay: RemoteRelay, m: Msg<ClusterMessageType.Handled>): void {
    this.acks.remoteHandled(relay, m.did, m.code, m.error);
  }

  localNodes(): ClusterNode[] {
    const nodes: ClusterNode[] = [];
    for (const session of this.sessions) {
      if (session.routed) nodes.push(clusterNode(session));
    }
    return nodes;
  }

  /**
   * A node of another relay is online. A node id is held by one node in the
   * cluster: between two claims the older wins (ties by relay instance), so
   * every relay settles a race the same way; a local session that loses is
   * closed with NODE_ID_CONFLICT.
   */
  remoteNodeUp(node: RemoteNode): void {
    const world = this.world(node.info.tenant);
    const held = world.nodes.get(node.nodeId);
    if (held === node) return;
    if (held instanceof Session) {
      if (!claimBeats(node.info, node.relay.instanceId, held, this.cluster.instanceId)) return;
      // Lost: out of routing here, and out of every other relay's presence.
      this.leaveRouting(held, false);
      this.releaseReservation(held);
      const message = RelayErrorMessages.nodeIdConflict(node.nodeId);
      this.sendError(held, 0, RelayErrorCode.NODE_ID_CONFLICT, message);
      held.socket.close(CloseCode.NODE_ID_CONFLICT, truncateReason(message));
    } else if (held instanceof RemoteNode) {
      if (held.relay !== node.relay && !claimBeats(node.info, node.relay.instanceId, held.info, held.relay.instanceId)) return;
      // Not `remoteNodeDown`: it would put the best claimant (this very node) in, and we are about to.
      this.unrouteRemote(world, held, false, 0);
    }
    world.nodes.set(node.nodeId, node);
    world.providers.add(node);
    world.subscriptions.add(node);
    // Its id is bound to its subject here as well, so no other subject takes it over through this relay.
    if (node.info.subject !== null)
      this.reservations.set(nodeKey(world.tenant, node.nodeId), { subject: node.info.subject, until: Infinity });
    for (const pattern of node.patterns) this.releaseWaits(world, pattern);
  }

  /**
   * A node of another relay went offline: requests in flight to it fail with
   * PROVIDER_DISCONNECTED, unless it drained (`graceful`: they complete).
   */
  remoteNodeDown(node: RemoteNode, graceful: boolean, reservedForMs: number): void {
    const world = this.worlds.get(node.info.tenant);
    if (world === undefined || world.nodes.get(node.nodeId) !== node) return;
    this.unrouteRemote(world, node, graceful, reservedForMs);
    // Another relay's claim to the id, kept out while this one held it.
    const other = this.cluster.claimant(node.info.tenant, node.nodeId);
    if (other !== undefined && other !== node) this.remoteNodeUp(other);
    this.dropWorldIfEmpty(world);
  }

  /** Takes a remote node out of routing and settles what was in flight to it (not when it drained). */
  private unrouteRemote(world: World, node: RemoteNode, graceful: boolean, reservedForMs: number): void {
    this.unroute(world, node);
    const key = nodeKey(world.tenant, node.nodeId);
    const r = this.reservations.get(key);
    if (r !== undefined && r.until === Infinity && r.subject === node.info.subject) {
      if (reservedForMs > 0) r.until = Date.now() + reservedForMs;
      else this.reservations.delete(key);
    }
    // A drained node still answers what it has; any other leaves its event copies to the rest of their groups.
    if (!graceful) this.acks.remoteNodeGone(node);
    // A gone relay's requests fail all at once in relayGone.
    if (!graceful && !node.relay.gone) {
      for (const pending of [...node.relay.outbound.values()]) {
        if (pending.provider === node) {
          this.fail(pending, RelayErrorCode.PROVIDER_DISCONNECTED, RelayErrorMessages.providerDisconnected(pending.pattern));
        }
      }
    }
  }

  /** The same claim with other patterns or subscriptions (a token refresh on its relay withdrew some): routing follows; in flight stays. */
  remoteNodeChanged(node: RemoteNode, info: ClusterNode): void {
    const world = this.worlds.get(node.info.tenant);
    const routed = world !== undefined && world.nodes.get(node.nodeId) === node;
    if (routed) {
      world.providers.remove(node);
      world.subscriptions.remove(node);
    }
    node.update(info);
    if (routed) {
      world.providers.add(node);
      world.subscriptions.add(node);
      for (const pattern of node.patterns) this.releaseWaits(world, pattern);
    }
  }

  /** A relay is gone: what it forwarded here is cancelled; what went there has already failed with its nodes. */
  relayGone(relay: RemoteRelay): void {
    this.acks.relayGone(relay);
    for (const pending of [...relay.outbound.values()]) {
      this.fail(pending, RelayErrorCode.PROVIDER_DISCONNECTED, RelayErrorMessages.providerDisconnected(pending.pattern));
    }
    for (const pending of [...relay.inbound.values()]) {
      this.abort(pending);
    }
  }

  /** A request forwarded by another relay, for a node of this one. */
  remoteRequest(relay: RemoteRelay, m: Msg<ClusterMessageType.Request>): void {
    const world = this.worlds.get(m.tenant);
    let provider = world?.nodes.get(m.nodeId);
    const reply = (code: RelayErrorCode, message: string) => this.cluster.send(relay, { type: Cmt.Error, fwdId: m.fwdId, code, message });
    // In the shutdown drain, the relay that forwarded it may not have heard yet that the node moved off.
    if (provider === undefined && world !== undefined && !this.accepting) {
      provider = world.standby.pick(m.pattern, m.nodeId);
      if (provider === undefined) {
        reply(RelayErrorCode.RELAY_UNAVAILABLE, RelayErrorMessages.relayUnavailable(RelayErrorMessages.goingAway()));
        return;
      }
    }
    if (!(provider instanceof Session) || !provider.serves.has(m.pattern) || !provider.isOpen) {
      reply(RelayErrorCode.MICROSERVICE_OFFLINE, RelayErrorMessages.microserviceOffline(m.pattern, m.nodeId));
      return;
    }
    if (relay.inbound.has(m.fwdId)) {
      reply(RelayErrorCode.BAD_FRAME, RelayErrorMessages.badFrame(RelayErrorMessages.duplicateId(m.fwdId)));
      return;
    }
    // The caller's relay keeps the deadline; this timer only cleans up should it never say.
    const timerMs = Math.min(MAX_TIMER_MS, m.timeoutMs + FORWARDED_DEADLINE_GRACE_MS);
    this.sendRequest(this.book(relay, m.fwdId, provider, m.pattern, m.timeoutMs, timerMs), m, m.callerNodeId, m.claims);
  }

  remoteResponse(relay: RemoteRelay, m: Msg<ClusterMessageType.Response>): void {
    const pending = relay.outbound.get(m.fwdId);
    if (pending === undefined) {
      this.droppedFrames++;
      return;
    }
    this.answer(pending, m.flags, m.payload);
  }

  remoteCancel(relay: RemoteRelay, m: Msg<ClusterMessageType.Cancel>): void {
    const pending = relay.inbound.get(m.fwdId);
    if (pending === undefined) return;
    this.abort(pending);
  }

  remoteError(relay: RemoteRelay, m: Msg<ClusterMessageType.Error>): void {
    const pending = relay.outbound.get(m.fwdId);
    if (pending !== undefined) this.fail(pending, m.code as RelayErrorCode, m.message);
  }

  remoteEventCopies(relay: RemoteRelay, m: Msg<ClusterMessageType.EventCopies>): void {
    const frame = (id: number, attempt: number) => this.codec.encode(eventFrame(m, id, m.emitterNodeId, m.claims, attempt));
    this.acks.relay(relay, this.worlds.get(m.tenant), m.pattern, m.copies, frame);
  }

  remoteEvent(relay: RemoteRelay, m: Msg<ClusterMessageType.Event>): void {
    const world = this.worlds.get(m.tenant);
    if (world === undefined) return;
    let bytes: Uint8Array | undefined;
    for (const nodeId of m.targets) {
      const node = world.nodes.get(nodeId);
      // The emitter's relay chose by what it knew: the id may have changed hands, or the subscription gone, since.
      if (!(node instanceof Session) || !node.isOpen || !world.subscriptions.subscribes(node, m.pattern)) continue;
      bytes ??= this.codec.encode(eventFrame(m, m.id, m.emitterNodeId, m.claims));
      node.send(bytes);
    }
  }

  private releaseWaits(world: World, pattern: string): void {
    const set = world.waits.get(pattern);
    if (set === undefined) return;
    const online = world.providers.count(pattern);
    for (const wait of [...set]) {
      const held = wait.request;
      if (held === undefined) {
        this.removeWait(wait);
        wait.session.send(this.codec.encode({ type: FrameType.Ack, id: wait.id, recipients: online }));
        continue;
      }
      // A call for another node waits on, as it is.
      if (held.frame.peer !== null && target(world.nodes, held.frame.peer, pattern) === undefined) continue;
      this.removeWait(wait);
      const caller = wait.session;
      // Its token may have been refreshed meanwhile: the call must still be permitted.
      if (!caller.identity.permissions.allows('call', pattern)) {
        this.sendError(caller, wait.id, RelayErrorCode.FORBIDDEN, RelayErrorMessages.forbidden('call', pattern));
        continue;
      }
      // What is left of its deadline goes to the provider.
      const timeoutMs = Math.max(1, Math.ceil(held.expiresAt - Date.now()));
      this.route(caller, timeoutMs === held.frame.timeoutMs ? held.frame : { ...held.frame, timeoutMs }, held.expiresAt);
    }
  }

  private removeWait(wait: PendingWait): void {
    clearTimeout(wait.timer);
    if (wait.session.waits.get(wait.id) === wait) {
      wait.session.waits.delete(wait.id);
      if (wait.request !== undefined) wait.session.heldRequestBytes -= wait.request.frame.payload.byteLength;
    }
    const waits = wait.session.world.waits;
    const set = waits.get(wait.pattern);
    set?.delete(wait);
    if (set?.size === 0) waits.delete(wait.pattern);
  }

  /**
   * Runs every half interval. Any frame, ping or pong from a node proves it
   * alive, and nodes ping every interval themselves, so the relay pings only
   * a node it has not heard from for a whole interval (one that does not
   * ping: a browser, a raw client) and drops one silent for one and a half:
   * a node that froze right after its last frame is gone within two
   * intervals, and a pinging node costs one ping and one pong per interval.
   */
  private beat(): void {
    const now = Date.now();
    for (const [key, r] of this.reservations) if (r.until <= now) this.reservations.delete(key);
    for (const session of this.sessions) {
      if (session.heard) {
        session.heard = false;
        session.silentBeats = 0;
        continue;
      }
      const silent = ++session.silentBeats;
      if (silent >= 3) {
        this.logger.warn(`Node ${session.nodeId ?? session.sessionId} missed its heartbeat; disconnecting it.`);
        session.socket.terminate();
      } else if (silent === 2 && session.isOpen) {
        session.socket.ping();
      }
    }
  }

  private sendError(session: Session, id: number, code: RelayErrorCode, message: string): void {
    session.send(this.encodeError(id, code, message));
  }

  private encodeError(id: number, code: string, message: string): Uint8Array {
    // Messages quote peer input only in bounded form; this is the backstop
    // that keeps an ERROR decodable by every node whatever a message says.
    const frame: Frame = { type: FrameType.Error, id, code, message: truncateUtf8(message, MAX_ERROR_MESSAGE_BYTES) };
    return this.codec.encode(frame);
  }

  /** A relay id not in use in `books` (ids wrap; a long-lived request must not be shadowed). */
  private nextRid(books: Map<number, PendingRequest>): number {
    do {
      this.lastRid = this.lastRid >= MAX_RID ? 1 : this.lastRid + 1;
    } while (books.has(this.lastRid));
    return this.lastRid;
  }
}

/** A session as presence announces it to the other relays. */
function clusterNode(s: Session): ClusterNode {
  return {
    tenant: s.world.tenant,
    nodeId: s.nodeId as string,
    service: s.service,
    patterns: s.patterns,
    events: s.events,
    queue: s.queue,
    subject: s.identity.subject,
    since: s.since,
  };
}

/** A ping or pong listener shared by every socket (`this` is the socket). */
function markHeard(this: WebSocket): void {
  const session = sessionOf(this);
  if (session !== undefined) session.heard = true;
}

/** WebSocket close reasons are limited to 123 bytes of UTF-8. */
function truncateReason(reason: string): string {
  return truncateUtf8(reason, 123);
}

/** `text` cut (at a character boundary, marked with "...") to at most `maxBytes` of UTF-8. */
function truncateUtf8(text: string, maxBytes: number): string {
  if (text.length * 3 <= maxBytes || Buffer.byteLength(text) <= maxBytes) return text;
  const buf = new Uint8Array(maxBytes - 3);
  const { read } = new TextEncoder().encodeInto(text, buf);
  return `${text.slice(0, read)}...`;
}
