import {
  type FrameCodec,
  FrameType,
  RelayError,
  RelayErrorCode,
  RelayErrorMessages,
  MAX_CREDIT,
  type RequestFrame,
  type ResponseFrame,
  type WaitFrame,
  ResponseFlag,
} from '@wsrelay/protocol';
import { ClusterMessageType as Cmt, type Msg } from '../cluster/cluster-protocol.js';
import type { RelayCluster } from '../cluster/relay-cluster.js';
import { RemoteNode, type RemoteRelay } from '../cluster/remote.js';
import { MAX_TIMER_MS } from '../internal/timers.js';
import type { RelayLifecycle } from '../lifecycle/relay-lifecycle.js';
import { outcomeOf } from '../observe/codes.js';
import { type RelayObserver, REQUEST_OUTCOMES, RequestOutcome } from '../observe/relay-observer.js';
import type { RelayTracing } from '../observe/relay-tracing.js';
import { LocalNode } from '../routing/local-node.js';
import type { Membership } from '../routing/membership.js';
import { type Routable, target } from '../routing/routable.js';
import type { World, Worlds } from '../routing/world.js';
import type { InFlightLimit } from '../session/in-flight-limit.js';
import type { Replies } from '../session/replies.js';
import type { PendingRequest, Provider, RequestBook } from './request-book.js';
import type { PendingWait, Waits } from './waits.js';

/** How long past a forwarded request's deadline its provider's relay waits for the caller's relay to end it. */
const FORWARDED_DEADLINE_GRACE_MS = 2000;

/** What a request carries to its provider. */
type Carried = Pick<RequestFrame, 'pattern' | 'payload' | 'timeoutMs' | 'ext' | 'window'>;

/**
 * RPC through the relay: a REQUEST goes to a provider (round-robin, or the
 * node it names), here or on another relay; RESPONSEs go back to its caller;
 * CANCEL and the deadline end it at both ends. The relay keeps each
 * request's deadline; a provider that leaves fails what it had in flight.
 */
export class RequestRouter {
  /** RESPONSEs and CANCELs that named no request routed to their sender. */
  dropped = 0;

  constructor(
    private readonly book: RequestBook,
    private readonly waits: Waits,
    private readonly worlds: Worlds,
    private readonly membership: Membership,
    private readonly cluster: RelayCluster,
    private readonly lifecycle: RelayLifecycle,
    private readonly replies: Replies,
    private readonly limit: InFlightLimit<LocalNode>,
    /** Counts requests of this relay's nodes: routed, and how each ended. */
    private readonly observer?: Pick<RelayObserver, 'requestRouted' | 'requestSettled' | 'requestFailed'>,
    /** Spans of traced calls (with the `tracing` option). */
    private readonly tracing?: RelayTracing,
  ) {
    book.expireWith(pending => this.expire(pending));
  }

  private get codec(): FrameCodec {
    return this.replies.codec;
  }

  request(caller: LocalNode, frame: RequestFrame): void {
    this.admit(caller, frame.id);
    // A window means flow control only from a caller that agreed on it (else it never sends CREDIT).
    if (frame.window !== undefined && !caller.credit) frame.window = undefined;
    this.route(caller, frame, 0);
  }

  /** WAIT: answered at once with how many providers are online, or once one is (TIMEOUT after its timeout). */
  wait(caller: LocalNode, frame: WaitFrame): void {
    this.admit(caller, frame.id);
    this.waits.wait(caller, frame.id, frame.pattern, frame.timeoutMs);
  }

  /**
   * A new request or WAIT of `caller` may start: its id is not in use by
   * another of them (a CANCEL names one), and the caller is within its
   * in-flight limit. Throws BAD_FRAME or RATE_LIMITED otherwise.
   */
  private admit(caller: LocalNode, id: number): void {
    if (this.book.asked(caller, id) !== undefined || this.waits.has(caller, id)) {
      throw new RelayError(RelayErrorCode.BAD_FRAME, RelayErrorMessages.badFrame(RelayErrorMessages.duplicateId(id)));
    }
    this.limit.check(caller);
  }

  response(provider: LocalNode, frame: ResponseFrame): void {
    // Only the node a request was routed to can answer it.
    const pending = this.book.delivered(provider, frame.id);
    if (pending === undefined) {
      this.dropped++;
      return;
    }
    this.answer(pending, frame.flags, frame.payload);
  }

  cancel(caller: LocalNode, id: number): void {
    const pending = this.book.asked(caller, id);
    if (pending !== undefined) this.abort(pending);
    else if (!this.waits.cancel(caller, id)) this.dropped++;
  }

  /** CREDIT: the caller of a flow-controlled request grants its provider `credit` more values. */
  credit(caller: LocalNode, id: number, credit: number): void {
    const pending = this.book.asked(caller, id);
    // A grant crossing the stream's end names a request that is gone: a normal race, nothing to do (not counted as dropped).
    if (pending !== undefined) this.grant(pending, credit);
  }

  /** Providers of `patterns` came online: held requests for them are routed (if still permitted), WAITs answered. */
  providersArrived(world: World, patterns: readonly string[]): void {
    for (const pattern of patterns) this.waits.release(world, pattern, wait => this.routeHeld(wait, pattern));
  }

  /** A request held for a provider that has come: routed, if the caller may still call it (its token may have been refreshed meanwhile). */
  private routeHeld(wait: PendingWait, pattern: string): void {
    const caller = wait.node;
    if (!caller.session.identity.permissions.allows('call', pattern)) {
      this.observer?.requestFailed(RequestOutcome.Forbidden);
      this.replies.error(caller, wait.id, RelayErrorCode.FORBIDDEN, RelayErrorMessages.forbidden('call', pattern));
      return;
    }
    const held = wait.request!;
    this.route(caller, held.frame, held.expiresAt);
  }

  /** How many requests are in flight at a node (a DRAIN's ACK says so). */
  inFlightAt(node: LocalNode): number {
    return this.book.deliveredCount(node);
  }

  /** A node of this relay is gone: what was routed to it fails (`notify`) or settles; what it asked is cancelled at its providers. */
  nodeGone(node: LocalNode, notify: boolean): void {
    for (const pending of this.book.deliveredTo(node)) {
      if (notify) this.fail(pending, RelayErrorCode.PROVIDER_DISCONNECTED, RelayErrorMessages.providerDisconnected(pending.pattern));
      // The relay lets go of every node in its shutdown: callers here are let go of too.
      else this.settle(pending, RequestOutcome.RelayUnavailable);
    }
    for (const pending of this.book.askedBy(node)) {
      this.settle(pending, RequestOutcome.CallerGone);
      if (notify) this.cancelAtProvider(pending);
    }
    this.book.forget(node);
  }

  /** A node of another relay left without draining: requests in flight to it fail (a gone relay's fail in relayGone). */
  providerLost(node: RemoteNode): void {
    if (node.relay.gone) return;
    for (const pending of this.book.deliveredTo(node.relay)) {
      if (pending.provider === node)
        this.fail(pending, RelayErrorCode.PROVIDER_DISCONNECTED, RelayErrorMessages.providerDisconnected(pending.pattern));
    }
  }

  /** A relay is gone: what it forwarded here is cancelled; what went there fails. */
  relayGone(relay: RemoteRelay): void {
    for (const pending of this.book.deliveredTo(relay)) {
      this.fail(pending, RelayErrorCode.PROVIDER_DISCONNECTED, RelayErrorMessages.providerDisconnected(pending.pattern));
    }
    for (const pending of this.book.askedBy(relay)) this.abort(pending);
    this.book.forget(relay);
  }

  /** A request forwarded by another relay, for a node of this one. */
  remoteRequest(relay: RemoteRelay, m: Msg<Cmt.Request>): void {
    const reply = (code: RelayErrorCode, message: string) => this.cluster.send(relay, { type: Cmt.Error, fwdId: m.fwdId, code, message });
    let provider = this.worlds.get(m.tenant)?.nodes.get(m.nodeId);
    // In the shutdown drain, the relay that forwarded it may not have heard yet that the node moved off.
    if (provider === undefined && this.worlds.get(m.tenant) !== undefined && !this.lifecycle.accepting) {
      provider = this.membership.standbyPick(m.tenant, m.pattern, m.nodeId);
      if (provider === undefined) return void reply(RelayErrorCode.RELAY_UNAVAILABLE, unavailable());
    }
    if (!(provider instanceof LocalNode) || !provider.serves.has(m.pattern) || !provider.isOpen) {
      return void reply(RelayErrorCode.MICROSERVICE_OFFLINE, RelayErrorMessages.microserviceOffline(m.pattern, m.nodeId));
    }
    if (this.book.asked(relay, m.fwdId) !== undefined) {
      return void reply(RelayErrorCode.BAD_FRAME, RelayErrorMessages.badFrame(RelayErrorMessages.duplicateId(m.fwdId)));
    }
    // The caller's relay keeps the deadline; this timer only cleans up should it never say.
    const timerMs = Math.min(MAX_TIMER_MS, m.timeoutMs + FORWARDED_DEADLINE_GRACE_MS);
    const pending = this.bookFor(relay, m.fwdId, provider, m.pattern, m.timeoutMs, timerMs);
    if (this.tracing !== undefined) pending.span = this.tracing.route(m.pattern, m.ext, m.callerNodeId, provider.nodeId, relay.relayId);
    this.sendRequest(pending, m, m.callerNodeId, m.claims);
  }

  remoteResponse(relay: RemoteRelay, m: Msg<Cmt.Response>): void {
    const pending = this.book.delivered(relay, m.fwdId);
    if (pending === undefined) this.dropped++;
    else this.answer(pending, m.flags, m.payload);
  }

  remoteCancel(relay: RemoteRelay, m: Msg<Cmt.Cancel>): void {
    const pending = this.book.asked(relay, m.fwdId);
    if (pending !== undefined) this.abort(pending);
  }

  remoteCredit(relay: RemoteRelay, m: Msg<Cmt.Credit>): void {
    const pending = this.book.asked(relay, m.fwdId);
    if (pending !== undefined) this.grant(pending, m.credit);
  }

  remoteError(relay: RemoteRelay, m: Msg<Cmt.Error>): void {
    const pending = this.book.delivered(relay, m.fwdId);
    if (pending !== undefined) this.fail(pending, m.code, m.message);
  }

  /** Routes a request to its provider; `expiresAt` is set (epoch ms) once it has been held in the startup grace. */
  private route(caller: LocalNode, frame: RequestFrame, expiresAt: number): void {
    const world = caller.world;
    const provider = frame.peer === null ? world.providers.pick(frame.pattern) : target(world.nodes, frame.peer, frame.pattern);
    if (provider === undefined) this.unroutable(caller, frame, expiresAt);
    else this.deliver(caller, frame, provider, expiresAt);
  }

  /** Nothing in routing serves the request: sent to a provider the drain moved off, held in the startup grace, or failed. */
  private unroutable(caller: LocalNode, frame: RequestFrame, expiresAt: number): void {
    if (!this.lifecycle.accepting) {
      const provider = this.membership.standbyPick(caller.world.tenant, frame.pattern, frame.peer);
      if (provider !== undefined) {
        this.deliver(caller, frame, provider, expiresAt);
        return;
      }
      this.observer?.requestFailed(RequestOutcome.RelayUnavailable);
      this.replies.error(caller, frame.id, RelayErrorCode.RELAY_UNAVAILABLE, unavailable());
      return;
    }
    if (this.lifecycle.inGrace()) {
      this.waits.hold(caller, frame, expiresAt || Date.now() + frame.timeoutMs, this.lifecycle.graceEndsAt);
      return;
    }
    this.observer?.requestFailed(RequestOutcome.MicroserviceOffline);
    this.replies.error(
      caller,
      frame.id,
      RelayErrorCode.MICROSERVICE_OFFLINE,
      RelayErrorMessages.microserviceOffline(frame.pattern, frame.peer),
    );
  }

  /**
   * Sends a routed request to its provider, here or on another relay; the
   * deadline is kept here. One held in the startup grace (`expiresAt` set)
   * has only what is left of its deadline, and that is what the provider is told.
   */
  private deliver(caller: LocalNode, frame: RequestFrame, provider: Routable, expiresAt: number): void {
    const left = expiresAt === 0 ? frame.timeoutMs : Math.max(1, Math.ceil(expiresAt - Date.now()));
    const pending = this.bookFor(caller, frame.id, provider as Provider, frame.pattern, frame.timeoutMs, left);
    const sent = left === frame.timeoutMs ? frame : { ...frame, timeoutMs: left };
    this.observer?.requestRouted();
    if (this.tracing !== undefined) pending.span = this.tracing.route(frame.pattern, frame.ext, caller.nodeId, provider.nodeId);
    if (provider instanceof RemoteNode) this.forward(pending, caller, sent, provider);
    else this.sendRequest(pending, sent, caller.nodeId, caller.claims);
  }

  private bookFor(caller: LocalNode | RemoteRelay, id: number, provider: Provider, pattern: string, timeoutMs: number, timerMs: number) {
    const party = provider instanceof RemoteNode ? provider.relay : provider;
    return this.book.book(caller, id, provider, party, pattern, timeoutMs, timerMs);
  }

  /**
   * The REQUEST to a provider on this relay, under the relay's id for it. A
   * caller's stream window goes only to a provider that speaks flow control;
   * this relay then holds the provider to it.
   */
  private sendRequest(pending: PendingRequest, r: Carried, peer: string | null, claims: Uint8Array | null): void {
    const { pattern, payload, timeoutMs, ext } = r;
    const provider = pending.provider as LocalNode;
    // 0 (a forwarded request without one) or undefined: no window.
    const window = provider.credit && r.window ? r.window : undefined;
    if (window !== undefined) pending.credit = window;
    provider.ask(
      this.codec.encodeMessage({ type: FrameType.Request, id: pending.rid, pattern, payload, timeoutMs, peer, ext, claims, window }),
    );
  }

  /** More credit for a flow-controlled request: passed on to its provider (here, or through its relay). */
  private grant(pending: PendingRequest, credit: number): void {
    const provider = pending.provider;
    if (provider instanceof LocalNode) {
      // Not flow-controlled here (the provider does not speak it): nobody to tell.
      if (pending.credit < 0) return;
      pending.credit = Math.min(pending.credit + credit, MAX_CREDIT);
      provider.send(this.codec.encode({ type: FrameType.Credit, id: pending.rid, credit }));
    } else {
      this.cluster.send(provider.relay, { type: Cmt.Credit, fwdId: pending.rid, credit });
    }
  }

  /** A request for a node on another relay: it goes there over the backplane. */
  private forward(pending: PendingRequest, caller: LocalNode, frame: RequestFrame, provider: RemoteNode): void {
    const sent = this.cluster.send(provider.relay, {
      type: Cmt.Request,
      fwdId: pending.rid,
      tenant: caller.world.tenant,
      nodeId: provider.nodeId,
      pattern: frame.pattern,
      payload: frame.payload,
      timeoutMs: frame.timeoutMs,
      callerNodeId: caller.nodeId,
      ext: frame.ext,
      claims: caller.claims,
      window: frame.window ?? 0,
    });
    if (!sent) this.fail(pending, RelayErrorCode.PROVIDER_DISCONNECTED, RelayErrorMessages.providerDisconnected(frame.pattern));
  }

  /** A value, completion or error from a request's provider, on to its caller (here or on another relay). */
  private answer(pending: PendingRequest, flags: number, payload: Uint8Array | null): void {
    if (pending.credit >= 0 && payload !== null && (flags & ResponseFlag.ERROR) === 0 && !this.paid(pending)) return;
    if (flags & (ResponseFlag.DONE | ResponseFlag.ERROR))
      this.settle(pending, flags & ResponseFlag.ERROR ? RequestOutcome.Error : RequestOutcome.Ok);
    const { caller, callerRequestId: id } = pending;
    if (caller instanceof LocalNode) caller.send(this.codec.encodeMessage({ type: FrameType.Response, id, flags, payload }));
    else this.cluster.send(caller, { type: Cmt.Response, fwdId: id, flags, payload });
  }

  /**
   * A value of a flow-controlled stream takes one credit. A provider that
   * sends one past its credit has its stream stopped: the caller gets
   * SLOW_CONSUMER, the provider CANCEL; what the relay holds stays bounded.
   */
  private paid(pending: PendingRequest): boolean {
    if (pending.credit > 0) {
      pending.credit--;
      return true;
    }
    this.fail(pending, RelayErrorCode.SLOW_CONSUMER, RelayErrorMessages.creditExceeded(pending.pattern));
    this.cancelAtProvider(pending);
    return false;
  }

  private expire(pending: PendingRequest): void {
    this.fail(pending, RelayErrorCode.TIMEOUT, RelayErrorMessages.timeout(pending.pattern, pending.timeoutMs));
    this.cancelAtProvider(pending);
  }

  /** Settles a request and tells its caller why it failed. */
  private fail(pending: PendingRequest, code: RelayErrorCode | string, message: string): void {
    this.settle(pending, outcomeOf(code));
    const caller = pending.caller;
    if (caller instanceof LocalNode) this.replies.error(caller, pending.callerRequestId, code, message);
    else this.cluster.send(caller, { type: Cmt.Error, fwdId: pending.callerRequestId, code, message });
  }

  /** The caller no longer wants it: out of the books, and its provider is told to stop. */
  private abort(pending: PendingRequest): void {
    this.settle(pending, RequestOutcome.Cancelled);
    this.cancelAtProvider(pending);
  }

  /** Out of the books; a request of one of this relay's nodes is counted as it ends (once). */
  private settle(pending: PendingRequest, outcome: RequestOutcome): void {
    const failure = outcome === RequestOutcome.Ok ? undefined : REQUEST_OUTCOMES[outcome];
    if (this.book.settle(pending, failure) && pending.caller instanceof LocalNode) this.observer?.requestSettled(outcome, pending.routedAt);
  }

  /** Tells a request's provider (here or on its relay) to stop. */
  private cancelAtProvider(pending: PendingRequest): void {
    const provider = pending.provider;
    if (provider instanceof LocalNode) provider.send(this.codec.encode({ type: FrameType.Cancel, id: pending.rid }));
    else this.cluster.send(provider.relay, { type: Cmt.Cancel, fwdId: pending.rid });
  }
}

function unavailable(): string {
  return RelayErrorMessages.relayUnavailable(RelayErrorMessages.goingAway());
}
