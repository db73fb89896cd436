import { Logger } from '@nestjs/common';
import { type AuthFrame, CloseCode, FrameType, RelayErrorCode, RelayErrorMessages } from '@wsrelay/protocol';
import { type RelayAuthService, TokenRefusal } from '../auth/relay-auth.service.js';
import { closeReason } from '../internal/utf8.js';
import { RefusalReason, type RelayObserver } from '../observe/relay-observer.js';
import type { Membership } from '../routing/membership.js';
import type { Replies } from '../session/replies.js';
import type { Session } from '../session/session.js';
import type { SessionRegistry } from '../session/session-registry.js';
import type { TokenExpiry } from '../session/token-expiry.js';

/**
 * AUTH: a fresh token for a live connection. It must verify and name the same
 * subject and tenant; its permissions apply at once (patterns and
 * subscriptions they no longer allow are withdrawn from routing) and the
 * expiry timers restart. A connection whose refreshes are refused
 * `auth.maxRefreshFailures` times is closed (4401): it cannot try tokens
 * without end.
 */
export class TokenRefresh {
  private readonly logger = new Logger(TokenRefresh.name);
  /** Refused refreshes per connection. */
  private readonly failures = new WeakMap<Session, number>();

  constructor(
    private readonly auth: RelayAuthService,
    private readonly sessions: SessionRegistry,
    private readonly membership: Membership,
    private readonly expiry: TokenExpiry,
    private readonly replies: Replies,
    private readonly observer?: Pick<RelayObserver, 'frameRefused'>,
  ) {}

  async reauth(session: Session, frame: AuthFrame): Promise<void> {
    let identity;
    try {
      identity = await this.auth.refresh(session.identity, new TextDecoder().decode(frame.token));
    } catch (err) {
      if (!(err instanceof TokenRefusal)) throw err;
      this.refused(session, err.message);
      return;
    }
    if (!this.sessions.has(session)) return;
    session.identity = identity;
    const node = this.membership.nodeOf(session);
    if (node !== undefined) {
      const permissions = identity.permissions;
      const [patterns, events] = this.membership.narrow(node, {
        serve: p => permissions.allows('serve', p),
        subscribe: e => permissions.allows('subscribe', e),
      });
      if (patterns + events > 0) {
        this.logger.log(
          `Node ${node.nodeId} refreshed its token; withdrew ${patterns} pattern(s) and ${events} subscription(s) its new permissions deny.`,
        );
      }
    }
    this.expiry.schedule(session, true);
    session.send(this.replies.codec.encode({ type: FrameType.Authorized, expiresAt: identity.expiresAt ?? 0 }));
  }

  /** Answers a refused refresh; the last one allowed also closes the connection. */
  private refused(session: Session, message: string): void {
    this.observer?.frameRefused(RefusalReason.Auth, RelayErrorCode.UNAUTHORIZED, message, session);
    this.replies.error(session, 0, RelayErrorCode.UNAUTHORIZED, message);
    const failures = (this.failures.get(session) ?? 0) + 1;
    this.failures.set(session, failures);
    if (failures >= this.auth.maxRefreshFailures) {
      session.socket.close(CloseCode.UNAUTHORIZED, closeReason(RelayErrorMessages.tooManyRefusedRefreshes(failures)));
    }
  }
}
