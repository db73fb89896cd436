/**
 * The relay's startup grace: for `startupGraceMs` after it starts, a request
 * for a pattern (or a chosen node) that nothing serves yet is held until a
 * provider comes, so the calls a client queued while its relay restarted do
 * not fail because they came back before the providers did.
 */
import { Controller, Inject } from '@nestjs/common';
import { MessagePattern } from '@nestjs/microservices';
import { encodePayload, FrameType, type RequestFrame, RelayErrorCode, ResponseFlag } from '@wsrelay/protocol';
import { InMemoryBackplane, InMemoryHub, type RelayModuleOptions, RelayCore } from '@wsrelay/relay';
import { WsRelayClient } from '@wsrelay/transport';
import { firstValueFrom } from 'rxjs';
import { CLUSTER_TIMING } from './support/cluster.js';
import { answerTo, heldAt, isRequest, request } from './support/frames.js';
import { rejection, type RunningRelay, startProvider, startRelay, until, useCleanup } from './support/harness.js';
import { RawNode } from './support/raw-node.js';

const NODE = Symbol('node');

@Controller()
class WhoController {
  constructor(@Inject(NODE) private readonly node: string) {}

  @MessagePattern('who')
  who() {
    return this.node;
  }
}

describe('startup grace', () => {
  const { add, track } = useCleanup();

  async function relay(options: RelayModuleOptions = {}): Promise<RunningRelay> {
    return track(await startRelay({ startupGraceMs: 30_000, ...options }));
  }

  it('holds a call that comes before any provider and routes it once one says HELLO', async () => {
    const r = await relay();
    const client = track(new WsRelayClient({ urls: [r.url] }));
    const answer = firstValueFrom(client.send<string>('who', 1));
    await until(() => heldAt(r) === 1, 5000, 'the relay to hold the call');
    track(await startProvider([WhoController], { urls: [r.url], nodeId: 'late' }, [{ provide: NODE, useValue: 'late' }]));
    expect(await answer).toBe('late');
    expect(heldAt(r)).toBe(0);
  });

  it('passes on what is left of the deadline, and fails with MICROSERVICE_OFFLINE at its own deadline when it comes first', async () => {
    const r = await relay();
    const caller = track(await RawNode.hello(r.url, 'caller'));
    caller.send(request(1, 'nobody', 300));
    expect(await caller.next(answerTo(1))).toMatchObject({ type: FrameType.Error, code: RelayErrorCode.MICROSERVICE_OFFLINE });
    expect(heldAt(r)).toBe(0);

    caller.send(request(2, 'work', 20_000));
    await until(() => heldAt(r) === 1, 5000, 'the relay to hold the call');
    // The provider's handshake takes some milliseconds of the deadline.
    const provider = track(await RawNode.hello(r.url, 'provider', { patterns: ['work'] }));
    const routed = (await provider.next(isRequest)) as RequestFrame;
    expect(routed.payload).toEqual(encodePayload(2));
    expect(routed.timeoutMs).toBeLessThan(20_000);
    expect(routed.timeoutMs).toBeGreaterThan(0);
  });

  it('fails held calls with MICROSERVICE_OFFLINE when the grace ends, and then fails new ones at once', async () => {
    const r = await relay({ startupGraceMs: 400 });
    const caller = track(await RawNode.hello(r.url, 'caller'));
    caller.send(request(1, 'nobody', 20_000));
    expect(await caller.next(answerTo(1))).toMatchObject({ type: FrameType.Error, code: RelayErrorCode.MICROSERVICE_OFFLINE });
    caller.send(request(2, 'nobody', 20_000));
    expect(await caller.next(answerTo(2))).toMatchObject({ type: FrameType.Error, code: RelayErrorCode.MICROSERVICE_OFFLINE });
    expect(heldAt(r)).toBe(0);
  });

  it('holds a call for a chosen node until that node comes, not another provider of the pattern', async () => {
    const r = await relay();
    const caller = track(await RawNode.hello(r.url, 'caller'));
    caller.send(request(1, 'work', 5000, { peer: 'p2' }));
    await until(() => heldAt(r) === 1, 5000, 'the relay to hold the call');
    const p1 = track(await RawNode.hello(r.url, 'p1', { patterns: ['work'] }));
    expect(heldAt(r)).toBe(1); // p1 serves the pattern but is not the chosen node: still held
    const p2 = track(await RawNode.hello(r.url, 'p2', { patterns: ['work'] }));
    const routed = (await p2.next(isRequest)) as RequestFrame;
    expect(routed.payload).toEqual(encodePayload(1));
    p2.send({ type: FrameType.Response, id: routed.id, flags: ResponseFlag.DONE, payload: encodePayload('from p2') });
    expect(await caller.next(answerTo(1))).toMatchObject({ type: FrameType.Response, payload: encodePayload('from p2') });
    // p1 got nothing: a call sent to it now is the first request it sees.
    caller.send(request(2, 'work', 5000, { peer: 'p1' }));
    expect(((await p1.next(isRequest)) as RequestFrame).payload).toEqual(encodePayload(2));
  });

  it('forgets a held call its caller cancels, or whose caller leaves', async () => {
    const r = await relay();
    const caller = track(await RawNode.hello(r.url, 'caller'));
    const leaver = await RawNode.hello(r.url, 'leaver');
    caller.send(request(1, 'work'));
    leaver.send(request(1, 'work'));
    await until(() => heldAt(r) === 2, 5000, 'the relay to hold both calls');
    caller.send({ type: FrameType.Cancel, id: 1 });
    leaver.close();
    await until(() => heldAt(r) === 0, 5000, 'the relay to forget both');
    const provider = track(await RawNode.hello(r.url, 'provider', { patterns: ['work'] }));
    // Neither reached the provider: the first request it sees is one sent now.
    caller.send(request(2, 'work'));
    expect(((await provider.next(isRequest)) as RequestFrame).payload).toEqual(encodePayload(2));
    expect(caller.frames.filter(answerTo(1))).toEqual([]);
  });

  it('counts held calls in a connection in-flight limit, and refuses a second request with the id of a held one', async () => {
    const r = await relay({ maxInFlightPerConnection: 2 });
    const caller = track(await RawNode.hello(r.url, 'caller'));
    caller.send(request(1, 'work'));
    caller.send(request(1, 'work'));
    expect(await caller.next(answerTo(1))).toMatchObject({ type: FrameType.Error, code: RelayErrorCode.BAD_FRAME });
    caller.send(request(2, 'work'));
    caller.send(request(3, 'work'));
    expect(await caller.next(answerTo(3))).toMatchObject({ type: FrameType.Error, code: RelayErrorCode.RATE_LIMITED });
    expect(heldAt(r)).toBe(2);
  });

  it('fails held calls with RELAY_UNAVAILABLE when the relay shuts down', async () => {
    const r = await startRelay({ startupGraceMs: 30_000 });
    const caller = await RawNode.hello(r.url, 'caller');
    add(() => caller.close());
    caller.send(request(1, 'work'));
    await until(() => heldAt(r) === 1, 5000, 'the relay to hold the call');
    const closing = r.close();
    expect(await caller.next(answerTo(1))).toMatchObject({ type: FrameType.Error, code: RelayErrorCode.RELAY_UNAVAILABLE });
    await closing;
  });

  it('in a cluster, routes a held call to a provider that comes on another relay', async () => {
    const hub = new InMemoryHub();
    const [a, b] = await Promise.all(
      ['A', 'B'].map(relayId => relay({ relayId, cluster: { backplane: new InMemoryBackplane(hub), ...CLUSTER_TIMING } })),
    );
    const peers = (x: RunningRelay) => x.app.get(RelayCore).status().cluster.relays.length;
    await until(() => peers(a) === 1 && peers(b) === 1, 10_000, 'the relays to see each other');
    const client = track(new WsRelayClient({ urls: [b.url] }));
    const answer = firstValueFrom(client.send<string>('who', 1));
    await until(() => heldAt(b) === 1, 5000, 'relay B to hold the call');
    track(await startProvider([WhoController], { urls: [a.url], nodeId: 'on-a' }, [{ provide: NODE, useValue: 'on-a' }]));
    expect(await answer).toBe('on-a');
  });

  it('is off with startupGraceMs: 0 (a call nothing serves fails at once)', async () => {
    const r = await relay({ startupGraceMs: 0 });
    const client = track(new WsRelayClient({ urls: [r.url] }));
    expect(await rejection(firstValueFrom(client.send('who', 1)))).toMatchObject({ code: RelayErrorCode.MICROSERVICE_OFFLINE });
  });
});
