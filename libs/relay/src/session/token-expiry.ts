import { CloseCode, type FrameCodec, FrameType, RelayErrorMessages } from '@wsrelay/protocol';
import { runAt } from '../internal/timers.js';
import type { Session } from './session.js';

/**
 * Connections end when their token does: TOKEN_EXPIRING `warningMs` before
 * the token's `exp` (once the node said HELLO and can answer with AUTH),
 * then the close (4401) at `exp`. An in-band refresh schedules anew.
 */
export class TokenExpiry {
  private readonly timers = new Map<Session, NodeJS.Timeout>();

  constructor(
    private readonly codec: FrameCodec,
    private readonly warningMs: number,
  ) {}

  /** Schedules the session's close at its token's expiry; with `warn`, the warning first. */
  schedule(session: Session, warn: boolean): void {
    this.clear(session);
    const expiresAt = session.identity.expiresAt;
    if (expiresAt === null) return;
    const expire = () => {
      this.timers.delete(session);
      session.socket.close(CloseCode.UNAUTHORIZED, RelayErrorMessages.tokenExpired());
    };
    if (!warn) {
      this.at(session, expiresAt, expire);
      return;
    }
    const warnAt = expiresAt - this.warningMs;
    const warning = () => {
      session.send(this.codec.encode({ type: FrameType.TokenExpiring, expiresAt }));
      this.at(session, expiresAt, expire);
    };
    if (warnAt > Date.now()) this.at(session, warnAt, warning);
    else warning();
  }

  clear(session: Session): void {
    clearTimeout(this.timers.get(session));
    this.timers.delete(session);
  }

  /** Sessions with a timer (for diagnostics). */
  get size(): number {
    return this.timers.size;
  }

  private at(session: Session, when: number, fn: () => void): void {
    runAt(when, fn, timer => this.timers.set(session, timer));
  }
}
