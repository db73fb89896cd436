/**
 * The relay's hot path: once the gateway's guards have let a REQUEST, EVENT,
 * RESPONSE or CANCEL of some kind and pattern through on a connection, the
 * next ones are routed without Nest's per-message pipeline. These pin that the
 * shortcut never outlives the guards' verdict (a token refresh that narrows
 * the permissions is obeyed at once) and never grants what they refused; and
 * the heartbeat that pings only silent nodes, yet still finds a frozen one
 * within two intervals. And that a frame on the hot path never overtakes an
 * earlier frame of its connection still in the pipeline.
 */
import { encodePayload, type Frame, FrameType, RelayErrorCode, ResponseFlag } from '@wsrelay/protocol';
import { RelayCore } from '@wsrelay/relay';
import WebSocket from 'ws';
import { isRequest, request } from './support/frames.js';
import { type RunningRelay, startRelay } from './support/harness.js';
import { helloFrame, RawNode } from './support/raw-node.js';
import { AUDIENCE, bearer, CLIENT, ISSUER, mint, SECRET, SERVER } from './support/tokens.js';

const hs = { secret: SECRET, issuer: ISSUER, audience: AUDIENCE };
const tokenOf = (sub: string, claims: Record<string, unknown>) => bearer({ sub, claims });

function event(id: number, pattern: string): Frame {
  return { type: FrameType.Event, id, pattern, payload: encodePayload(id), peer: null, ext: null, claims: null };
}

describe('hot path', () => {
  let relay: RunningRelay;
  let provider: RawNode;
  let subscriber: RawNode;

  beforeAll(async () => {
    relay = await startRelay({ auth: hs });
    provider = await RawNode.hello(relay.url, 'hot-provider', { ...(await tokenOf('provider', SERVER)), patterns: ['a', 'b'] });
    subscriber = await RawNode.hello(relay.url, 'hot-subscriber', { ...(await tokenOf('subscriber', SERVER)), events: ['e.>'] });
  });

  afterAll(async () => {
    provider.close();
    subscriber.close();
    await relay.close();
  });

  /** The provider answers the next request it gets with `value`; resolves with the relay's id for it. */
  async function answerNext(value: unknown): Promise<number> {
    const req = (await provider.next(isRequest)) as { id: number };
    provider.send({ type: FrameType.Response, id: req.id, flags: ResponseFlag.DONE, payload: encodePayload(value) });
    return req.id;
  }

  it('obeys a token refresh that narrows permissions at once, for calls and emits already routed on the hot path', async () => {
    const caller = await RawNode.hello(
      relay.url,
      'narrowed',
      await tokenOf('narrowed', { ...CLIENT, perms: { call: ['a', 'b'], publish: ['e.>'] } }),
    );
    // Three of each, so the later ones take the hot path.
    for (let id = 1; id <= 3; id++) {
      caller.send(request(id, 'a'));
      await answerNext(id);
      expect(await caller.next(f => f.type === FrameType.Response)).toMatchObject({ id });
      caller.send(event(100 + id, 'e.x'));
      expect(await caller.next(f => f.type === FrameType.Ack)).toEqual({ type: FrameType.Ack, id: 100 + id, recipients: 1 });
    }
    const narrower = await mint({ sub: 'narrowed', claims: { ...CLIENT, perms: { call: ['b'], publish: [] } } });
    caller.send({ type: FrameType.Auth, token: new TextEncoder().encode(narrower) });
    await caller.next(f => f.type === FrameType.Authorized);

    caller.send(request(4, 'a'));
    expect(await caller.next(f => f.type === FrameType.Error)).toMatchObject({ id: 4, code: RelayErrorCode.FORBIDDEN });
    caller.send(event(104, 'e.x'));
    expect(await caller.next(f => f.type === FrameType.Error)).toMatchObject({ id: 104, code: RelayErrorCode.FORBIDDEN });
    caller.send(request(5, 'b'));
    await answerNext('b');
    expect(await caller.next(f => f.type === FrameType.Response)).toMatchObject({ id: 5 });
    expect(provider.frames.filter(isRequest)).toEqual([]);
    caller.close();
  });

  it('keeps refusing what the guards refused, however often it is sent', async () => {
    const passive = await RawNode.hello(relay.url, 'passive', await tokenOf('passive', { ...CLIENT, perms: { call: ['a'] } }));
    for (let id = 1; id <= 3; id++) {
      passive.send({ type: FrameType.Response, id, flags: ResponseFlag.DONE, payload: encodePayload('forged') });
      expect(await passive.next(f => f.type === FrameType.Error)).toMatchObject({ code: RelayErrorCode.FORBIDDEN });
      passive.send(request(10 + id, 'b'));
      expect(await passive.next(f => f.type === FrameType.Error)).toMatchObject({ id: 10 + id, code: RelayErrorCode.FORBIDDEN });
    }
    expect(provider.frames.filter(isRequest)).toEqual([]);
    passive.close();
  });

  it('answers hot-path failures with the same typed errors as the gateway path', async () => {
    const caller = await RawNode.hello(relay.url, 'dup', await tokenOf('dup', { ...CLIENT, perms: { call: ['a', 'nobody'] } }));
    caller.send(request(1, 'a'));
    const rid = await answerNext(1);
    await caller.next(f => f.type === FrameType.Response);
    // Now on the hot path: a pattern nobody serves, and a duplicate id.
    caller.send(request(2, 'nobody'));
    caller.send(request(2, 'nobody'));
    expect(await caller.next(f => f.type === FrameType.Error)).toMatchObject({ id: 2, code: RelayErrorCode.MICROSERVICE_OFFLINE });
    expect(await caller.next(f => f.type === FrameType.Error)).toMatchObject({ id: 2, code: RelayErrorCode.MICROSERVICE_OFFLINE });
    caller.send(request(3, 'a'));
    caller.send(request(3, 'a'));
    expect(await caller.next(f => f.type === FrameType.Error)).toMatchObject({ id: 3, code: RelayErrorCode.BAD_FRAME });
    await answerNext(3);
    expect(await caller.next(f => f.type === FrameType.Response)).toMatchObject({ id: 3 });
    // A late answer to a settled request is dropped and counted.
    const router = relay.app.get(RelayCore);
    const dropped = router.diagnostics().droppedFrames;
    provider.send({ type: FrameType.Response, id: rid, flags: ResponseFlag.DONE, payload: encodePayload('late') });
    provider.send({ type: FrameType.Ping });
    await provider.next(f => f.type === FrameType.Pong);
    expect(router.diagnostics().droppedFrames).toBe(dropped + 1);
    caller.close();
  });
});

describe('heartbeat', () => {
  const INTERVAL = 300;
  let relay: RunningRelay;

  beforeAll(async () => {
    relay = await startRelay({ heartbeatIntervalMs: INTERVAL });
  });

  afterAll(async () => {
    await relay.close();
  });

  it('does not ping a node that pings every interval, and keeps it', async () => {
    const node = await RawNode.hello(relay.url, 'pinger');
    let relayPings = 0;
    node.socket.on('ping', () => relayPings++);
    const timer = setInterval(() => node.socket.ping(), INTERVAL * 0.9);
    let pongs = 0;
    node.socket.on('pong', () => pongs++);
    await new Promise<void>(resolve => node.socket.on('pong', () => pongs >= 8 && resolve()));
    clearInterval(timer);
    expect(relayPings).toBe(0);
    expect(node.closeCode).toBeUndefined();
    node.close();
  });

  it('pings a node that stays silent, which stays as long as it answers', async () => {
    const node = await RawNode.hello(relay.url, 'silent');
    let relayPings = 0;
    await new Promise<void>(resolve => node.socket.on('ping', () => ++relayPings >= 3 && resolve()));
    expect(node.closeCode).toBeUndefined();
    node.close();
  });

  it('drops a node that answers nothing within two intervals of its last frame', async () => {
    const frozen = new WebSocket(relay.url, { autoPong: false });
    const node = await new Promise<RawNode>(resolve => frozen.once('open', () => resolve(RawNode.wrap(frozen))));
    node.send(helloFrame('frozen'));
    await node.next(f => f.type === FrameType.Welcome);
    const lastFrameAt = Date.now();
    await node.closed(10 * INTERVAL);
    const silentFor = Date.now() - lastFrameAt;
    expect(silentFor).toBeGreaterThanOrEqual(INTERVAL);
    // Two intervals, plus room for timers on a busy machine.
    expect(silentFor).toBeLessThan(2 * INTERVAL + INTERVAL / 3);
  });
});

describe('hot path ordering', () => {
  let relay: RunningRelay;
  let provider: RawNode;
  let subscriber: RawNode;

  beforeAll(async () => {
    relay = await startRelay({ auth: hs });
    provider = await RawNode.hello(relay.url, 'order-provider', { ...(await tokenOf('order-provider', SERVER)), patterns: ['a', 'b'] });
    subscriber = await RawNode.hello(relay.url, 'order-subscriber', { ...(await tokenOf('order-subscriber', SERVER)), events: ['e.>'] });
  });

  afterAll(async () => {
    provider.close();
    subscriber.close();
    await relay.close();
  });

  /** Sends `frames` in one TCP write, so the relay reads them in one chunk and handles them back to back. */
  function together(node: RawNode, frames: Frame[]): void {
    const tcp = node.tcp!;
    tcp.cork();
    for (const f of frames) node.send(f);
    process.nextTick(() => tcp.uncork());
  }

  it('cancels at the provider a request whose CANCEL follows it at once, the first request of its pattern', async () => {
    // Bug (hot): CANCEL, already on the hot path, overtook the first REQUEST of a new pattern while that one was still in
    // Nest's pipeline: the relay dropped the CANCEL as unknown, then routed the request, and the provider was never cancelled.
    const caller = await RawNode.hello(
      relay.url,
      'order-caller',
      await tokenOf('order-caller', { ...CLIENT, perms: { call: ['a', 'b'] } }),
    );
    // Puts CANCEL on the hot path (and REQUEST for 'a', not for 'b').
    caller.send(request(1, 'a'));
    const first = (await provider.next(isRequest)) as { id: number };
    caller.send({ type: FrameType.Cancel, id: 1 });
    expect(await provider.next(f => f.type === FrameType.Cancel)).toEqual({ type: FrameType.Cancel, id: first.id });
    const router = relay.app.get(RelayCore);
    const dropped = router.diagnostics().droppedFrames;

    together(caller, [request(2, 'b'), { type: FrameType.Cancel, id: 2 }]);
    const second = await provider.next(isRequest);
    expect(second).toMatchObject({ pattern: 'b' });
    expect(await provider.next(f => f.type === FrameType.Cancel, 2000)).toEqual({
      type: FrameType.Cancel,
      id: (second as { id: number }).id,
    });
    expect(router.diagnostics().droppedFrames).toBe(dropped);
    // The cancelled call is settled quietly: the caller hears nothing of it.
    caller.send({ type: FrameType.Ping });
    await caller.next(f => f.type === FrameType.Pong);
    expect(caller.frames.filter(f => f.type === FrameType.Error || f.type === FrameType.Response)).toEqual([]);
    caller.close();
  });

  it('keeps the order of events when the later one is on the hot path and the earlier one is not', async () => {
    // Bug (hot): an event on a pattern already on the hot path overtook an earlier event of a new pattern still in Nest's
    // pipeline, so subscribers got them out of order.
    const emitter = await RawNode.hello(
      relay.url,
      'order-emitter',
      await tokenOf('order-emitter', { ...CLIENT, perms: { publish: ['e.>'] } }),
    );
    emitter.send(event(10, 'e.old'));
    expect(await emitter.next(f => f.type === FrameType.Ack)).toEqual({ type: FrameType.Ack, id: 10, recipients: 1 });
    expect(await subscriber.next(f => f.type === FrameType.Event)).toMatchObject({ id: 10, pattern: 'e.old' });

    together(emitter, [event(11, 'e.new'), event(12, 'e.old')]);
    const received = [await subscriber.next(f => f.type === FrameType.Event), await subscriber.next(f => f.type === FrameType.Event)];
    expect(received.map(f => [(f as { id: number }).id, (f as { pattern: string }).pattern])).toEqual([
      [11, 'e.new'],
      [12, 'e.old'],
    ]);
    const acks = [await emitter.next(f => f.type === FrameType.Ack), await emitter.next(f => f.type === FrameType.Ack)];
    expect(acks).toEqual(
      expect.arrayContaining([
        { type: FrameType.Ack, id: 11, recipients: 1 },
        { type: FrameType.Ack, id: 12, recipients: 1 },
      ]),
    );
    emitter.close();
  });
});
