/**
 * What a token may do beyond its permissions (issue 13). Point 7: a token
 * whose `sub` was not a string was taken as having no subject, so node-id
 * binding and the subject check of a refresh were skipped. Point 9: a
 * connection could have in-band token refreshes (AUTH) refused without end,
 * and DISCOVER listed every node and pattern of the tenant to any token.
 */
import { expect } from '@jest/globals';
import { CloseCode, type Frame, FrameType, type NodesFrame, RelayErrorCode } from '@wsrelay/protocol';
import type { JWTPayload } from 'jose';
import { startRelay, useCleanup } from './support/harness.js';
import { RawNode, refusal } from './support/raw-node.js';
import { AUDIENCE, bearer, CLIENT, ISSUER, mint, SECRET, SERVER } from './support/tokens.js';

const hs = { secret: SECRET, issuer: ISSUER, audience: AUDIENCE };
const isError = (f: Frame) => f.type === FrameType.Error;
const authFrame = (token: string) => ({ type: FrameType.Auth, token: new TextEncoder().encode(token) }) as const;
/** A token whose `sub` is whatever JSON value is given (jose types it as a string). */
const withSub = (sub: unknown, claims: JWTPayload = CLIENT) => mint({ claims: { ...claims, sub } as JWTPayload });

describe('token limits', () => {
  const { add, track } = useCleanup();

  async function relay() {
    const r = await startRelay({ auth: hs });
    add(() => r.close());
    return r;
  }

  it('refuses a token whose "sub" is present but not a non-empty string, at the upgrade (401) and in-band', async () => {
    const { url } = await relay();
    for (const sub of [42, '', null, ['alice'], { id: 'alice' }]) {
      const answer = await refusal(url, await bearer(await withSub(sub)));
      expect([answer.status, answer.headers['x-wsrelay-error']]).toEqual([401, RelayErrorCode.UNAUTHORIZED]);
      expect(answer.body).toBe('Unauthorized: the "sub" claim must be a non-empty string.');
    }
    // A live connection cannot trade its subject for none: the refresh is refused and its identity kept.
    const node = track(await RawNode.hello(url, 'alice-node', await bearer({ sub: 'alice', claims: SERVER })));
    node.send(authFrame(await withSub(7, SERVER)));
    expect(await node.next(isError)).toMatchObject({ code: RelayErrorCode.UNAUTHORIZED, message: expect.stringMatching(/"sub" claim/) });
    node.send(authFrame(await mint({ sub: 'alice', claims: SERVER })));
    await node.next(f => f.type === FrameType.Authorized);
  });

  it('closes a connection (4401) whose in-band token refreshes were refused 5 times; other connections go on', async () => {
    const { url } = await relay();
    const bystander = track(await RawNode.hello(url, 'bystander', await bearer({ sub: 'bob', claims: CLIENT })));
    const guesser = track(await RawNode.hello(url, 'guesser', await bearer({ sub: 'mallory', claims: CLIENT })));
    const guesses = ['not-a-jwt', await mint({ sub: 'alice' }), await mint({ expiresIn: -60 }), 'a.b.c', await withSub(1)];
    for (const guess of guesses.slice(0, 4)) {
      guesser.send(authFrame(guess));
      expect(await guesser.next(isError)).toMatchObject({ code: RelayErrorCode.UNAUTHORIZED });
    }
    expect(guesser.closeCode).toBeUndefined();
    guesser.send(authFrame(guesses[4]));
    expect(await guesser.closed()).toEqual({
      code: CloseCode.UNAUTHORIZED,
      reason: '5 token refreshes (AUTH) were refused on this connection',
    });
    bystander.send({ type: FrameType.Ping });
    await bystander.next(f => f.type === FrameType.Pong);
  });

  it('DISCOVER lists only the patterns a token may call and the subscriptions it may emit to; nodes with neither are left out', async () => {
    const { url } = await relay();
    const server = (sub: string) => bearer({ sub, claims: SERVER });
    track(
      await RawNode.hello(url, 'audit', { ...(await server('svc-audit')), patterns: ['audit.read', 'audit.purge'], events: ['audit.>'] }),
    );
    track(await RawNode.hello(url, 'admin', { ...(await server('svc-admin')), patterns: ['admin.reset'], events: ['admin.*'] }));
    const discover = async (perms: Record<string, string[]>) => {
      const caller = track(await RawNode.hello(url, undefined, await bearer({ claims: { ...CLIENT, perms } })));
      caller.send({ type: FrameType.Discover, id: 1 });
      return ((await caller.next(f => f.type === FrameType.Nodes)) as NodesFrame).nodes;
    };
    expect(await discover({ call: ['audit.read'], publish: ['audit.eu.*'] })).toEqual([
      { nodeId: 'audit', service: null, patterns: ['audit.read'], events: ['audit.>'], queue: null },
    ]);
    expect(await discover({ call: ['billing.*'] })).toEqual([]);
    // A token that may call and emit everything still sees every node (callers included).
    const all = await discover({ call: ['>'], publish: ['>'] });
    expect(all.map(n => n.nodeId)).toEqual(expect.arrayContaining(['audit', 'admin']));
    expect(all.find(n => n.nodeId === 'admin')?.patterns).toEqual(['admin.reset']);
  });
});
