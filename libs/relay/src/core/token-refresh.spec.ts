/**
 * AUTH: a fresh token for a live connection must verify and keep its subject
 * and tenant; its permissions apply at once (what it may no longer serve or
 * subscribe to leaves routing) and its expiry is scheduled anew.
 */
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { FrameType, RelayErrorCode } from '@wsrelay/protocol';
import { SignJWT } from 'jose';
import { codec, type FakeSocket, fakeSession, idleCluster, replies } from '../../spec-support/fakes.js';
import type { IncomingMessage } from 'node:http';
import { RelayAuthService } from '../auth/relay-auth.service.js';
import { Membership } from '../routing/membership.js';
import { NodeReservations } from '../routing/node-reservations.js';
import { Worlds } from '../routing/world.js';
import { resolveRelayOptions } from '../relay.options.js';
import type { Session } from '../session/session.js';
import { SessionRegistry } from '../session/session-registry.js';
import { TokenExpiry } from '../session/token-expiry.js';
import { TokenRefresh } from './token-refresh.js';

const SECRET = 'a secret long enough for HS256 tokens';
const HOUR_S = 3600;

function token(sub: string, claims: Record<string, unknown>, expiresInS = HOUR_S): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setExpirationTime(Math.floor(Date.now() / 1000) + expiresInS)
    .sign(new TextEncoder().encode(SECRET));
}

const auth = (frame: string) => ({ type: FrameType.Auth, token: new TextEncoder().encode(frame) }) as const;

describe('TokenRefresh', () => {
  let service: RelayAuthService;
  let sessions: SessionRegistry;
  let membership: Membership;
  let worlds: Worlds;
  let refresh: TokenRefresh;
  let expiry: TokenExpiry;

  /** A session that said HELLO with `patterns` and `events`, under the identity a token of `sub` gives at the upgrade. */
  async function node(sub: string, perms: Record<string, string[]>, announce: { patterns?: string[]; events?: string[] } = {}) {
    const upgrade = { headers: { authorization: `Bearer ${await token(sub, { role: 'server', perms })}` }, url: '/relay' };
    const session = fakeSession(await service.authenticate(upgrade as IncomingMessage));
    sessions.add(session);
    membership.join(session, { nodeId: sub, service: null, queue: null, patterns: announce.patterns ?? [], events: announce.events ?? [] });
    return session;
  }

  beforeEach(() => {
    service = new RelayAuthService(resolveRelayOptions({ auth: { secret: SECRET } }));
    sessions = new SessionRegistry();
    worlds = new Worlds();
    membership = new Membership(worlds, new NodeReservations(60_000), idleCluster(), replies);
    expiry = new TokenExpiry(codec, 60_000);
    refresh = new TokenRefresh(service, sessions, membership, expiry, replies);
  });

  afterEach(() => {
    for (const session of sessions.values()) expiry.clear(session);
    jest.useRealTimers();
  });

  const frames = (s: Session) => (s.socket as unknown as FakeSocket).take();

  it('takes a token of the same subject: the new identity applies and AUTHORIZED names its expiry', async () => {
    const session = await node('alice', { call: ['a'] });
    frames(session);
    await refresh.reauth(session, auth(await token('alice', { role: 'server', perms: { call: ['a', 'b'] } })));
    expect(session.identity.permissions.allows('call', 'b')).toBe(true);
    const [answer] = frames(session);
    expect(answer).toMatchObject({ type: FrameType.Authorized });
    expect((answer as { expiresAt: number }).expiresAt).toBe(session.identity.expiresAt);
  });

  it('withdraws from routing what the new permissions no longer allow', async () => {
    const session = await node('alice', { serve: ['a', 'b'], subscribe: ['e.>'] }, { patterns: ['a', 'b'], events: ['e.>'] });
    const world = worlds.get('')!;
    expect([world.providers.count('a'), world.providers.count('b'), world.subscriptions.recipients('e.x').length]).toEqual([1, 1, 1]);
    await refresh.reauth(session, auth(await token('alice', { role: 'server', perms: { serve: ['a'] } })));
    expect([world.providers.count('a'), world.providers.count('b'), world.subscriptions.recipients('e.x').length]).toEqual([1, 0, 0]);
    expect(membership.nodeOf(session)?.patterns).toEqual(['a']);
  });

  it('refuses a token of another subject (UNAUTHORIZED) and keeps the old identity', async () => {
    const session = await node('alice', { call: ['a'] });
    const before = session.identity;
    frames(session);
    await refresh.reauth(session, auth(await token('mallory', { role: 'server' })));
    expect(session.identity).toBe(before);
    expect(frames(session)).toEqual([expect.objectContaining({ type: FrameType.Error, id: 0, code: RelayErrorCode.UNAUTHORIZED })]);
  });

  it('refuses a token that does not verify', async () => {
    const session = await node('alice', { call: ['a'] });
    frames(session);
    await refresh.reauth(session, auth('not.a.token'));
    expect(frames(session)).toEqual([expect.objectContaining({ type: FrameType.Error, code: RelayErrorCode.UNAUTHORIZED })]);
  });

  it('closes the connection (4401) at the fifth refused refresh, not before, and says why', async () => {
    const session = await node('alice', { call: ['a'] });
    const socket = session.socket as unknown as FakeSocket;
    for (let i = 0; i < 4; i++) await refresh.reauth(session, auth('not.a.token'));
    expect(socket.closed).toBeUndefined();
    // A refresh that is accepted does not wipe the count.
    await refresh.reauth(session, auth(await token('alice', { role: 'server' })));
    await refresh.reauth(session, auth(await token('mallory', { role: 'server' })));
    expect(socket.closed).toEqual({ code: 4401, reason: '5 token refreshes (AUTH) were refused on this connection' });
    expect(frames(session).filter(f => f.type === FrameType.Error)).toHaveLength(5);
  });

  it('refuses a refresh whose "sub" is not a non-empty string, so the subject check cannot be skipped', async () => {
    const session = await node('alice', { call: ['a'] });
    frames(session);
    for (const sub of [42, '', null, ['alice']]) {
      const odd = await new SignJWT({ role: 'server', sub } as Record<string, unknown>)
        .setProtectedHeader({ alg: 'HS256' })
        .setExpirationTime(Math.floor(Date.now() / 1000) + HOUR_S)
        .sign(new TextEncoder().encode(SECRET));
      await refresh.reauth(session, auth(odd));
      expect(frames(session)).toEqual([
        expect.objectContaining({
          type: FrameType.Error,
          code: RelayErrorCode.UNAUTHORIZED,
          message: expect.stringMatching(/"sub" claim must be a non-empty string/),
        }),
      ]);
    }
    expect(session.identity.subject).toBe('alice');
  });

  it('does nothing for a connection that closed while the token was being verified', async () => {
    const session = await node('alice', { call: ['a'] });
    const before = session.identity;
    frames(session);
    const pending = refresh.reauth(session, auth(await token('alice', { role: 'server' })));
    sessions.delete(session);
    await pending;
    expect(session.identity).toBe(before);
    expect(frames(session)).toEqual([]);
  });

  it("schedules the new token's expiry: TOKEN_EXPIRING before it, then the close", async () => {
    const session = await node('alice', { call: ['a'] });
    const fresh = await token('alice', { role: 'server' }, 120);
    jest.useFakeTimers({ now: Date.now() });
    await refresh.reauth(session, auth(fresh));
    frames(session);
    jest.advanceTimersByTime(61_000);
    expect(frames(session)).toEqual([expect.objectContaining({ type: FrameType.TokenExpiring })]);
    jest.advanceTimersByTime(60_000);
    expect((session.socket as unknown as FakeSocket).closed?.code).toBe(4401);
  });
});
