import { CloseCode, frameOf, type RelayError, RelayErrorCode } from '@wsrelay/protocol';
import type WebSocket from 'ws';
import { closeReason } from '../internal/utf8.js';
import { refusalReasonOf } from '../observe/codes.js';
import type { FrameSender, RelayObserver } from '../observe/relay-observer.js';
import type { Replies } from '../session/replies.js';
import type { Session } from '../session/session.js';

/** An error reply is skipped while the socket already has this much unsent (a flooder that does not read). */
const ERROR_REPLY_BUDGET = 1024 * 1024;

/**
 * Refusals that say the sender sends what it must not: a connection that
 * keeps sending them is closed. (Refusals of work the relay cannot do right
 * now, such as MICROSERVICE_OFFLINE or RATE_LIMITED, are not the sender's fault.)
 */
const COUNTED: ReadonlySet<string> = new Set([RelayErrorCode.BAD_FRAME, RelayErrorCode.PAYLOAD_TOO_LARGE, RelayErrorCode.FORBIDDEN]);

/** The sender of a frame refused on a socket the relay holds no session for. */
const NO_SESSION: FrameSender = { sessionId: 'none' };

/**
 * Answers a frame the relay refused (with an ERROR correlated to its id) and
 * closes a connection that keeps sending bad, oversized or forbidden frames,
 * or whose HELLO was refused. What the gateway's exception filter and its hot path both do.
 */
export class Refusals {
  private readonly badFrames = new WeakMap<Session, number>();

  constructor(
    private readonly replies: Replies,
    private readonly maxBadFrames: number,
    /** Whether the session said HELLO (a refusal before is of its HELLO). */
    private readonly established: (session: Session) => boolean,
    /** Counts each refusal by reason. */
    private readonly observer?: Pick<RelayObserver, 'frameRefused'>,
  ) {}

  refuse(session: Session | undefined, socket: WebSocket, id: number, err: RelayError): void {
    this.observer?.frameRefused(refusalReasonOf(err.code), err.code, err.message, session ?? NO_SESSION);
    if (socket.readyState === 1 && socket.bufferedAmount < ERROR_REPLY_BUDGET) {
      const reply = this.replies.errorFrame(id, err.code, err.message);
      // Through the session, the replies of one tick leave in one write (a flood of refused frames is not a syscall each).
      if (session === undefined) socket.send(frameOf(reply));
      else session.send(reply);
    }
    if (session === undefined) return;
    if (err.code === RelayErrorCode.FORBIDDEN && !this.established(session)) {
      // A refused HELLO: the connection cannot be used as asked.
      socket.close(CloseCode.FORBIDDEN, closeReason(err.message));
    } else if (COUNTED.has(err.code)) {
      const bad = (this.badFrames.get(session) ?? 0) + 1;
      this.badFrames.set(session, bad);
      if (bad >= this.maxBadFrames) socket.close(CloseCode.BAD_FRAME, closeReason(`${bad} refused frames (the last: ${err.code})`));
    }
  }
}
