/**
 * Events with `ack: 'handlers'`: emit() completes only once every receiving
 * handler has finished and fails with the handlers' errors if any threw; a
 * queue group's copy whose member leaves or does not confirm in time goes to
 * another member (the handler sees the attempt number), up to a bounded
 * number of deliveries; what finally fails is reported to the emitter. Real
 * relays, real Nest microservices, raw sockets for members that misbehave.
 */
import { expect } from '@jest/globals';
import { Controller, Inject } from '@nestjs/common';
import { Ctx, EventPattern, Payload, RpcException } from '@nestjs/microservices';
import { encodePayload, type EventFrame, EventFlag, FrameType, RelayErrorCode } from '@wsrelay/protocol';
import {
  type RelayError,
  type WsRelayClient,
  WsRelayContext,
  type WsRelayEventAck,
  type WsRelayFailedDelivery,
  WsRelayRecordBuilder,
} from '@wsrelay/transport';
import { firstValueFrom } from 'rxjs';
import { RelayCore } from '@wsrelay/relay';
import { inProcessCluster } from './support/cluster.js';
import {
  rejection,
  type RunningProvider,
  type RunningRelay,
  startClient,
  startProvider,
  startRelay,
  until,
  useCleanup,
} from './support/harness.js';
import { RawNode } from './support/raw-node.js';

const NODE = Symbol('node');
const handled: Array<{ node: string; subject: string; attempt: number; data: unknown }> = [];
/** Releases of the slow handlers waiting, in the order they started. */
const releases: Array<() => void> = [];

@Controller()
class JobsController {
  constructor(@Inject(NODE) private readonly node: string) {}

  @EventPattern<string>('jobs.*')
  async onJob(@Payload() data: { fail?: 'error' | 'rpc'; slow?: boolean }, @Ctx() ctx: WsRelayContext) {
    if (data.slow) await new Promise<void>(resolve => releases.push(resolve));
    handled.push({ node: this.node, subject: ctx.getPattern(), attempt: ctx.getAttempt(), data });
    if (data.fail === 'error') throw new Error('secret detail');
    if (data.fail === 'rpc') throw new RpcException({ code: 'JOB_REJECTED', job: ctx.getPattern() });
  }
}

const handlersAck = <T>(data: T, timeoutMs?: number) => {
  const b = new WsRelayRecordBuilder(data).setAck('handlers');
  return (timeoutMs === undefined ? b : b.setTimeout(timeoutMs)).build();
};

/** A raw queue member of 'jobs.*' that receives copies and answers only when told. */
const rawMember = (url: string, nodeId: string, queue: string) => RawNode.hello(url, nodeId, { events: ['jobs.*'], queue });

describe("events with ack: 'handlers'", () => {
  let relay: RunningRelay;
  let client: WsRelayClient;

  beforeAll(async () => {
    relay = await startRelay({ eventAckTimeoutMs: 1000, maxEventAttempts: 3 });
    client = await startClient({ urls: [relay.url] });
  });

  afterEach(() => {
    // Handlers still held first: a provider's close() waits for its handlers.
    for (const r of releases.splice(0)) r();
  });
  const { add, track } = useCleanup();
  afterEach(() => {
    handled.length = 0;
  });

  afterAll(async () => {
    await client.close();
    await relay.close();
  });

  async function provider(nodeId: string, queue?: string): Promise<RunningProvider> {
    const p = await startProvider([JobsController], { urls: [relay.url], nodeId, queue }, [{ provide: NODE, useValue: nodeId }]);
    add(() => p.close());
    return p;
  }

  it('completes only once every handler has finished, with the recipient count', async () => {
    await provider('h-1');
    await provider('h-2');
    let completed = false;
    const ack = firstValueFrom(client.emit<WsRelayEventAck>('jobs.build', handlersAck({ slow: true }))).then(a => ((completed = true), a));
    await until(() => releases.length === 2, 5000, 'both handlers to start');
    releases.shift()!();
    await until(() => handled.length === 1, 5000, 'the first handler to finish');
    // One handler is still running: the emit must not have completed.
    expect(completed).toBe(false);
    releases.shift()!();
    expect(await ack).toEqual({ recipients: 2 });
    expect(handled.map(h => h.node).sort()).toEqual(['h-1', 'h-2']);
  });

  it("fails with each failed handler's error, as Nest delivers it, and names the node", async () => {
    await provider('f-1');
    await provider('f-2', 'workers');
    const err = (await rejection(firstValueFrom(client.emit('jobs.run', handlersAck({ fail: 'rpc' }))))) as RelayError;
    expect(err.code).toBe(RelayErrorCode.HANDLER_FAILED);
    expect(err.message).toMatch(/2 of 2 recipient/);
    expect((err.details as WsRelayFailedDelivery[]).sort((a, b) => a.nodeId.localeCompare(b.nodeId))).toEqual([
      { nodeId: 'f-1', code: 'HANDLER_ERROR', error: { code: 'JOB_REJECTED', job: 'jobs.run' } },
      { nodeId: 'f-2', code: 'HANDLER_ERROR', error: { code: 'JOB_REJECTED', job: 'jobs.run' } },
    ]);
    const hidden = (await rejection(firstValueFrom(client.emit('jobs.run', handlersAck({ fail: 'error' }))))) as RelayError;
    expect(hidden.details).toEqual(
      expect.arrayContaining([{ nodeId: 'f-1', code: 'HANDLER_ERROR', error: { status: 'error', message: 'Internal server error' } }]),
    );
    // A plain emit of the same event still completes at the relay, as in the core.
    expect(await firstValueFrom(client.emit('jobs.run', { fail: 'rpc' }))).toEqual({ recipients: 2 });
  });

  it("gives a queue member's copy to another member when its member disconnects without answering", async () => {
    await provider('q-real', 'q1');
    const flaky = track(await rawMember(relay.url, 'q-flaky', 'q1'));
    // Round-robin: send until the raw member gets a copy, then it leaves without HANDLED.
    let got: EventFrame | undefined;
    const acks: Array<Promise<unknown>> = [];
    for (let i = 0; i < 4 && got === undefined; i++) {
      acks.push(firstValueFrom(client.emit('jobs.move', handlersAck({ i }))));
      got = (await flaky.next(f => f.type === FrameType.Event, 1000).catch(() => undefined)) as EventFrame | undefined;
    }
    expect(got).toMatchObject({ flags: EventFlag.ACK_HANDLERS, attempt: 1 });
    flaky.close();
    expect(await Promise.all(acks)).toEqual(acks.map(() => ({ recipients: 1 })));
    const moved = handled.find(h => h.attempt === 2);
    expect(moved).toMatchObject({ node: 'q-real', subject: 'jobs.move', attempt: 2 });
  });

  it('gives the copy to another member when its member does not confirm in time, and reports what never succeeded', async () => {
    const silent1 = track(await rawMember(relay.url, 'silent-1', 'q2'));
    const silent2 = track(await rawMember(relay.url, 'silent-2', 'q2'));
    const started = Date.now();
    const err = (await rejection(firstValueFrom(client.emit('jobs.lost', handlersAck({ x: 1 }))))) as RelayError;
    // Three deliveries (the bound), 1 s each, alternating between the two silent members.
    const copies = [...silent1.frames, ...silent2.frames].filter(f => f.type === FrameType.Event);
    expect(copies.map(c => c.attempt).sort()).toEqual([1, 2, 3]);
    expect(err.code).toBe(RelayErrorCode.HANDLER_FAILED);
    expect(err.details).toEqual([{ nodeId: expect.stringMatching(/^silent-/), code: RelayErrorCode.TIMEOUT }]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(3 * 1000 - 50);
    // A late answer to a settled copy is dropped, not counted twice.
    silent1.send({ type: FrameType.Handled, id: copies[0].id, error: null });
    silent1.send({ type: FrameType.Ping });
    await silent1.next(f => f.type === FrameType.Pong);
  });

  it('fails a plain subscriber that leaves without answering (nobody can stand in for it)', async () => {
    await provider('p-real');
    const leaver = track(await rawMember(relay.url, 'p-leaver', 'solo'));
    leaver.socket.removeAllListeners('message');
    const ack = rejection(firstValueFrom(client.emit('jobs.gone', handlersAck({ y: 1 }))));
    await until(() => handled.length === 1, 5000, 'the real subscriber');
    leaver.close();
    const err = (await ack) as RelayError;
    expect(err.code).toBe(RelayErrorCode.HANDLER_FAILED);
    expect(err.details).toEqual([{ nodeId: 'p-leaver', code: RelayErrorCode.PROVIDER_DISCONNECTED }]);
  });

  it("bounds the wait by the emit's deadline", async () => {
    await provider('slowpoke');
    const err = (await rejection(firstValueFrom(client.emit('jobs.slow', handlersAck({ slow: true }, 200))))) as RelayError;
    expect(err.code).toBe(RelayErrorCode.HANDLER_FAILED);
    expect(err.details).toEqual([{ nodeId: 'slowpoke', code: RelayErrorCode.TIMEOUT }]);
  });

  it('takes HANDLED only from the node a copy went to; a raw emitter gets the ACK once every copy is answered', async () => {
    const member = track(await rawMember(relay.url, 'raw-member', 'raw'));
    const other = track(await rawMember(relay.url, 'raw-other', 'other'));
    const emitter = track(await RawNode.hello(relay.url, 'raw-emitter'));
    emitter.send({
      type: FrameType.Event,
      id: 5,
      pattern: 'jobs.raw',
      payload: encodePayload(1),
      peer: null,
      ext: null,
      claims: null,
      flags: EventFlag.ACK_HANDLERS,
      timeoutMs: 5000,
    });
    const mine = (await member.next(f => f.type === FrameType.Event)) as EventFrame;
    const theirs = (await other.next(f => f.type === FrameType.Event)) as EventFrame;
    expect(mine.id).not.toBe(theirs.id);
    // Answering another node's copy changes nothing (and is counted as dropped).
    const router = relay.app.get(RelayCore);
    const dropped = router.diagnostics().droppedFrames;
    other.send({ type: FrameType.Handled, id: mine.id, error: null });
    other.send({ type: FrameType.Handled, id: theirs.id, error: null });
    other.send({ type: FrameType.Ping });
    await other.next(f => f.type === FrameType.Pong);
    expect(router.diagnostics().droppedFrames).toBe(dropped + 1);
    expect(emitter.frames).toEqual([]);
    member.send({ type: FrameType.Handled, id: mine.id, error: null });
    expect(await emitter.next(f => f.type === FrameType.Ack)).toEqual({ type: FrameType.Ack, id: 5, recipients: 2 });
  });
});

describe("events with ack: 'handlers' across relays", () => {
  it("moves a queue group's copy to a member on another relay when its member's relay connection dies", async () => {
    const cluster = await inProcessCluster({ auth: false, eventAckTimeoutMs: 2000 });
    const cleanup: Array<() => unknown> = [];
    try {
      await cluster.ready();
      const p = await startProvider([JobsController], { urls: [cluster.urls[2]], nodeId: 'far-member', queue: 'xq' }, [
        { provide: NODE, useValue: 'far-member' },
      ]);
      cleanup.push(() => p.close());
      const flaky = await rawMember(cluster.urls[1], 'near-member', 'xq');
      cleanup.push(() => flaky.close());
      const c = await startClient({ urls: [cluster.urls[0]] });
      cleanup.push(() => c.close());
      await until(
        () =>
          cluster.relays[0].app
            .get(RelayCore)
            .status()
            .cluster.relays.every(r => r.nodes >= 1),
        5000,
        'presence',
      );
      const acks: Array<Promise<unknown>> = [];
      let got: EventFrame | undefined;
      for (let i = 0; i < 4 && got === undefined; i++) {
        acks.push(firstValueFrom(c.emit('jobs.far', handlersAck({ i }))));
        got = (await flaky.next(f => f.type === FrameType.Event, 1000).catch(() => undefined)) as EventFrame | undefined;
      }
      expect(got).toBeDefined();
      flaky.close();
      expect(await Promise.all(acks)).toEqual(acks.map(() => ({ recipients: 1 })));
      expect(handled.find(h => h.attempt === 2)).toMatchObject({ node: 'far-member' });
    } finally {
      for (const fn of cleanup.reverse()) await fn();
      await cluster.close();
      handled.length = 0;
    }
  });
});
