import {
  type Frame,
  FrameType,
  type HelloFrame,
  type RelayError,
  RelayErrorCode,
  RelayErrorMessages,
  refusalError,
} from '@wsrelay/protocol';
import type { PermissionAction } from '../auth/permissions.js';
import type { Membership } from '../routing/membership.js';
import type { Session } from '../session/session.js';

/** What a frame type needs of the connection that sends it. */
interface FrameRule {
  /** A session established by HELLO. */
  established: boolean;
  /**
   * A server connection (as `isServerConnection` classified it); for HELLO
   * only when it announces patterns: a passive client may subscribe to what
   * its token's `subscribe` grants (it gets plain copies, and answers nothing).
   */
  server: boolean;
  /** The token permission the frame's pattern (HELLO: its patterns and subscriptions) needs. */
  permission?: PermissionAction | 'announce';
}

/**
 * Every frame the relay takes, and what it needs. The gateway's guard and
 * the adapter's hot path both judge frames by this one table, through
 * FramePolicy.check: they cannot drift apart. A frame type not listed
 * (PING, a frame the adapter refused) needs nothing.
 */
const RULES: Partial<Record<FrameType, FrameRule>> = {
  [FrameType.Hello]: { established: false, server: true, permission: 'announce' },
  [FrameType.Request]: { established: true, server: false, permission: 'call' },
  [FrameType.Response]: { established: true, server: true },
  [FrameType.Handled]: { established: true, server: true },
  [FrameType.Cancel]: { established: true, server: false },
  [FrameType.Credit]: { established: true, server: false },
  [FrameType.Event]: { established: true, server: false, permission: 'publish' },
  [FrameType.Wait]: { established: true, server: false, permission: 'call' },
  [FrameType.Discover]: { established: true, server: false },
  [FrameType.Auth]: { established: true, server: false },
  [FrameType.Drain]: { established: true, server: false },
};

const ACTION_WORDS: Record<PermissionAction, string> = {
  call: 'calling',
  serve: 'serving',
  publish: 'publishing',
  subscribe: 'subscribing to',
};

/**
 * The relay's frame policy: HELLO first, server-only frames (RESPONSE,
 * HANDLED, serving patterns) from server connections only, and each pattern
 * (a passive client's subscriptions too) within the token's permissions
 * (compiled once per token, so a check is a cached lookup). A frame that
 * fails gets its RelayError (BAD_FRAME or FORBIDDEN) and is not routed.
 */
/** The most subscriptions a passive client (a browser) may announce. */
export const MAX_PASSIVE_SUBSCRIPTIONS = 32;

export class FramePolicy {
  constructor(private readonly membership: Membership) {}

  /** Throws the RelayError that refuses `frame` from `session`; returns when it may be routed. */
  check(session: Session, frame: Frame): void {
    const rule = RULES[frame.type];
    if (rule === undefined) return;
    if (rule.established && this.membership.nodeOf(session) === undefined) {
      throw refusalError(RelayErrorCode.BAD_FRAME, RelayErrorMessages.badFrame(RelayErrorMessages.helloFirst()));
    }
    const identity = session.identity;
    if (rule.server && !identity.isServer) {
      if (frame.type !== FrameType.Hello) throw forbiddenPassive('answer requests');
      if (frame.patterns.length > 0) throw forbiddenPassive('serve patterns');
      // Browsers are many and come and go: each may hold only a few subscriptions (servers are few and stable).
      if (frame.events.length > MAX_PASSIVE_SUBSCRIPTIONS) {
        throw refusalError(
          RelayErrorCode.FORBIDDEN,
          RelayErrorMessages.tooManyPassiveSubscriptions(frame.events.length, MAX_PASSIVE_SUBSCRIPTIONS),
        );
      }
    }
    if (rule.permission === undefined) return;
    const perms = identity.permissions;
    if (rule.permission === 'announce') {
      const hello = frame as HelloFrame;
      for (const p of hello.patterns) if (!perms.allows('serve', p)) throw forbidden('serve', p);
      for (const e of hello.events) if (!perms.allows('subscribe', e)) throw forbidden('subscribe', e);
      return;
    }
    const pattern = (frame as Frame & { pattern: string }).pattern;
    if (!perms.allows(rule.permission, pattern)) throw forbidden(rule.permission, pattern);
  }
}

function forbiddenPassive(what: string): RelayError {
  return refusalError(RelayErrorCode.FORBIDDEN, RelayErrorMessages.notServer(what));
}

function forbidden(action: PermissionAction, subject: string): RelayError {
  return refusalError(RelayErrorCode.FORBIDDEN, RelayErrorMessages.forbidden(ACTION_WORDS[action], subject));
}
