import { Inject, Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import {
  CloseCode,
  type CancelFrame,
  type DiscoverFrame,
  type EventFrame,
  type Frame,
  FrameCodec,
  FrameType,
  type HelloFrame,
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
import type { ResolvedRelayOptions } from '../interfaces/relay-options.interface.js';
import { RELAY_OPTIONS } from '../relay.constants.js';
import { attachSession, type PendingRequest, type PendingWait, Session, sessionOf } from '../session.js';
import { ProviderTable } from './provider-table.js';
import { SubscriptionIndex } from './subscription-index.js';

const MAX_RID = 0xffff_ffff;

/**
 * The relay's routing state: who is connected, who serves which pattern, who
 * subscribes to what, and every request in flight. Frames arrive already
 * decoded and validated; payloads are forwarded as the bytes that came in.
 */
@Injectable()
export class RelayRouter implements OnModuleDestroy {
  private readonly logger = new Logger(RelayRouter.name);
  private readonly codec: FrameCodec;
  private readonly sessions = new Set<Session>();
  private readonly nodes = new Map<string, Session>();
  private readonly providers = new ProviderTable();
  private readonly subscriptions = new SubscriptionIndex();
  private readonly waits = new Map<string, Set<PendingWait>>();
  private heartbeat: NodeJS.Timeout | undefined;
  private lastRid = 0;
  /** Responses and cancels that named no request routed to their sender. */
  droppedFrames = 0;

  constructor(@Inject(RELAY_OPTIONS) private readonly options: ResolvedRelayOptions) {
    this.codec = new FrameCodec({ maxBinBytes: options.maxPayloadBytes * 2 });
  }

  get connectionCount(): number {
    return this.sessions.size;
  }

  startHeartbeat(): void {
    clearInterval(this.heartbeat);
    this.heartbeat = setInterval(() => this.beat(), this.options.heartbeatIntervalMs);
  }

  onModuleDestroy(): void {
    clearInterval(this.heartbeat);
    for (const session of this.sessions) this.forget(session, false);
  }

  /** A socket opened: it has `handshakeTimeoutMs` to say HELLO. */
  accept(socket: WebSocket): Session {
    const session = new Session(socket);
    attachSession(socket, session);
    this.sessions.add(session);
    socket.on('pong', () => (session.alive = true));
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
    const version = Math.max(...frame.versions.filter(v => SUPPORTED_PROTOCOL_VERSIONS.includes(v)));
    if (!Number.isFinite(version)) {
      const message = RelayErrorMessages.protocolMismatch(frame.versions, SUPPORTED_PROTOCOL_VERSIONS);
      this.sendError(session, 0, RelayErrorCode.PROTOCOL_MISMATCH, message);
      session.socket.close(CloseCode.PROTOCOL_MISMATCH, truncateReason(message));
      return;
    }
    if (this.nodes.has(frame.nodeId)) {
      const message = RelayErrorMessages.nodeIdConflict(frame.nodeId);
      this.sendError(session, 0, RelayErrorCode.NODE_ID_CONFLICT, message);
      session.socket.close(CloseCode.NODE_ID_CONFLICT, truncateReason(message));
      return;
    }
    const problems = frame.events.map(subscriptionProblem).filter(p => p !== null);
    if (problems.length > 0) {
      throw new RelayError(RelayErrorCode.BAD_FRAME, RelayErrorMessages.badFrame(problems.join('; ')));
    }
    clearTimeout(session.handshakeTimer);
    session.nodeId = frame.nodeId;
    session.service = frame.service;
    session.serves = new Set(frame.patterns);
    session.patterns = [...session.serves];
    session.events = [...new Set(frame.events)];
    session.queue = frame.queue;
    this.nodes.set(frame.nodeId, session);
    this.providers.add(session);
    this.subscriptions.add(session);
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
    for (const pattern of session.patterns) this.releaseWaits(pattern);
  }

  request(caller: Session, frame: RequestFrame): void {
    if (caller.outbound.has(frame.id)) {
      throw new RelayError(RelayErrorCode.BAD_FRAME, RelayErrorMessages.badFrame(RelayErrorMessages.duplicateId(frame.id)));
    }
    const provider = frame.peer === null ? this.providers.pick(frame.pattern) : this.target(frame.peer, frame.pattern);
    if (provider === undefined) {
      this.sendError(
        caller,
        frame.id,
        RelayErrorCode.MICROSERVICE_OFFLINE,
        RelayErrorMessages.microserviceOffline(frame.pattern, frame.peer),
      );
      return;
    }
    const pending: PendingRequest = {
      rid: this.nextRid(provider),
      callerRequestId: frame.id,
      caller,
      provider,
      pattern: frame.pattern,
      timeoutMs: frame.timeoutMs,
      timer: undefined,
    };
    caller.outbound.set(frame.id, pending);
    provider.inbound.set(pending.rid, pending);
    pending.timer = setTimeout(() => this.expire(pending), frame.timeoutMs);
    provider.send(
      this.codec.encode({
        type: FrameType.Request,
        id: pending.rid,
        pattern: frame.pattern,
        payload: frame.payload,
        timeoutMs: frame.timeoutMs,
        peer: caller.nodeId ?? null,
        ext: frame.ext,
        claims: caller.claims,
      }),
    );
  }

  response(provider: Session, frame: ResponseFrame): void {
    // Only the session a request was routed to can answer it.
    const pending = provider.inbound.get(frame.id);
    if (pending === undefined) {
      this.droppedFrames++;
      return;
    }
    if (frame.flags & (ResponseFlag.DONE | ResponseFlag.ERROR)) this.settle(pending);
    pending.caller.send(
      this.codec.encode({
        type: FrameType.Response,
        id: pending.callerRequestId,
        flags: frame.flags,
        payload: frame.payload,
      }),
    );
  }

  cancel(caller: Session, frame: CancelFrame): void {
    const pending = caller.outbound.get(frame.id);
    if (pending !== undefined) {
      this.settle(pending);
      pending.provider.send(this.codec.encode({ type: FrameType.Cancel, id: pending.rid }));
      return;
    }
    const wait = caller.waits.get(frame.id);
    if (wait !== undefined) {
      this.removeWait(wait);
      return;
    }
    this.droppedFrames++;
  }

  /** Fans an event out; returns how many sessions it was delivered to. */
  publish(emitter: Session, frame: EventFrame): number {
    let recipients: Session[];
    if (frame.peer === null) {
      recipients = this.subscriptions.recipients(frame.pattern);
    } else {
      const target = this.nodes.get(frame.peer);
      recipients = target !== undefined && this.subscriptions.subscribes(target, frame.pattern) ? [target] : [];
    }
    if (recipients.length === 0) return 0;
    // One encoding for every recipient.
    const bytes = this.codec.encode({
      type: FrameType.Event,
      id: frame.id,
      pattern: frame.pattern,
      payload: frame.payload,
      peer: emitter.nodeId ?? null,
      ext: frame.ext,
      claims: emitter.claims,
    });
    let delivered = 0;
    for (const session of recipients) {
      if (session.isOpen) {
        session.send(bytes);
        delivered++;
      }
    }
    return delivered;
  }

  /** ACKs an event (called by the gateway's ack interceptor). */
  ack(session: Session, id: number, recipients: number): void {
    if (id !== 0) session.send(this.codec.encode({ type: FrameType.Ack, id, recipients }));
  }

  wait(session: Session, frame: WaitFrame): void {
    if (session.waits.has(frame.id)) {
      throw new RelayError(RelayErrorCode.BAD_FRAME, RelayErrorMessages.badFrame(RelayErrorMessages.duplicateId(frame.id)));
    }
    const online = this.providers.count(frame.pattern);
    if (online > 0) {
      session.send(this.codec.encode({ type: FrameType.Ack, id: frame.id, recipients: online }));
      return;
    }
    const wait: PendingWait = { id: frame.id, session, pattern: frame.pattern, timer: undefined };
    wait.timer = setTimeout(() => {
      this.removeWait(wait);
      this.sendError(
        session,
        frame.id,
        RelayErrorCode.TIMEOUT,
        RelayErrorMessages.waitTimeout(frame.pattern, frame.timeoutMs),
      );
    }, frame.timeoutMs);
    session.waits.set(frame.id, wait);
    let set = this.waits.get(frame.pattern);
    if (set === undefined) this.waits.set(frame.pattern, (set = new Set()));
    set.add(wait);
  }

  discover(session: Session, frame: DiscoverFrame): void {
    const nodes = [...this.nodes.values()].map(s => ({
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

  /** Answers a frame the relay refused; closes a connection that keeps sending bad frames. */
  refuse(session: Session | undefined, socket: WebSocket, id: number, err: RelayError): void {
    const bytes = this.encodeError(id, err.code, err.message);
    if (socket.readyState === 1) socket.send(bytes);
    if (session !== undefined && err.code === RelayErrorCode.BAD_FRAME) {
      if (++session.badFrames >= this.options.maxBadFrames) {
        socket.close(CloseCode.BAD_FRAME, `${session.badFrames} bad frames`);
      }
    }
  }

  private target(nodeId: string, pattern: string): Session | undefined {
    const session = this.nodes.get(nodeId);
    return session !== undefined && session.serves.has(pattern) ? session : undefined;
  }

  private expire(pending: PendingRequest): void {
    pending.timer = undefined;
    this.settle(pending);
    this.sendError(
      pending.caller,
      pending.callerRequestId,
      RelayErrorCode.TIMEOUT,
      RelayErrorMessages.timeout(pending.pattern, pending.timeoutMs),
    );
    pending.provider.send(this.codec.encode({ type: FrameType.Cancel, id: pending.rid }));
  }

  /** Removes a request from both ends' books. */
  private settle(pending: PendingRequest): void {
    clearTimeout(pending.timer);
    pending.caller.outbound.delete(pending.callerRequestId);
    pending.provider.inbound.delete(pending.rid);
  }

  private forget(session: Session, notify: boolean): void {
    this.sessions.delete(session);
    clearTimeout(session.handshakeTimer);
    if (session.established && this.nodes.get(session.nodeId as string) === session) {
      this.nodes.delete(session.nodeId as string);
      this.providers.remove(session);
      this.subscriptions.remove(session);
    }
    for (const pending of [...session.inbound.values()]) {
      this.settle(pending);
      if (notify) {
        this.sendError(
          pending.caller,
          pending.callerRequestId,
          RelayErrorCode.PROVIDER_DISCONNECTED,
          RelayErrorMessages.providerDisconnected(pending.pattern),
        );
      }
    }
    for (const pending of [...session.outbound.values()]) {
      this.settle(pending);
      if (notify) pending.provider.send(this.codec.encode({ type: FrameType.Cancel, id: pending.rid }));
    }
    for (const wait of [...session.waits.values()]) this.removeWait(wait);
  }

  private releaseWaits(pattern: string): void {
    const set = this.waits.get(pattern);
    if (set === undefined) return;
    const online = this.providers.count(pattern);
    for (const wait of [...set]) {
      this.removeWait(wait);
      wait.session.send(this.codec.encode({ type: FrameType.Ack, id: wait.id, recipients: online }));
    }
  }

  private removeWait(wait: PendingWait): void {
    clearTimeout(wait.timer);
    if (wait.session.waits.get(wait.id) === wait) wait.session.waits.delete(wait.id);
    const set = this.waits.get(wait.pattern);
    set?.delete(wait);
    if (set?.size === 0) this.waits.delete(wait.pattern);
  }

  private beat(): void {
    for (const session of this.sessions) {
      if (!session.alive) {
        this.logger.warn(`Node ${session.nodeId ?? session.sessionId} missed its heartbeat; disconnecting it.`);
        session.socket.terminate();
        continue;
      }
      session.alive = false;
      if (session.isOpen) session.socket.ping();
    }
  }

  private sendError(session: Session, id: number, code: RelayErrorCode, message: string): void {
    session.send(this.encodeError(id, code, message));
  }

  private encodeError(id: number, code: string, message: string): Uint8Array {
    const frame: Frame = { type: FrameType.Error, id, code, message };
    return this.codec.encode(frame);
  }

  /** A relay id not in use at `provider` (ids wrap; a long-lived request must not be shadowed). */
  private nextRid(provider: Session): number {
    do {
      this.lastRid = this.lastRid >= MAX_RID ? 1 : this.lastRid + 1;
    } while (provider.inbound.has(this.lastRid));
    return this.lastRid;
  }
}

/** WebSocket close reasons are limited to 123 bytes of UTF-8. */
function truncateReason(reason: string): string {
  if (Buffer.byteLength(reason) <= 123) return reason;
  const buf = new Uint8Array(120);
  const { read } = new TextEncoder().encodeInto(reason, buf);
  return `${reason.slice(0, read)}...`;
}
