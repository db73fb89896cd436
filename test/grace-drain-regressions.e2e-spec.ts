/**
 * Regressions found in review of the startup grace and of requests that
 * cross a GOAWAY (each test names the bug it pins).
 */
import { encodePayload, type Frame, FrameType, type RequestFrame, RelayErrorCode, ResponseFlag } from '@wsrelay/protocol';
import { type BackplaneListener, InMemoryBackplane, InMemoryHub, type RelayModuleOptions, RelayCore } from '@wsrelay/relay';
import { CLUSTER_TIMING } from './support/cluster.js';
import { answerTo, heldAt, isRequest, request } from './support/frames.js';
import { type RunningRelay, startRelay, until, useCleanup } from './support/harness.js';
import { RawNode } from './support/raw-node.js';
import { AUDIENCE, bearer, CLIENT, ISSUER, mint, SECRET, SERVER } from './support/tokens.js';

const AUTH = { secret: SECRET, issuer: ISSUER, audience: AUDIENCE };
/** Every request's deadline: longer than any test, so none ends at it. */
const DEADLINE_MS = 20_000;

function refresh(node: RawNode, token: string): Promise<Frame> {
  node.send({ type: FrameType.Auth, token: new TextEncoder().encode(token) });
  return node.next(f => f.type === FrameType.Authorized);
}

/** Delivers what comes to this relay over the backplane 150 ms late, like a slow network. */
class LaggyBackplane extends InMemoryBackplane {
  override start(self: string, listener: BackplaneListener): Promise<void> {
    return super.start(self, { message: b => void setTimeout(() => listener.message(b), 150), connection: up => listener.connection(up) });
  }
}

/** How long SlowCloseBackplane's close takes: what the test needs is a close that is not instant. */
const SLOW_CLOSE_MS = 400;

/** A backplane whose close takes a while, as a Redis QUIT over a network does. */
class SlowCloseBackplane extends InMemoryBackplane {
  override async close(): Promise<void> {
    await super.close();
    await new Promise(resolve => setTimeout(resolve, SLOW_CLOSE_MS));
  }
}

describe('startup grace and drain regressions', () => {
  const { add, track } = useCleanup();

  async function relay(options: RelayModuleOptions = {}): Promise<RunningRelay> {
    const r = await startRelay(options);
    add(r.close);
    return r;
  }

  it("bounds the payload bytes one connection's held calls keep (maxBufferedBytes): past it, RATE_LIMITED", async () => {
    // Bug: held calls kept their payloads without a byte bound (up to 10,000 × 1 MiB per connection).
    const r = await relay({ startupGraceMs: 30_000, maxBufferedBytes: 2 * 1024 * 1024 });
    const caller = track(await RawNode.hello(r.url, 'hog'));
    const big = new Uint8Array(900 * 1024).fill(7);
    caller.send(request(1, 'nobody', DEADLINE_MS, { payload: big }));
    caller.send(request(2, 'nobody', DEADLINE_MS, { payload: big }));
    caller.send(request(3, 'nobody', DEADLINE_MS, { payload: big }));
    expect(await caller.next(answerTo(3))).toMatchObject({ type: FrameType.Error, code: RelayErrorCode.RATE_LIMITED });
    expect(heldAt(r)).toBe(2);
    // A cancelled one gives its bytes back.
    caller.send({ type: FrameType.Cancel, id: 1 });
    caller.send(request(4, 'nobody', DEADLINE_MS, { payload: big }));
    caller.send(request(5, 'nobody', DEADLINE_MS, { payload: big }));
    // The relay handles a connection's frames in order: 4 was held in place of 1, 5 is one too many.
    expect(await caller.next(answerTo(5))).toMatchObject({ type: FrameType.Error, code: RelayErrorCode.RATE_LIMITED });
    expect(caller.frames.filter(answerTo(4))).toEqual([]);
    expect(heldAt(r)).toBe(2);
  });

  it('refuses a held call with FORBIDDEN when a token refresh withdrew its call permission before a provider came', async () => {
    // Bug: the held call was routed anyway, carrying the new token's claims that do not permit it.
    const r = await relay({ auth: AUTH, startupGraceMs: 30_000 });
    const caller = track(
      await RawNode.hello(r.url, 'caller', await bearer({ sub: 'caller', claims: { ...CLIENT, perms: { call: ['work'] } } })),
    );
    caller.send(request(1, 'work', DEADLINE_MS));
    await until(() => heldAt(r) === 1, 5000, 'the relay to hold the call');
    await refresh(caller, await mint({ sub: 'caller', claims: { ...CLIENT, perms: { call: [] } } }));
    const provider = track(
      await RawNode.hello(r.url, 'provider', { ...(await bearer({ sub: 'provider', claims: SERVER })), patterns: ['work'] }),
    );
    expect(await caller.next(answerTo(1))).toMatchObject({ type: FrameType.Error, code: RelayErrorCode.FORBIDDEN });
    expect(provider.frames.filter(isRequest)).toEqual([]);
  });

  it('keeps a drained provider out of routing when it refreshes its token to fewer patterns', async () => {
    // Bug: the refresh put the session that had sent DRAIN back among the providers, and it got new requests.
    const r = await relay({ auth: AUTH });
    const p = track(
      await RawNode.hello(r.url, 'p', {
        ...(await bearer({ sub: 'p', claims: { ...SERVER, perms: { serve: ['a', 'b'] } } })),
        patterns: ['a', 'b'],
      }),
    );
    const caller = track(await RawNode.hello(r.url, 'c', await bearer({ sub: 'c', claims: CLIENT })));
    p.send({ type: FrameType.Drain, id: 9 });
    await p.next(f => f.type === FrameType.Ack);
    await refresh(p, await mint({ sub: 'p', claims: { ...SERVER, perms: { serve: ['a'] } } }));
    caller.send(request(1, 'a', DEADLINE_MS));
    expect(await caller.next(answerTo(1))).toMatchObject({ type: FrameType.Error, code: RelayErrorCode.MICROSERVICE_OFFLINE });
    expect(p.frames.filter(isRequest)).toEqual([]);
  });

  it('in its drain, serves a request another relay forwarded before it heard that the node moved off', async () => {
    // Bug: the forwarded request got MICROSERVICE_OFFLINE while the provider was still connected and answering.
    const hub = new InMemoryHub();
    const a = await relay({ relayId: 'A', drainTimeoutMs: 10_000, cluster: { backplane: new InMemoryBackplane(hub), ...CLUSTER_TIMING } });
    const b = await relay({ relayId: 'B', cluster: { backplane: new LaggyBackplane(hub), ...CLUSTER_TIMING } });
    const peers = (x: RunningRelay) => x.app.get(RelayCore).status().cluster.relays.length;
    await until(() => peers(a) === 1 && peers(b) === 1, 10_000, 'the relays to see each other');
    const p = track(await RawNode.hello(a.url, 'p', { patterns: ['work'] }));
    const local = track(await RawNode.hello(a.url, 'local'));
    const remote = track(await RawNode.hello(b.url, 'remote'));
    const knows = (x: RunningRelay, nodeId: string) => x.app.get(RelayCore).nodeDiagnostics(nodeId)?.routed === true;
    await until(() => knows(b, 'p'), 5000, 'B to see p');
    remote.send(request(1, 'work', DEADLINE_MS));
    const seen = (await p.next(isRequest)) as RequestFrame;
    p.send({ type: FrameType.Response, id: seen.id, flags: ResponseFlag.DONE, payload: encodePayload('hi') });
    await remote.next(answerTo(1));
    // A call in flight keeps A's drain going.
    local.send(request(1, 'work', DEADLINE_MS));
    const kept = (await p.next(isRequest)) as RequestFrame;
    const closing = a.close();
    await local.next(f => f.type === FrameType.GoAway);
    remote.send(request(2, 'work', DEADLINE_MS)); // B has not heard yet (its backplane lags): it forwards to A
    const crossed = (await p.next(isRequest)) as RequestFrame;
    expect(crossed.payload).toEqual(encodePayload(2));
    p.send({ type: FrameType.Response, id: crossed.id, flags: ResponseFlag.DONE, payload: encodePayload('served in the drain') });
    expect(await remote.next(answerTo(2))).toMatchObject({ type: FrameType.Response, payload: encodePayload('served in the drain') });
    p.send({ type: FrameType.Response, id: kept.id, flags: ResponseFlag.DONE, payload: encodePayload('kept') });
    await closing;
  });

  it('books no request on the sessions it has forgotten while its cluster stops: RELAY_UNAVAILABLE, answers dropped, nothing left after close', async () => {
    // Bug: a request arriving after the sessions were forgotten (the backplane still closing) went to a
    // provider through the drain's fallback; it was never answered and its timer outlived app.close().
    const r = await relay({ cluster: { backplane: new SlowCloseBackplane() } });
    const core = r.app.get(RelayCore);
    const provider = track(await RawNode.hello(r.url, 'p', { patterns: ['work'] }));
    const caller = track(await RawNode.hello(r.url, 'c'));
    const closing = r.close();
    await caller.next(f => f.type === FrameType.GoAway);
    await until(() => core.connectionCount === 0, 5000, 'the relay to forget its sessions');
    caller.send(request(1, 'work', DEADLINE_MS));
    expect(await caller.next(answerTo(1))).toMatchObject({ type: FrameType.Error, code: RelayErrorCode.RELAY_UNAVAILABLE });
    // An answer to work it was given is dropped quietly (nobody waits for it here); only work it asks for is refused.
    provider.send({ type: FrameType.Response, id: 77, flags: ResponseFlag.DONE, payload: encodePayload('late') });
    provider.send({ type: FrameType.Handled, id: 78, error: null });
    provider.send(request(5, 'work', DEADLINE_MS));
    expect(await provider.next(answerTo(5))).toMatchObject({ type: FrameType.Error, code: RelayErrorCode.RELAY_UNAVAILABLE });
    expect(provider.frames.filter(f => f.type === FrameType.Error)).toEqual([]);
    await closing;
    expect(provider.frames.filter(isRequest)).toEqual([]);
    expect(core.diagnostics().requests).toBe(0);
  });

  it('in its drain, sends a crossing request only for a pattern a moved-off provider may still serve after a token refresh', async () => {
    // Bug: the drain's stand-by table kept the patterns from before the refresh, so a request for a pattern
    // the new token withdrew still went to the provider.
    const r = await relay({ auth: AUTH, drainTimeoutMs: 10_000 });
    const p = track(
      await RawNode.hello(r.url, 'p', {
        ...(await bearer({ sub: 'p', claims: { ...SERVER, perms: { serve: ['a', 'b'] } } })),
        patterns: ['a', 'b'],
      }),
    );
    const caller = track(await RawNode.hello(r.url, 'c', await bearer({ sub: 'c', claims: CLIENT })));
    caller.send(request(1, 'a', DEADLINE_MS)); // keeps the drain going
    const kept = (await p.next(isRequest)) as RequestFrame;
    const closing = r.close();
    await caller.next(f => f.type === FrameType.GoAway);
    await refresh(p, await mint({ sub: 'p', claims: { ...SERVER, perms: { serve: ['a'] } } }));
    caller.send(request(2, 'b', DEADLINE_MS));
    expect(await caller.next(answerTo(2))).toMatchObject({ type: FrameType.Error, code: RelayErrorCode.RELAY_UNAVAILABLE });
    caller.send(request(3, 'a', DEADLINE_MS));
    const crossed = (await p.next(isRequest)) as RequestFrame;
    expect(crossed.payload).toEqual(encodePayload(3));
    for (const id of [crossed.id, kept.id])
      p.send({ type: FrameType.Response, id, flags: ResponseFlag.DONE, payload: encodePayload('ok') });
    expect(await caller.next(answerTo(3))).toMatchObject({ type: FrameType.Response });
    await closing;
  });
});
