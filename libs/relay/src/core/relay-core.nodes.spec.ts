/**
 * RelayCore, two relays on one in-memory hub, and their nodes: the WELCOME and both relays routing
 * a node, DISCOVER listing the nodes of both, the frames of a connection that has not said HELLO,
 * and diagnostics back to their baseline once every connection drops. Calls:
 * relay-core.calls.spec.ts; events: relay-core.events.spec.ts.
 */
import { describe, expect, it } from '@jest/globals';
import {
  encodePayload,
  EventFlag,
  FrameType,
  type NodesFrame,
  RelayError,
  RelayErrorCode,
  SUPPORTED_PROTOCOL_VERSIONS,
} from '@wsrelay/protocol';
import type WebSocket from 'ws';
import { FakeSocket } from '../../spec-support/fakes.js';
import {
  caught,
  connect,
  disconnect,
  event,
  framesOf,
  request,
  seen,
  twoRelays,
  turns,
  until,
} from '../../spec-support/relay-core-setup.js';
import { OPEN_IDENTITY } from '../auth/relay-auth.service.js';
import { WAIT_OVERHEAD_BYTES } from '../requests/waits.js';

const BUDGETS = ['waitBytes', 'heldBytes', 'retainedBytes', 'unsentBytes', 'routeCacheBytes'] as const;

describe('RelayCore: two relays on one in-memory hub', () => {
  /** Relays A and B, started, each knowing the other (torn down after each test). */
  const pair = twoRelays();

  it('welcomes a node with the relay id and its session, and both relays come to route it', async () => {
    const [a, b] = await pair();
    const provider = connect(b, 'prov', { service: 'math', patterns: ['sum'] });
    expect(provider.socket.take()).toEqual([
      {
        type: FrameType.Welcome,
        version: Math.max(...SUPPORTED_PROTOCOL_VERSIONS),
        relayId: 'B',
        sessionId: provider.session.sessionId,
        nodeId: 'prov',
        maxPayloadBytes: expect.any(Number),
        heartbeatIntervalMs: expect.any(Number),
      },
    ]);
    expect(b.nodeDiagnostics('prov')).toMatchObject({ local: true, routed: true, requestsIn: 0, requestsOut: 0, waits: 0 });
    await seen(a, 'prov');
    expect(a.nodeDiagnostics('prov')).toEqual({
      local: false,
      routed: true,
      requestsIn: 0,
      requestsOut: 0,
      waits: 0,
      bufferedBytes: 0,
      slow: false,
      closedAsSlowConsumer: false,
    });
    expect(a.nodeDiagnostics('prov', 'another-tenant')).toBeUndefined();
    expect(a.status()).toMatchObject({ relayId: 'A', connections: 0, nodes: 0, inFlight: 0 });
    expect(b.status()).toMatchObject({ relayId: 'B', connections: 1, nodes: 1, inFlight: 0 });
    expect(a.status().cluster.relays).toMatchObject([{ relayId: 'B', nodes: 1 }]);
  });

  it('lists the nodes of both relays in DISCOVER', async () => {
    const [a, b] = await pair();
    const caller = connect(a, 'caller');
    connect(b, 'prov', { service: 'math', patterns: ['sum'], events: ['jobs'], queue: 'g' });
    await seen(a, 'prov');
    a.discover(caller.session, { type: FrameType.Discover, id: 3 });
    const [answer] = framesOf<NodesFrame>(caller, FrameType.Nodes);
    expect(answer.id).toBe(3);
    expect([...answer.nodes].sort((x, y) => x.nodeId.localeCompare(y.nodeId))).toEqual([
      { nodeId: 'caller', service: null, patterns: [], events: [], queue: null },
      { nodeId: 'prov', service: 'math', patterns: ['sum'], events: ['jobs'], queue: 'g' },
    ]);
  });

  it('refuses frames of a connection that has not said HELLO, and a second HELLO (BAD_FRAME)', async () => {
    const [a] = await pair();
    const socket = new FakeSocket();
    const session = a.accept(socket as unknown as WebSocket, OPEN_IDENTITY);
    expect(a.holds(session)).toBe(true);
    expect(a.sessionOf(socket as unknown as WebSocket)).toBe(session);
    for (const refused of [
      () => a.publish(session, event(1, 'x', null)),
      () => a.request(session, request(1, 'sum', null)),
      () => a.wait(session, { type: FrameType.Wait, id: 1, pattern: 'sum', timeoutMs: 100 }),
    ]) {
      const err = caught(refused);
      expect(err).toBeInstanceOf(RelayError);
      expect(err).toMatchObject({ code: RelayErrorCode.BAD_FRAME });
    }
    const node = connect(a, 'n');
    const err = caught(() =>
      a.hello(node.session, { type: FrameType.Hello, versions: [1], nodeId: 'n', service: null, patterns: [], events: [], queue: null }),
    );
    expect(err).toMatchObject({ code: RelayErrorCode.BAD_FRAME });
    expect(a.connectionCount).toBe(2);
    a.drop(socket as unknown as WebSocket);
    expect(a.connectionCount).toBe(1);
    expect(a.holds(session)).toBe(false);
  });

  it('ignores a HELLO whose connection dropped while it was on its way (the node never joins routing)', async () => {
    const [a, b] = await pair();
    const socket = new FakeSocket();
    const session = a.accept(socket as unknown as WebSocket, OPEN_IDENTITY);
    socket.close(1006);
    a.drop(socket as unknown as WebSocket);
    a.hello(session, {
      type: FrameType.Hello,
      versions: [...SUPPORTED_PROTOCOL_VERSIONS],
      nodeId: 'late',
      service: null,
      patterns: ['sum'],
      events: [],
      queue: null,
    });
    expect(socket.take()).toEqual([]);
    expect(a.nodeDiagnostics('late')).toBeUndefined();
    expect(a.diagnostics()).toMatchObject({ connections: 0, localNodes: 0, worlds: [] });
    // The other relay was never told of it either: a node that joins now is the first it hears of.
    connect(a, 'next');
    await seen(b, 'next');
    expect(b.nodeDiagnostics('late')).toBeUndefined();
  });

  it('brings diagnostics() and nodeDiagnostics() back to their baseline once every connection drops', async () => {
    const [a, b] = await pair();
    const baseline = [a.diagnostics(), b.diagnostics()];
    expect(baseline[0]).toEqual({
      connections: 0,
      localNodes: 0,
      worlds: [],
      requests: 0,
      waits: { waits: 0, held: 0, patterns: 0 },
      eventCopies: 0,
      reservations: 0,
      droppedFrames: 0,
      budgets: Object.fromEntries(BUDGETS.map(k => [k, expect.objectContaining({ used: 0, refused: 0 })])),
      stalled: 0,
    });
    expect(baseline[1]).toEqual(baseline[0]);

    const caller = connect(a, 'caller');
    const emitter = connect(a, 'emitter');
    const provider = connect(b, 'prov', { patterns: ['sum'] });
    const worker = connect(b, 'worker', { events: ['jobs.*'], queue: 'g' });
    await seen(a, 'prov');
    await seen(a, 'worker');
    await seen(b, 'caller');
    await seen(b, 'emitter');

    // Something of everything in flight: a call, a WAIT, an event with handler acks.
    a.request(caller.session, request(1, 'sum', null));
    a.wait(caller.session, { type: FrameType.Wait, id: 2, pattern: 'nothing', timeoutMs: 60_000 });
    a.publish(emitter.session, event(3, 'jobs.run', 'x', { flags: EventFlag.ACK_HANDLERS, timeoutMs: 60_000 }));
    await until('the request and the copy on B', () => b.diagnostics().requests === 1 && b.diagnostics().eventCopies === 1);
    const nodes = ['caller', 'emitter', 'prov', 'worker'];
    expect(a.diagnostics()).toMatchObject({
      connections: 2,
      localNodes: 2,
      worlds: [{ tenant: '', nodes, providedPatterns: 1, subscriptions: 1, queueGroups: 1 }],
      requests: 1,
      waits: { waits: 1, held: 0, patterns: 1 },
      eventCopies: 1,
      reservations: 0,
      droppedFrames: 0,
    });
    expect(b.diagnostics()).toMatchObject({ connections: 2, localNodes: 2, worlds: [{ tenant: '', nodes }], requests: 1, eventCopies: 1 });

    // The caller goes first: its call is cancelled at the provider.
    disconnect(a, caller);
    await until('the cancel at the provider', () => framesOf(provider, FrameType.Cancel).length === 1);
    disconnect(a, emitter);
    disconnect(b, provider);
    disconnect(b, worker);

    const settled = () => JSON.stringify([a.diagnostics(), b.diagnostics()]) === JSON.stringify(baseline);
    await until('both relays back to their baseline', settled);
    await turns();
    expect([a.diagnostics(), b.diagnostics()]).toEqual(baseline);
    for (const core of [a, b]) for (const nodeId of nodes) expect(core.nodeDiagnostics(nodeId)).toBeUndefined();
    expect([a.status().inFlight, b.status().inFlight]).toEqual([0, 0]);
    expect(a.status().cluster.relays).toMatchObject([{ relayId: 'B', nodes: 0 }]);
  });
  it('counts what is in flight against the relay-wide budgets (and WAITs in status().inFlight), and gives it all back', async () => {
    const [a, b] = await pair();
    const caller = connect(a, 'caller');
    const emitter = connect(a, 'emitter');
    const worker = connect(b, 'worker', { events: ['jobs.*'], queue: 'g' });
    await seen(a, 'worker');
    a.wait(caller.session, { type: FrameType.Wait, id: 2, pattern: 'nothing', timeoutMs: 60_000 });
    a.publish(emitter.session, event(3, 'jobs.run', 'x', { flags: EventFlag.ACK_HANDLERS, timeoutMs: 60_000 }));
    // The WAIT, the payload of a queue copy that may move to another member, the event's route.
    const { waitBytes, retainedBytes, routeCacheBytes } = a.status().budgets;
    expect([waitBytes.used, retainedBytes.used]).toEqual([WAIT_OVERHEAD_BYTES + 'nothing'.length, encodePayload('x').byteLength]);
    expect(routeCacheBytes.used).toBeGreaterThan(0);
    expect(a.status().inFlight).toBe(2);
    for (const [core, conn] of [
      [a, caller],
      [a, emitter],
      [b, worker],
    ] as const)
      disconnect(core, conn);
    await until('the budgets back to nothing', () => BUDGETS.every(k => a.status().budgets[k].used === 0));
    expect(a.status().inFlight).toBe(0);
  });
});
