import {
  CloseCode,
  FrameType,
  type HelloFrame,
  listed,
  RelayError,
  RelayErrorCode,
  RelayErrorMessages,
  subscriptionProblem,
  SUPPORTED_CAPABILITIES,
  SUPPORTED_PROTOCOL_VERSIONS,
} from '@wsrelay/protocol';
import { closeReason } from '../internal/utf8.js';
import type { RelayLifecycle } from '../lifecycle/relay-lifecycle.js';
import { refusalReasonOf } from '../observe/codes.js';
import type { RelayObserver } from '../observe/relay-observer.js';
import type { RequestRouter } from '../requests/request-router.js';
import type { Membership } from '../routing/membership.js';
import type { Replies } from '../session/replies.js';
import type { Session } from '../session/session.js';
import type { TokenExpiry } from '../session/token-expiry.js';

/** What WELCOME tells a node about the relay. */
export interface HandshakeSettings {
  relayId: string;
  maxPayloadBytes: number;
  heartbeatIntervalMs: number;
  /** How long a new connection has to say HELLO. */
  handshakeTimeoutMs: number;
}

/**
 * HELLO: a connection has `handshakeTimeoutMs` to say who it is; the relay
 * picks a protocol version, checks its node id, and answers WELCOME. The node
 * is then in routing, calls waiting for what it serves go to it, and its
 * token's expiry warning is scheduled.
 */
export class Handshake {
  private readonly deadlines = new Map<Session, NodeJS.Timeout>();

  constructor(
    private readonly membership: Membership,
    private readonly lifecycle: RelayLifecycle,
    private readonly requests: RequestRouter,
    private readonly expiry: TokenExpiry,
    private readonly replies: Replies,
    private readonly settings: HandshakeSettings,
    private readonly observer?: Pick<RelayObserver, 'nodeAnnounced' | 'frameRefused'>,
  ) {}

  /** A new connection: it is closed unless HELLO is accepted in time. */
  expect(session: Session): void {
    const ms = this.settings.handshakeTimeoutMs;
    this.deadlines.set(
      session,
      setTimeout(() => {
        this.deadlines.delete(session);
        session.socket.close(CloseCode.HANDSHAKE_TIMEOUT, `no HELLO within ${ms} ms`);
      }, ms),
    );
  }

  forget(session: Session): void {
    clearTimeout(this.deadlines.get(session));
    this.deadlines.delete(session);
  }

  hello(session: Session, frame: HelloFrame): void {
    if (this.membership.nodeOf(session) !== undefined) {
      throw new RelayError(RelayErrorCode.BAD_FRAME, RelayErrorMessages.badFrame(RelayErrorMessages.helloTwice()));
    }
    if (!this.lifecycle.accepting) {
      // It opened before the drain and said HELLO after: it must go elsewhere, not join routing here.
      const message = RelayErrorMessages.relayUnavailable(RelayErrorMessages.goingAway());
      this.refuse(session, RelayErrorCode.RELAY_UNAVAILABLE, message, CloseCode.GOING_AWAY, RelayErrorMessages.goingAway());
      return;
    }
    const version = Math.max(...frame.versions.filter(v => SUPPORTED_PROTOCOL_VERSIONS.includes(v)));
    if (!Number.isFinite(version)) {
      const message = RelayErrorMessages.protocolMismatch(frame.versions, SUPPORTED_PROTOCOL_VERSIONS);
      this.refuse(session, RelayErrorCode.PROTOCOL_MISMATCH, message, CloseCode.PROTOCOL_MISMATCH);
      return;
    }
    const conflict = this.membership.conflict(session, frame.nodeId);
    if (conflict !== undefined) {
      this.refuse(session, RelayErrorCode.NODE_ID_CONFLICT, conflict, CloseCode.NODE_ID_CONFLICT);
      return;
    }
    const problems = frame.events.map(subscriptionProblem).filter(p => p !== null);
    if (problems.length > 0) throw new RelayError(RelayErrorCode.BAD_FRAME, RelayErrorMessages.badFrame(listed(problems)));
    this.forget(session);
    // The capabilities both speak; only these are used on this connection.
    const caps = frame.caps === undefined ? undefined : [...new Set(frame.caps.filter(c => SUPPORTED_CAPABILITIES.includes(c)))];
    const node = this.membership.join(session, { ...frame, caps });
    const { relayId, maxPayloadBytes, heartbeatIntervalMs } = this.settings;
    const welcome = {
      type: FrameType.Welcome,
      version,
      relayId,
      sessionId: session.sessionId,
      nodeId: node.nodeId,
      maxPayloadBytes,
      heartbeatIntervalMs,
      caps,
    } as const;
    session.send(this.replies.codec.encode(welcome));
    this.observer?.nodeAnnounced({
      nodeId: node.nodeId,
      tenant: node.world.tenant,
      role: session.identity.isServer ? 'server' : 'client',
      patterns: node.patterns.length,
      subscriptions: node.events.length,
      queue: node.queue,
    });
    this.requests.providersArrived(node.world, node.patterns);
    this.expiry.schedule(session, true);
  }

  /** The HELLO cannot be accepted: the node is told why, and the connection closes. */
  private refuse(session: Session, code: RelayErrorCode, message: string, close: number, reason = message): void {
    this.observer?.frameRefused(refusalReasonOf(code), code, message, session);
    this.replies.error(session, 0, code, message);
    session.socket.close(close, closeReason(reason));
  }
}
