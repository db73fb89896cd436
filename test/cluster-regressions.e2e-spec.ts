/**
 * Regressions of the relay cluster found in review (each test names the bug
 * it pins in its first comment): node-id races that left ghost claims,
 * node-id bindings that held on one relay only, a token refresh that failed
 * cross-relay calls, a stalled publisher the relay did not notice, stale
 * publishes re-sent after an outage, a peer's callers left waiting out a
 * blip, a RedisBackplane.close() that hung, a custom backplane that never
 * joined, and a relay that came back as a ghost after its BYE.
 *
 * Relays run in this process (in-memory hub, or Redis: a redis-server of the
 * suite's own, reached directly or through a proxy a test can cut or stall)
 * on 127.0.0.1:0, and nodes speak the protocol through raw sockets.
 */
import {
  decodePayload,
  encodePayload,
  type Frame,
  FrameType,
  type NodeInfo,
  RelayErrorCode,
  RelayErrorMessages,
  ResponseFlag,
} from '@wsrelay/protocol';
import {
  type Backplane,
  type BackplaneListener,
  InMemoryBackplane,
  InMemoryHub,
  RedisBackplane,
  type RelayModuleOptions,
  RelayCore,
} from '@wsrelay/relay';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { CLUSTER_AUTH, CLUSTER_TIMING } from './support/cluster.js';
import { answerTo, isRequest, request } from './support/frames.js';
import { type RunningRelay, settlesWithin, startRelay, until, untilAsync, useCleanup } from './support/harness.js';
import { claim as claimNode, RawNode } from './support/raw-node.js';
import { CutOffProxy, freePort, useTestRedis, tieSockets } from './support/redis.js';
import { bearer, mint, SERVER } from './support/tokens.js';

/** Room for timers and the event loop on a busy 2-core machine. */
const SLACK_MS = 750;
/** How long a relay may go on taking a broken backplane for a working one: its own heartbeat is missed after the timeout, noticed at the next tick. */
const UNHEALTHY_BOUND_MS = CLUSTER_TIMING.timeoutMs + CLUSTER_TIMING.heartbeatIntervalMs + SLACK_MS;

const CONFLICT = 4409;

/** Upgrade options with a server token of subject `sub`. */
const serverToken = (sub: string, claims: Record<string, unknown> = {}) => bearer({ sub, claims: { ...SERVER, ...claims } });

const answerOf = (f: Frame) => (f.type === FrameType.Error || f.type === FrameType.Response) && f.id !== 0;

describe('cluster regressions', () => {
  const { add, track } = useCleanup();
  const redis = useTestRedis();

  /** A relay closed after the test (its close() runs once, even when the test closed it). */
  async function relay(options: RelayModuleOptions): Promise<RunningRelay> {
    const r = await startRelay({ auth: CLUSTER_AUTH, ...options });
    add(r.close);
    return r;
  }

  /** `n` relays on one in-memory hub, once each sees all the others. */
  async function memCluster(
    n: number,
    options: RelayModuleOptions = {},
    backplane: (hub: InMemoryHub) => Backplane = hub => new InMemoryBackplane(hub),
  ): Promise<RunningRelay[]> {
    const hub = new InMemoryHub();
    const relays = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        relay({ relayId: `m${i}`, cluster: { backplane: backplane(hub), ...CLUSTER_TIMING }, ...options }),
      ),
    );
    await meshed(relays);
    return relays;
  }

  /** Two relays on the suite's Redis (a channel prefix of their own): A through `aVia`, B through `bVia` (default: directly). */
  async function redisPair(aVia?: string, bVia?: string): Promise<[RunningRelay, RunningRelay]> {
    const settings = { channelPrefix: `wsrelay-regress-${randomBytes(4).toString('hex')}`, ...CLUSTER_TIMING };
    const a = await relay({ relayId: 'A', cluster: { redis: aVia ?? redis.url, ...settings } });
    const b = await relay({ relayId: 'B', cluster: { redis: bVia ?? redis.url, ...settings } });
    await meshed([a, b]);
    return [a, b];
  }

  const cluster = (r: RunningRelay) => r.app.get(RelayCore).status().cluster;

  function meshed(relays: RunningRelay[]): Promise<void> {
    return until(
      () => relays.every(r => cluster(r).healthy && cluster(r).relays.length === relays.length - 1),
      10_000,
      'the relays to see each other',
    );
  }

  /** A raw node with `sub`'s token that claims `nodeId`: its socket and the relay's answer (WELCOME or ERROR). */
  async function claim(url: string, nodeId: string, sub: string, patterns: string[] = []): Promise<{ node: RawNode; answer: Frame }> {
    const claimed = await claimNode(url, nodeId, { ...(await serverToken(sub)), patterns });
    track(claimed.node);
    return claimed;
  }

  async function node(url: string, nodeId: string, sub: string, o: { patterns?: string[]; claims?: Record<string, unknown> } = {}) {
    return track(await RawNode.hello(url, nodeId, { ...(await serverToken(sub, o.claims)), patterns: o.patterns }));
  }

  let discoverId = 1000;
  /** Asks `caller`'s relay for its nodes until `done` holds of them (presence travels with no event a test can wait on). */
  async function discoverUntil(caller: RawNode, done: (nodes: NodeInfo[]) => boolean, what: string, timeoutMs = 5000): Promise<NodeInfo[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const id = ++discoverId;
      caller.send({ type: FrameType.Discover, id });
      const { nodes } = (await caller.next(f => f.type === FrameType.Nodes && f.id === id)) as { nodes: NodeInfo[] };
      if (done(nodes)) return nodes;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; the relay knows ${JSON.stringify(nodes)}`);
      await new Promise(r => setTimeout(r, 20));
    }
  }
  const ids = (nodes: NodeInfo[]) => nodes.map(n => n.nodeId).sort();

  /** The provider answers the next request it gets with `value`. */
  async function answer(provider: RawNode, value: unknown): Promise<void> {
    const req = (await provider.next(isRequest)) as { id: number };
    provider.send({ type: FrameType.Response, id: req.id, flags: ResponseFlag.DONE, payload: encodePayload(value) });
  }

  /** WAIT until `pattern` is served, as `caller`'s relay sees it. */
  async function served(caller: RawNode, pattern: string, id: number): Promise<void> {
    caller.send({ type: FrameType.Wait, id, pattern, timeoutMs: 5000 });
    expect(await caller.next(answerTo(id))).toMatchObject({ type: FrameType.Ack });
  }

  /**
   * A node-id race: X (subject s1, serving 'p') is accepted on relay m0 and,
   * a moment later, on relay m1, before either hears of the other (the
   * backplane is held). m0's claim is older and wins; m1's loses. The third
   * relay, m2, hears `heardFirst`'s claim first.
   */
  async function nodeIdRace(heardFirst: 'winner' | 'loser') {
    const gate = new Gate();
    const relays = await memCluster(3, { nodeIdReservationMs: 200 }, hub => new GatedBackplane(hub, gate));
    const callers = await Promise.all(relays.map((r, i) => node(r.url, `caller-${i}`, `caller-${i}`)));
    gate.hold();
    const first = await claim(relays[0].url, 'X', 's1', ['p']);
    // The second claim is newer by at least a millisecond (a tie would go by the relays' random instance ids).
    const acceptedAt = Date.now();
    while (Date.now() <= acceptedAt) await new Promise(resolve => setImmediate(resolve));
    const second = await claim(relays[1].url, 'X', 's1', ['p']);
    expect([first.answer.type, second.answer.type]).toEqual([FrameType.Welcome, FrameType.Welcome]);
    gate.release(cluster(relays[heardFirst === 'winner' ? 0 : 1]).instanceId);

    const { code } = await second.node.closed();
    expect(code).toBe(CONFLICT);
    expect(second.node.frames).toContainEqual({
      type: FrameType.Error,
      id: 0,
      code: RelayErrorCode.NODE_ID_CONFLICT,
      message: RelayErrorMessages.nodeIdConflict('X'),
    });
    // Every relay routes X to the winner.
    for (const [i, caller] of callers.entries()) {
      await served(caller, 'p', 100 + i);
      caller.send(request(i + 1, 'p'));
      await answer(first.node, `winner for ${i}`);
      expect(await caller.next(answerOf)).toMatchObject({ type: FrameType.Response, id: i + 1 });
    }
    expect(first.node.closeCode).toBeUndefined();
    return { relays, callers, winner: first.node };
  }

  /** What a call for 'p' gets from each caller's relay: [relay, error message]. */
  async function offlineEverywhere(callers: RawNode[]): Promise<Array<[string, string]>> {
    const out: Array<[string, string]> = [];
    for (const [i, caller] of callers.entries()) {
      caller.send(request(10 + i, 'p'));
      const reply = await caller.next(answerOf);
      out.push([`m${i}`, reply.type === FrameType.Error ? reply.message : `a response (${FrameType[reply.type]})`]);
    }
    return out;
  }

  it('withdraws the loser of a node-id race from every relay, so the id can be taken again', async () => {
    // Bug (ghost): two relays accepted the same node id at once; the newer claim was closed with NODE_ID_CONFLICT
    // but stayed in the other relays' presence: discovery listed it, calls to it failed, and nobody could take the id again.
    const { relays, callers, winner } = await nodeIdRace('winner');

    // The winner leaves: X is gone everywhere (no claim of the loser's left behind).
    winner.close();
    for (const caller of callers) await discoverUntil(caller, nodes => !ids(nodes).includes('X'), 'X to leave presence', 3000);
    expect(await offlineEverywhere(callers)).toEqual(callers.map((_, i) => [`m${i}`, RelayErrorMessages.microserviceOffline('p')]));

    // Its owner takes X again, on the third relay, and the loser's relay routes to it.
    const again = await claim(relays[2].url, 'X', 's1', ['p']);
    expect(again.answer).toMatchObject({ type: FrameType.Welcome, nodeId: 'X', relayId: 'm2' });
    await served(callers[1], 'p', 20);
    callers[1].send(request(21, 'p', 5000, { peer: 'X' }));
    await answer(again.node, 'back');
    const reply = await callers[1].next(answerOf);
    expect(reply).toMatchObject({ type: FrameType.Response, id: 21 });
    expect(decodePayload((reply as { payload: Uint8Array }).payload)).toBe('back');

    // Once it leaves, the loser's reservation does not outlive the 200 ms either: another subject gets X on the loser's relay.
    again.node.close();
    await discoverUntil(callers[1], nodes => !ids(nodes).includes('X'), 'X to leave presence again', 3000);
    let taken: Frame | undefined;
    await untilAsync(
      async () => (taken = (await claim(relays[1].url, 'X', 's2', ['p'])).answer).type === FrameType.Welcome,
      3000,
      'another subject to take X',
    );
    expect(taken).toMatchObject({ type: FrameType.Welcome, nodeId: 'X', relayId: 'm1' });
  });

  it("routes nothing to a node-id race's claims once they are gone, on a relay that heard the losing claim first", async () => {
    // Bug (ghost): a relay that heard the losing claim of a node-id race before the winning one kept a ghost of the
    // race in its routing: once the winner had left, discovery no longer listed X, yet calls for its pattern still went to it.
    const { callers, winner } = await nodeIdRace('loser');
    winner.close();
    for (const caller of callers) await discoverUntil(caller, nodes => !ids(nodes).includes('X'), 'X to leave presence', 3000);
    expect(await offlineEverywhere(callers)).toEqual(callers.map((_, i) => [`m${i}`, RelayErrorMessages.microserviceOffline('p')]));
  });

  it('binds a node id to its token subject on every relay, not only the one it was claimed on', async () => {
    // Bug (reserve): the binding of a node id to its token subject was per relay, so after X (subject s1) left relay A,
    // a node of subject s2 could take X through relay B, receive requests meant for X, and lock s1 out of its own id.
    const [a, b] = await memCluster(2);
    const callerOnB = await node(b.url, 'caller-b', 'caller-b');
    const x = await node(a.url, 'X', 's1', { patterns: ['p'] });
    await discoverUntil(callerOnB, nodes => ids(nodes).includes('X'), 'relay B to know X');
    x.close();
    await discoverUntil(callerOnB, nodes => !ids(nodes).includes('X'), 'relay B to see X leave');

    for (const r of [b, a]) {
      const thief = await claim(r.url, 'X', 's2', ['p']);
      expect(thief.answer).toEqual({
        type: FrameType.Error,
        id: 0,
        code: RelayErrorCode.NODE_ID_CONFLICT,
        message: RelayErrorMessages.nodeIdOwned('X'),
      });
      expect((await thief.node.closed()).code).toBe(CONFLICT);
    }

    // Its owner may come back through either relay; requests for X reach it.
    const back = await claim(b.url, 'X', 's1', ['p']);
    expect(back.answer).toMatchObject({ type: FrameType.Welcome, nodeId: 'X', relayId: 'm1' });
    const callerOnA = await node(a.url, 'caller-a', 'caller-a');
    await served(callerOnA, 'p', 1);
    callerOnA.send(request(2, 'p', 5000, { peer: 'X' }));
    await answer(back.node, 'owner');
    expect(await callerOnA.next(answerOf)).toMatchObject({ type: FrameType.Response, id: 2 });
  });

  it('keeps a cross-relay call in flight when a token refresh withdraws another pattern of its provider', async () => {
    // Bug (reserve): a token refresh that withdrew one pattern re-announced the provider, and other relays took that for a new
    // claim: calls from there in flight on a pattern it still served failed at once with PROVIDER_DISCONNECTED.
    const [a, b] = await memCluster(2);
    const provider = await node(b.url, 'prov', 'prov', { patterns: ['a', 'b'], claims: { perms: { serve: ['a', 'b'] } } });
    const caller = await node(a.url, 'caller', 'caller');
    await served(caller, 'a', 9);
    caller.send(request(1, 'a', 10_000));
    const inFlight = (await provider.next(isRequest)) as { id: number };

    const narrower = await mint({ sub: 'prov', claims: { ...SERVER, perms: { serve: ['a'] } } });
    provider.send({ type: FrameType.Auth, token: new TextEncoder().encode(narrower) });
    await provider.next(f => f.type === FrameType.Authorized);
    // Relay A has heard of the refresh once it no longer lists 'b' for the provider.
    await discoverUntil(caller, nodes => nodes.some(n => n.nodeId === 'prov' && n.patterns.join() === 'a'), "relay A to see 'b' withdrawn");

    provider.send({ type: FrameType.Response, id: inFlight.id, flags: ResponseFlag.DONE, payload: encodePayload('answer') });
    const reply = await caller.next(f => answerOf(f) && (f as { id: number }).id === 1);
    expect(reply).toMatchObject({ type: FrameType.Response, id: 1, flags: ResponseFlag.DONE });
    expect(decodePayload((reply as { payload: Uint8Array }).payload)).toBe('answer');

    // Routing follows the refresh: 'b' is offline from relay A, 'a' still reaches the provider.
    caller.send(request(2, 'b'));
    expect(await caller.next(answerOf)).toMatchObject({ type: FrameType.Error, id: 2, code: RelayErrorCode.MICROSERVICE_OFFLINE });
    caller.send(request(3, 'a'));
    await answer(provider, 'still');
    expect(await caller.next(answerOf)).toMatchObject({ type: FrameType.Response, id: 3 });
    expect(provider.frames.filter(f => f.type === FrameType.Cancel)).toEqual([]);
  });

  it('turns unhealthy when only its publishing connection stalls, and fails calls fast instead of letting them time out', async () => {
    // Bug (pubstall): with the publishing Redis connection stalled and the subscribing one fine, a relay kept hearing the
    // others, stayed "healthy" and forwarded calls into the stall: each one timed out after its whole deadline.
    const stall = await PublisherStall.start(redis.url);
    add(() => stall.close());
    const [a, b] = await redisPair(stall.url);
    const provider = await node(b.url, 'prov', 'prov', { patterns: ['p'] });
    const caller = await node(a.url, 'caller', 'caller');
    await served(caller, 'p', 1);

    stall.stall();
    await until(() => !cluster(a).healthy, UNHEALTHY_BOUND_MS, 'relay A to notice its publisher stalled');
    // Peers are ignored while unhealthy, though the subscriber still hears them.
    expect(cluster(a).relays).toEqual([]);

    const sentAt = Date.now();
    caller.send(request(2, 'p'));
    expect(await caller.next(answerOf)).toMatchObject({
      type: FrameType.Error,
      id: 2,
      code: RelayErrorCode.MICROSERVICE_OFFLINE,
      message: RelayErrorMessages.microserviceOffline('p'),
    });
    expect(Date.now() - sentAt).toBeLessThan(1000);
    expect(provider.frames.filter(isRequest)).toEqual([]);

    // The stall ends: the cluster comes back by itself and calls cross again.
    stall.unstall();
    await meshed([a, b]);
    await served(caller, 'p', 3);
    caller.send(request(4, 'p'));
    await answer(provider, 'across');
    expect(await caller.next(answerOf)).toMatchObject({ type: FrameType.Response, id: 4 });
  });

  it('does not re-send after an outage what it published before it', async () => {
    // Bug (resend): ioredis re-sent, once Redis was back, publishes it had written before the outage and never had
    // confirmed: requests long given up on arrived stale at the other relay.
    const proxy = await CutOffProxy.start(redis.url);
    add(() => proxy.close());
    const prefix = `wsrelay-regress-${randomBytes(4).toString('hex')}`;
    const a = new RedisBackplane({ redis: proxy.url, channelPrefix: prefix });
    const b = new RedisBackplane({ redis: redis.url, channelPrefix: prefix });
    add(
      () => a.close(),
      () => b.close(),
    );
    const aUp: boolean[] = [];
    const heardByB: string[] = [];
    await a.start('a', { message: () => undefined, connection: up => aUp.push(up) });
    await b.start('b', { message: m => heardByB.push(Buffer.from(m).toString()), connection: () => undefined });
    await until(() => aUp.at(-1) === true, 5000, 'backplane a to connect');
    // B's subscription is live once it hears itself (what it publishes before that is lost).
    await untilAsync(
      async () => {
        b.send('b', Buffer.from('self'));
        return heardByB.includes('self');
      },
      5000,
      'backplane b to hear itself',
    );

    a.send('b', Buffer.from('before'));
    await until(() => heardByB.includes('before'), 5000, "b to hear a's first message");
    proxy.freeze();
    a.send('b', Buffer.from('stale'));
    // Written to the stalled connection (the flush is on the next tick), never confirmed.
    await new Promise(resolve => setImmediate(resolve));
    await proxy.cut();
    await until(() => aUp.at(-1) === false, 5000, 'backplane a to report the outage');
    await proxy.restore();
    await until(() => aUp.at(-1) === true, 5000, 'backplane a to reconnect');
    a.send('b', Buffer.from('after'));
    await until(() => heardByB.includes('after'), 5000, "b to hear a's message after the outage");
    expect(heardByB.filter(m => m !== 'self')).toEqual(['before', 'after']);
    // (A false before the first true is the contract's "cannot publish yet" at start.)
    expect(aUp.slice(aUp.indexOf(true))).toEqual([true, false, true]);
  });

  it("fails a peer's calls in flight at once when one relay briefly loses Redis and drops that peer on its own", async () => {
    // Bug (blip): relay B lost Redis for a moment, dropped relay A (and cancelled what A had forwarded to it), and came
    // back before A noticed anything: A's callers waited for their whole deadline for answers B would never send.
    const proxy = await CutOffProxy.start(redis.url);
    add(() => proxy.close());
    const [a, b] = await redisPair(undefined, proxy.url);
    const provider = await node(b.url, 'prov', 'prov', { patterns: ['slow'] });
    const caller = await node(a.url, 'caller', 'caller');
    await served(caller, 'slow', 1);
    const sentAt = Date.now();
    caller.send(request(2, 'slow', 8000));
    const inFlight = (await provider.next(isRequest)) as { id: number };

    await proxy.cut();
    await until(() => !cluster(b).healthy, 5000, 'relay B to notice the cut');
    await proxy.restore();

    // B let go of the call (its provider is told) and A's caller hears at once, not at the deadline.
    expect(await provider.next(f => f.type === FrameType.Cancel, 5000)).toEqual({ type: FrameType.Cancel, id: inFlight.id });
    expect(await caller.next(answerOf, 8000)).toMatchObject({
      type: FrameType.Error,
      id: 2,
      code: RelayErrorCode.PROVIDER_DISCONNECTED,
      message: RelayErrorMessages.providerDisconnected('slow'),
    });
    expect(Date.now() - sentAt).toBeLessThan(4000);

    // The cluster is whole again: a new call crosses.
    await meshed([a, b]);
    await served(caller, 'slow', 3);
    caller.send(request(4, 'slow'));
    await answer(provider, 'after the blip');
    expect(await caller.next(answerOf)).toMatchObject({ type: FrameType.Response, id: 4 });
  });

  it('closes a RedisBackplane at once when Redis was never reachable', async () => {
    // Bug (closehang): close() waited forever for a QUIT queued behind a connection that never came up.
    const backplane = new RedisBackplane({ redis: `redis://127.0.0.1:${await freePort()}` });
    const ups: boolean[] = [];
    await backplane.start('never', { message: () => undefined, connection: up => ups.push(up) });
    const started = Date.now();
    expect(await settlesWithin(backplane.close(), 3000)).toBe('settled');
    expect(Date.now() - started).toBeLessThan(1000);
    // The contract: start() resolved having said that it could not publish yet; it never connected.
    expect(ups).toEqual([false]);
  });

  it('closes a RedisBackplane at once when Redis stalls', async () => {
    // Bug (closestall): close() waited forever for Redis to answer QUIT over a connection that moved no bytes.
    const proxy = await CutOffProxy.start(redis.url);
    add(() => proxy.close());
    const backplane = new RedisBackplane({ redis: proxy.url, channelPrefix: `wsrelay-regress-${randomBytes(4).toString('hex')}` });
    const ups: boolean[] = [];
    await backplane.start('stalled', { message: () => undefined, connection: up => ups.push(up) });
    await until(() => ups.at(-1) === true, 5000, 'the backplane to connect');
    proxy.freeze();
    const started = Date.now();
    expect(await settlesWithin(backplane.close(), 3000)).toBe('settled');
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('lets a custom backplane that follows the documented contract join the cluster', async () => {
    // Bug (custom): a relay only took the built-in backplanes for connected; one of the application's own, resolving
    // start() once it could publish as the Backplane contract says, never made its relay healthy nor met the others.
    const relays = await memCluster(2, {}, hub => new WrappedBackplane(new InMemoryBackplane(hub)));
    for (const [i, r] of relays.entries()) {
      expect(cluster(r)).toMatchObject({
        backplane: 'wrapped',
        healthy: true,
        relays: [expect.objectContaining({ relayId: `m${1 - i}` })],
      });
    }
    const provider = await node(relays[1].url, 'prov', 'prov', { patterns: ['p'] });
    const caller = await node(relays[0].url, 'caller', 'caller');
    await served(caller, 'p', 1);
    caller.send(request(2, 'p'));
    await answer(provider, 'through a custom backplane');
    expect(await caller.next(answerOf)).toMatchObject({ type: FrameType.Response, id: 2 });
  });

  it('does not come back as a ghost on its peers after it said BYE', async () => {
    // Bug (bye): a closing relay published BYE and then the NODE_DOWN of its nodes; its peers took that NODE_DOWN from
    // an unknown relay for a new one and listed a ghost relay (named by its instance id) until it timed out.
    const [a, b] = await memCluster(2);
    const leaving = await node(a.url, 'n1', 'n1');
    const callerOnB = await node(b.url, 'caller', 'caller');
    await discoverUntil(callerOnB, nodes => ids(nodes).includes('n1'), 'relay B to know n1');

    const seen: string[][] = [];
    const sample = () => seen.push(cluster(b).relays.map(r => r.relayId));
    sample();
    const watch = setInterval(sample, 5);
    add(() => clearInterval(watch));
    const closingAt = Date.now();
    await a.close();
    await leaving.closed();
    await until(() => cluster(b).relays.length === 0, 3000, 'relay B to see relay A leave');
    // Dropped on its BYE, not for its silence (the ghost left only at the timeout).
    expect(Date.now() - closingAt).toBeLessThan(CLUSTER_TIMING.timeoutMs);
    // "Nothing comes back" has no event to wait on: B is watched for two heartbeats more.
    await new Promise(r => setTimeout(r, 2 * CLUSTER_TIMING.heartbeatIntervalMs));
    clearInterval(watch);
    expect([...new Set(seen.flat())]).toEqual(['m0']);
    const firstEmpty = seen.findIndex(relays => relays.length === 0);
    expect(firstEmpty).toBeGreaterThanOrEqual(0);
    expect(seen.slice(firstEmpty).filter(relays => relays.length > 0)).toEqual([]);
    expect(cluster(b)).toMatchObject({ healthy: true, relays: [] });
    expect(ids(await discoverUntil(callerOnB, () => true, 'discovery'))).toEqual(['caller']);
  });
});

/** Holds every message of the backplanes that share it, then lets them through (each sender's in order). */
class Gate {
  private queue: Array<{ from: string; deliver: () => void }> | undefined;

  hold(): void {
    this.queue ??= [];
  }

  /** Lets the held messages through, those of relay instance `first` before the others'. */
  release(first: string): void {
    const queue = this.queue ?? [];
    this.queue = undefined;
    for (const m of [...queue.filter(m => m.from === first), ...queue.filter(m => m.from !== first)]) m.deliver();
  }

  run(from: string, deliver: () => void): void {
    if (this.queue === undefined) deliver();
    else this.queue.push({ from, deliver });
  }
}

/** The in-memory backplane, whose messages a Gate can hold (to let two relays accept one node id before they hear of it). */
class GatedBackplane extends InMemoryBackplane {
  private me = '';

  constructor(
    hub: InMemoryHub,
    private readonly gate: Gate,
  ) {
    super(hub);
  }

  override start(self: string, listener: BackplaneListener): Promise<void> {
    this.me = self;
    return super.start(self, listener);
  }

  override publish(message: Uint8Array): void {
    const copy = message.slice();
    this.gate.run(this.me, () => super.publish(copy));
  }

  override send(relay: string, message: Uint8Array): void {
    const copy = message.slice();
    this.gate.run(this.me, () => super.send(relay, copy));
  }
}

/** An application's own backplane, as the documentation describes one (here around the in-memory one). */
class WrappedBackplane implements Backplane {
  readonly description = 'wrapped';

  constructor(private readonly inner: Backplane) {}

  start(self: string, listener: BackplaneListener): Promise<void> {
    return this.inner.start(self, listener);
  }

  publish(message: Uint8Array): void {
    this.inner.publish(message);
  }

  send(relay: string, message: Uint8Array): void {
    this.inner.send(relay, message);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/**
 * A TCP proxy in front of Redis that can stall publishing connections only
 * (those that have sent a PUBLISH) and leave subscribers flowing. While
 * stalled, a publisher's bytes are swallowed both ways over an open
 * connection, the ones it opens later included.
 */
class PublisherStall {
  private stalled = false;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(targetUrl: string): Promise<PublisherStall> {
    const target = new URL(targetUrl);
    const server = createServer();
    const proxy = new PublisherStall(server, `redis://127.0.0.1:${await freePort()}`);
    server.on('connection', client => proxy.accept(client, Number(target.port), target.hostname));
    server.listen(Number(new URL(proxy.url).port), '127.0.0.1');
    await once(server, 'listening');
    return proxy;
  }

  stall(): void {
    this.stalled = true;
  }

  unstall(): void {
    this.stalled = false;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise(resolve => this.server.close(resolve));
  }

  private accept(client: Socket, port: number, host: string): void {
    const upstream = connect(port, host);
    let publisher = false;
    tieSockets(client, upstream, this.sockets);
    client.on('data', (d: Buffer) => {
      // ioredis names commands in lower case.
      if (!publisher && /publish/i.test(d.toString('latin1'))) publisher = true;
      if (!(this.stalled && publisher)) upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      if (!(this.stalled && publisher)) client.write(d);
    });
  }
}
