import { beforeEach, describe, expect, it } from '@jest/globals';
import { type Frame, FrameType, type HelloFrame, RelayError, RelayErrorCode, RelayErrorMessages } from '@wsrelay/protocol';
import { fakeSession, idleCluster, replies } from '../../spec-support/fakes.js';
import { Permissions } from '../auth/permissions.js';
import { type ConnectionIdentity, OPEN_IDENTITY } from '../auth/relay-auth.service.js';
import type { RelayPermissions } from '../interfaces/relay-options.interface.js';
import { Membership } from '../routing/membership.js';
import { NodeReservations } from '../routing/node-reservations.js';
import { Worlds } from '../routing/world.js';
import type { Session } from '../session/session.js';
import { FramePolicy } from './frame-policy.js';

const CALLED = 'orders.get';
const EMITTED = 'orders.created';
const SERVED = 'orders.get';
const SUBSCRIBED = 'orders.*';

const bytes = new Uint8Array([0xc0]);

function hello(patterns: string[] = [SERVED], events: string[] = [SUBSCRIBED]): HelloFrame {
  return { type: FrameType.Hello, versions: [1], nodeId: 'n1', service: null, patterns, events, queue: null };
}

/** One frame of every type; a frame with a pattern names CALLED or EMITTED, HELLO serves and subscribes. */
const FRAMES: { readonly [T in FrameType]: Extract<Frame, { type: T }> } = {
  [FrameType.Hello]: hello(),
  [FrameType.Welcome]: {
    type: FrameType.Welcome,
    version: 1,
    relayId: 'r',
    sessionId: 's',
    nodeId: 'n1',
    maxPayloadBytes: 1024,
    heartbeatIntervalMs: 1000,
  },
  [FrameType.Request]: {
    type: FrameType.Request,
    id: 1,
    pattern: CALLED,
    payload: bytes,
    timeoutMs: 1000,
    peer: null,
    ext: null,
    claims: null,
  },
  [FrameType.Response]: { type: FrameType.Response, id: 1, flags: 1, payload: null },
  [FrameType.Cancel]: { type: FrameType.Cancel, id: 1 },
  [FrameType.Event]: { type: FrameType.Event, id: 1, pattern: EMITTED, payload: bytes, peer: null, ext: null, claims: null },
  [FrameType.Ack]: { type: FrameType.Ack, id: 1, recipients: 1 },
  [FrameType.Error]: { type: FrameType.Error, id: 1, code: RelayErrorCode.INTERNAL, message: 'x' },
  [FrameType.Ping]: { type: FrameType.Ping },
  [FrameType.Pong]: { type: FrameType.Pong },
  [FrameType.Wait]: { type: FrameType.Wait, id: 1, pattern: CALLED, timeoutMs: 1000 },
  [FrameType.Discover]: { type: FrameType.Discover, id: 1 },
  [FrameType.Nodes]: { type: FrameType.Nodes, id: 1, nodes: [] },
  [FrameType.TokenExpiring]: { type: FrameType.TokenExpiring, expiresAt: 1 },
  [FrameType.Auth]: { type: FrameType.Auth, token: bytes },
  [FrameType.Authorized]: { type: FrameType.Authorized, expiresAt: 0 },
  [FrameType.GoAway]: { type: FrameType.GoAway, reason: 'x', drainMs: 0 },
  [FrameType.Drain]: { type: FrameType.Drain, id: 1 },
  [FrameType.Handled]: { type: FrameType.Handled, id: 1, error: null },
  [FrameType.Credit]: { type: FrameType.Credit, id: 1, credit: 8 },
};

type Outcome = 'ok' | { code: RelayErrorCode; message: string };

const OK = 'ok';
const HELLO_FIRST: Outcome = { code: RelayErrorCode.BAD_FRAME, message: RelayErrorMessages.badFrame(RelayErrorMessages.helloFirst()) };
const NOT_SERVER_ANSWER: Outcome = { code: RelayErrorCode.FORBIDDEN, message: RelayErrorMessages.notServer('answer requests') };
const NOT_SERVER_HELLO: Outcome = { code: RelayErrorCode.FORBIDDEN, message: RelayErrorMessages.notServer('serve patterns') };
const forbidden = (action: string, subject: string): Outcome => ({
  code: RelayErrorCode.FORBIDDEN,
  message: RelayErrorMessages.forbidden(action, subject),
});

type Case = 'not established' | 'passive' | 'permission missing' | 'allowed';

/**
 * What each frame type meets from a connection that is
 * not established (no HELLO yet; a server with every permission),
 * passive (established, every permission, not a server),
 * without the permission (established server, no permissions at all),
 * allowed (established server, exactly the permissions the frames need).
 */
const TABLE: { readonly [T in FrameType]: Readonly<Record<Case, Outcome>> } = {
  [FrameType.Hello]: {
    'not established': OK,
    passive: NOT_SERVER_HELLO,
    'permission missing': forbidden('serving', SERVED),
    allowed: OK,
  },
  [FrameType.Welcome]: { 'not established': OK, passive: OK, 'permission missing': OK, allowed: OK },
  [FrameType.Request]: { 'not established': HELLO_FIRST, passive: OK, 'permission missing': forbidden('calling', CALLED), allowed: OK },
  [FrameType.Response]: { 'not established': HELLO_FIRST, passive: NOT_SERVER_ANSWER, 'permission missing': OK, allowed: OK },
  [FrameType.Cancel]: { 'not established': HELLO_FIRST, passive: OK, 'permission missing': OK, allowed: OK },
  [FrameType.Event]: { 'not established': HELLO_FIRST, passive: OK, 'permission missing': forbidden('publishing', EMITTED), allowed: OK },
  [FrameType.Ack]: { 'not established': OK, passive: OK, 'permission missing': OK, allowed: OK },
  [FrameType.Error]: { 'not established': OK, passive: OK, 'permission missing': OK, allowed: OK },
  [FrameType.Ping]: { 'not established': OK, passive: OK, 'permission missing': OK, allowed: OK },
  [FrameType.Pong]: { 'not established': OK, passive: OK, 'permission missing': OK, allowed: OK },
  [FrameType.Wait]: { 'not established': HELLO_FIRST, passive: OK, 'permission missing': forbidden('calling', CALLED), allowed: OK },
  [FrameType.Discover]: { 'not established': HELLO_FIRST, passive: OK, 'permission missing': OK, allowed: OK },
  [FrameType.Nodes]: { 'not established': OK, passive: OK, 'permission missing': OK, allowed: OK },
  [FrameType.TokenExpiring]: { 'not established': OK, passive: OK, 'permission missing': OK, allowed: OK },
  [FrameType.Auth]: { 'not established': HELLO_FIRST, passive: OK, 'permission missing': OK, allowed: OK },
  [FrameType.Authorized]: { 'not established': OK, passive: OK, 'permission missing': OK, allowed: OK },
  [FrameType.GoAway]: { 'not established': OK, passive: OK, 'permission missing': OK, allowed: OK },
  [FrameType.Drain]: { 'not established': HELLO_FIRST, passive: OK, 'permission missing': OK, allowed: OK },
  [FrameType.Handled]: { 'not established': HELLO_FIRST, passive: NOT_SERVER_ANSWER, 'permission missing': OK, allowed: OK },
  [FrameType.Credit]: { 'not established': HELLO_FIRST, passive: OK, 'permission missing': OK, allowed: OK },
};

const ALL = OPEN_IDENTITY.permissions;
const NONE = new Permissions({});
const EXACT = new Permissions({ call: [CALLED], publish: [EMITTED], serve: [SERVED], subscribe: [SUBSCRIBED] });

function identity(isServer: boolean, permissions: Permissions | RelayPermissions): ConnectionIdentity {
  return { ...OPEN_IDENTITY, isServer, permissions: permissions instanceof Permissions ? permissions : new Permissions(permissions) };
}

const frameTypes = Object.values(FrameType).filter((t): t is FrameType => typeof t === 'number');

describe('FramePolicy', () => {
  let membership: Membership;
  let policy: FramePolicy;

  beforeEach(() => {
    membership = new Membership(new Worlds(), new NodeReservations(60_000), idleCluster(), replies);
    policy = new FramePolicy(membership);
  });

  function outcome(session: Session, frame: Frame): Outcome {
    try {
      policy.check(session, frame);
      return OK;
    } catch (err) {
      if (!(err instanceof RelayError)) throw err;
      return { code: err.code, message: err.message };
    }
  }

  /** A session that said HELLO (when `established`), as `who`. */
  function connection(who: ConnectionIdentity, established = true): Session {
    const session = fakeSession(who);
    if (established) membership.join(session, { nodeId: session.sessionId, service: null, patterns: [], events: [], queue: null });
    return session;
  }

  const CASES: Record<Case, () => Session> = {
    'not established': () => connection(identity(true, ALL), false),
    passive: () => connection(identity(false, ALL)),
    'permission missing': () => connection(identity(true, NONE)),
    allowed: () => connection(identity(true, EXACT)),
  };

  it('has a row for every frame type', () => {
    expect(Object.keys(TABLE).map(Number).sort()).toEqual([...frameTypes].sort());
    expect(frameTypes).toHaveLength(20);
  });

  const rows = frameTypes.flatMap(type =>
    (Object.keys(CASES) as Case[]).map(c => [FrameType[type], c, type, TABLE[type][c]] as [string, Case, FrameType, Outcome]),
  );

  it.each(rows)('%s from a connection that is %s', (_, c, type, expected) => {
    expect(outcome(CASES[c](), FRAMES[type])).toEqual(expected);
  });

  it('asks for HELLO before it asks for a server connection', () => {
    const session = connection(identity(false, NONE), false);
    expect(outcome(session, FRAMES[FrameType.Response])).toEqual(HELLO_FIRST);
    expect(outcome(session, FRAMES[FrameType.Request])).toEqual(HELLO_FIRST);
  });

  it('asks for a server connection before it asks for permissions', () => {
    expect(outcome(connection(identity(false, NONE)), hello())).toEqual(NOT_SERVER_HELLO);
  });

  describe('HELLO', () => {
    it('lets a passive connection say HELLO that serves and subscribes to nothing', () => {
      expect(outcome(connection(identity(false, NONE), false), hello([], []))).toBe(OK);
    });

    it('refuses a passive connection that serves, whatever its token grants', () => {
      expect(outcome(connection(identity(false, ALL), false), hello(['x'], []))).toEqual(NOT_SERVER_HELLO);
      expect(outcome(connection(identity(false, { serve: ['x'], subscribe: ['>'] }), false), hello(['x'], ['y']))).toEqual(
        NOT_SERVER_HELLO,
      );
    });

    it("lets a passive connection subscribe where its token's subscribe permission covers each subscription whole", () => {
      const session = connection(identity(false, { subscribe: ['orders.>', 'audit.eu.*'] }), false);
      expect(outcome(session, hello([], ['orders.created', 'orders.>', 'audit.eu.login']))).toBe(OK);
      expect(outcome(session, hello([], ['orders.>', 'audit.>']))).toEqual(forbidden('subscribing to', 'audit.>'));
      expect(outcome(session, hello([], ['audit.eu.>']))).toEqual(forbidden('subscribing to', 'audit.eu.>'));
      const queued: HelloFrame = { ...hello([], ['orders.created']), queue: 'tabs' };
      expect(outcome(session, queued)).toBe(OK);
      expect(outcome(session, { ...queued, events: ['billing.paid'] })).toEqual(forbidden('subscribing to', 'billing.paid'));
    });

    it('refuses a passive connection without a subscribe permission, naming the subject', () => {
      const session = connection(identity(false, { call: ['>'], publish: ['>'] }), false);
      expect(outcome(session, hello([], ['x']))).toEqual(forbidden('subscribing to', 'x'));
    });

    it('still refuses RESPONSE and HANDLED from a passive subscriber', () => {
      const session = connection(identity(false, { subscribe: ['>'] }), false);
      membership.join(session, { nodeId: 'sub', service: null, patterns: [], events: ['x'], queue: null });
      expect(outcome(session, FRAMES[FrameType.Response])).toEqual(NOT_SERVER_ANSWER);
      expect(outcome(session, FRAMES[FrameType.Handled])).toEqual(NOT_SERVER_ANSWER);
    });

    it('names the first pattern the token does not let it serve', () => {
      const session = connection(identity(true, { serve: ['a'], subscribe: ['>'] }), false);
      expect(outcome(session, hello(['a', 'b', 'c'], []))).toEqual(forbidden('serving', 'b'));
    });

    it('checks each subscription whole: a wildcard wider than the permission is refused', () => {
      const session = connection(identity(true, { serve: [SERVED], subscribe: [SUBSCRIBED] }), false);
      expect(outcome(session, hello([SERVED], ['orders.created', 'orders.*']))).toBe(OK);
      expect(outcome(session, hello([SERVED], ['orders.*', 'orders.>']))).toEqual(forbidden('subscribing to', 'orders.>'));
      expect(outcome(session, hello([SERVED], ['billing.paid']))).toEqual(forbidden('subscribing to', 'billing.paid'));
    });

    it('refuses a subscription even when the patterns are allowed', () => {
      const session = connection(identity(true, { serve: [SERVED] }), false);
      expect(outcome(session, hello([SERVED], [SUBSCRIBED]))).toEqual(forbidden('subscribing to', SUBSCRIBED));
    });
  });

  describe('permissions per pattern', () => {
    it('checks the pattern each frame names, with wildcards in the permission', () => {
      const session = connection(identity(true, { call: ['orders.*'], publish: ['audit.>'] }));
      const request = (pattern: string): Frame => ({ ...FRAMES[FrameType.Request], pattern });
      const event = (pattern: string): Frame => ({ ...FRAMES[FrameType.Event], pattern });
      const wait = (pattern: string): Frame => ({ ...FRAMES[FrameType.Wait], pattern });
      expect(outcome(session, request('orders.list'))).toBe(OK);
      expect(outcome(session, request('billing.get'))).toEqual(forbidden('calling', 'billing.get'));
      expect(outcome(session, wait('orders.list'))).toBe(OK);
      expect(outcome(session, wait('orders.a.b'))).toEqual(forbidden('calling', 'orders.a.b'));
      expect(outcome(session, event('audit.login.ok'))).toBe(OK);
      expect(outcome(session, event('orders.list'))).toEqual(forbidden('publishing', 'orders.list'));
    });

    it('does not let serving stand in for calling, nor publishing for subscribing', () => {
      const session = connection(identity(true, { serve: [CALLED], subscribe: [EMITTED] }));
      expect(outcome(session, FRAMES[FrameType.Request])).toEqual(forbidden('calling', CALLED));
      expect(outcome(session, FRAMES[FrameType.Event])).toEqual(forbidden('publishing', EMITTED));
    });

    it("applies a refreshed token's permissions from the next frame on", () => {
      const session = connection(identity(true, ALL));
      expect(outcome(session, FRAMES[FrameType.Request])).toBe(OK);
      session.identity = identity(true, NONE);
      expect(outcome(session, FRAMES[FrameType.Request])).toEqual(forbidden('calling', CALLED));
    });
  });

  it('treats a connection whose node was forgotten as not established', () => {
    const session = connection(identity(true, ALL));
    const node = membership.nodeOf(session)!;
    membership.closed(node);
    expect(outcome(session, FRAMES[FrameType.Request])).toBe(OK);
    membership.forget(node);
    expect(outcome(session, FRAMES[FrameType.Request])).toEqual(HELLO_FIRST);
  });
});
