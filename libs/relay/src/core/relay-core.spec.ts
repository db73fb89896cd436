import { afterEach, describe, expect, it } from '@jest/globals';
import {
  CloseCode,
  decodePayload,
  encodePayload,
  type ErrorFrame,
  errorFromFrame,
  EventFlag,
  type EventFrame,
  type Frame,
  FrameType,
  type HelloFrame,
  type NodesFrame,
  RelayError,
  RelayErrorCode,
  type RequestFrame,
  ResponseFlag,
  SUPPORTED_PROTOCOL_VERSIONS,
} from '@wsrelay/protocol';
import type WebSocket from 'ws';
import { FakeSocket } from '../../spec-support/fakes.js';
import { OPEN_IDENTITY, RelayAuthService } from '../auth/relay-auth.service.js';
import { InMemoryBackplane, InMemoryHub } from '../cluster/in-memory.backplane.js';
import type { RelayModuleOptions } from '../interfaces/relay-options.interface.js';
import { resolveRelayOptions } from '../relay.options.js';
import type { Session } from '../session/session.js';
import { createCluster } from './create-cluster.js';
import { RelayCore } from './relay-core.js';

/** A node's connection to a relay: the fake socket it writes to, and the relay's session for it. */
interface Conn {
  readonly socket: FakeSocket;
  readonly session: Session;
  readonly nodeId: string;
}

/** Waits (turns of the event loop, no fixed sleep) until `predicate` holds. */
async function until(what: string, predicate: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise(resolve => setImmediate(resolve));
  }
}

/** A few turns of the event loop: whatever the in-memory backplane has in flight arrives. */
async function turns(n = 10): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise(resolve => setImmediate(resolve));
}

function framesOf<T extends Frame>(conn: Conn, type: T['type']): T[] {
  return conn.socket.frames.filter((f): f is T => f.type === type);
}

function request(id: number, pattern: string, value: unknown, extra: Partial<RequestFrame> = {}): RequestFrame {
  return {
    type: FrameType.Request,
    id,
    pattern,
    payload: encodePayload(value),
    timeoutMs: 5000,
    peer: null,
    ext: null,
    claims: null,
    ...extra,
  };
}

function event(id: number, pattern: string, value: unknown, extra: Partial<EventFrame> = {}): EventFrame {
  return { type: FrameType.Event, id, pattern, payload: encodePayload(value), peer: null, ext: null, claims: null, ...extra };
}

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

describe('RelayCore: two relays on one in-memory hub', () => {
  let cores: RelayCore[] = [];
  let hub: InMemoryHub;

  function makeCore(relayId: string, options: RelayModuleOptions = {}): RelayCore {
    const resolved = resolveRelayOptions({
      relayId,
      startupGraceMs: 0,
      drainTimeoutMs: 100,
      ...options,
      cluster: { backplane: new InMemoryBackplane(hub), heartbeatIntervalMs: 20, timeoutMs: 200 },
    });
    const core = new RelayCore(resolved, new RelayAuthService(resolved), createCluster(resolved));
    cores.push(core);
    return core;
  }

  /** Relays A and B, started, each knowing the other. */
  async function pair(optionsB: RelayModuleOptions = {}): Promise<[RelayCore, RelayCore]> {
    hub = new InMemoryHub();
    const a = makeCore('A');
    const b = makeCore('B', optionsB);
    a.start();
    b.start();
    await until('A and B to know each other', () => a.status().cluster.relays.length === 1 && b.status().cluster.relays.length === 1);
    return [a, b];
  }

  /** A node that connects to `core` and says HELLO. */
  function connect(core: RelayCore, nodeId: string, announced: Partial<HelloFrame> = {}): Conn {
    const socket = new FakeSocket();
    const session = core.accept(socket as unknown as WebSocket, OPEN_IDENTITY);
    const hello: HelloFrame = {
      type: FrameType.Hello,
      versions: [...SUPPORTED_PROTOCOL_VERSIONS],
      nodeId,
      service: null,
      patterns: [],
      events: [],
      queue: null,
      ...announced,
    };
    core.hello(session, hello);
    return { socket, session, nodeId };
  }

  /** The connection closes, as `ws` reports it: the socket is closed and the relay drops it. */
  function disconnect(core: RelayCore, conn: Conn): void {
    conn.socket.close(1006);
    core.drop(conn.socket as unknown as WebSocket);
  }

  /** Until `core` routes `nodeId` of another relay. */
  function seen(core: RelayCore, nodeId: string): Promise<void> {
    return until(`${nodeId} to be routed by the other relay`, () => core.nodeDiagnostics(nodeId)?.routed === true);
  }

  afterEach(async () => {
    await Promise.all(cores.map(core => core.onModuleDestroy()));
    cores = [];
    expect(hub.members.size).toBe(0);
  });

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

  it('routes a request from a node on A to a provider on B, and its stream of responses back', async () => {
    const [a, b] = await pair();
    const caller = connect(a, 'caller');
    const provider = connect(b, 'prov', { patterns: ['sum'] });
    await seen(a, 'prov');

    a.request(caller.session, request(1, 'sum', [1, 2]));
    await until('the request at the provider', () => framesOf(provider, FrameType.Request).length === 1);
    const [delivered] = framesOf<RequestFrame>(provider, FrameType.Request);
    expect(delivered).toMatchObject({ pattern: 'sum', timeoutMs: 5000, peer: 'caller', claims: null, ext: null });
    expect(decodePayload(delivered.payload)).toEqual([1, 2]);
    expect(a.nodeDiagnostics('caller')).toMatchObject({ local: true, requestsOut: 1 });
    expect(b.nodeDiagnostics('prov')).toMatchObject({ local: true, requestsIn: 1 });
    expect([a.diagnostics().requests, b.diagnostics().requests]).toEqual([1, 1]);
    expect([a.status().inFlight, b.status().inFlight]).toEqual([1, 1]);

    b.response(provider.session, { type: FrameType.Response, id: delivered.id, flags: 0, payload: encodePayload(3) });
    b.response(provider.session, { type: FrameType.Response, id: delivered.id, flags: ResponseFlag.DONE, payload: null });
    await until('both responses at the caller', () => framesOf(caller, FrameType.Response).length === 2);
    expect(framesOf(caller, FrameType.Response)).toEqual([
      { type: FrameType.Response, id: 1, flags: 0, payload: encodePayload(3) },
      { type: FrameType.Response, id: 1, flags: ResponseFlag.DONE, payload: null },
    ]);
    expect([a.diagnostics().requests, b.diagnostics().requests]).toEqual([0, 0]);
    expect(a.nodeDiagnostics('caller')).toMatchObject({ requestsOut: 0 });
    expect(b.nodeDiagnostics('prov')).toMatchObject({ requestsIn: 0 });

    // Only the provider the request went to could answer it, and only while it was in flight.
    b.response(provider.session, { type: FrameType.Response, id: delivered.id, flags: ResponseFlag.DONE, payload: null });
    expect(b.diagnostics().droppedFrames).toBe(1);
  });

  it('passes a CANCEL from the caller on A to the provider on B under the id B gave it', async () => {
    const [a, b] = await pair();
    const caller = connect(a, 'caller');
    const provider = connect(b, 'prov', { patterns: ['sum'] });
    await seen(a, 'prov');
    a.request(caller.session, request(1, 'sum', null));
    await until('the request at the provider', () => framesOf(provider, FrameType.Request).length === 1);
    const [delivered] = framesOf<RequestFrame>(provider, FrameType.Request);
    a.cancel(caller.session, { type: FrameType.Cancel, id: 1 });
    await until('the cancel at the provider', () => framesOf(provider, FrameType.Cancel).length === 1);
    expect(framesOf(provider, FrameType.Cancel)).toEqual([{ type: FrameType.Cancel, id: delivered.id }]);
    expect([a.diagnostics().requests, b.diagnostics().requests]).toEqual([0, 0]);
  });

  it('delivers an event from a node on A to subscribers on both relays, and counts them in the ACK', async () => {
    const [a, b] = await pair();
    const emitter = connect(a, 'emitter');
    const local = connect(a, 'local', { events: ['orders.>'] });
    const remote = connect(b, 'remote', { events: ['orders.*'] });
    connect(b, 'other', { events: ['users.*'] });
    await seen(a, 'remote');

    const recipients = a.publish(emitter.session, event(5, 'orders.created', { id: 42 }));
    expect(recipients).toBe(2);
    a.acknowledge(emitter.session, 5, recipients);
    expect(framesOf(emitter, FrameType.Ack)).toEqual([{ type: FrameType.Ack, id: 5, recipients: 2 }]);
    const expected = {
      type: FrameType.Event,
      id: 5,
      pattern: 'orders.created',
      payload: encodePayload({ id: 42 }),
      peer: 'emitter',
      ext: null,
      claims: null,
    };
    expect(framesOf(local, FrameType.Event)).toEqual([expected]);
    await until('the event on B', () => framesOf(remote, FrameType.Event).length === 1);
    expect(framesOf(remote, FrameType.Event)).toEqual([expected]);

    // Targeted at the node on B: only it gets the event.
    expect(a.publish(emitter.session, event(6, 'orders.paid', null, { peer: 'remote' }))).toBe(1);
    await until('the targeted event on B', () => framesOf(remote, FrameType.Event).length === 2);
    expect(framesOf(remote, FrameType.Event)[1]).toMatchObject({ id: 6, pattern: 'orders.paid', peer: 'emitter' });
    expect(framesOf(local, FrameType.Event)).toHaveLength(1);
  });

  it('ACKs an event with handler acks once the handlers on both relays have answered', async () => {
    const [a, b] = await pair();
    const emitter = connect(a, 'emitter');
    const local = connect(a, 'local', { events: ['jobs'] });
    const remote = connect(b, 'remote', { events: ['jobs'] });
    await seen(a, 'remote');

    const recipients = a.publish(emitter.session, event(6, 'jobs', 'work', { flags: EventFlag.ACK_HANDLERS, timeoutMs: 5000 }));
    expect(recipients).toBeUndefined();
    a.acknowledge(emitter.session, 6, recipients);
    await until('the copy on B', () => framesOf(remote, FrameType.Event).length === 1);
    const [localCopy] = framesOf<EventFrame>(local, FrameType.Event);
    const [remoteCopy] = framesOf<EventFrame>(remote, FrameType.Event);
    for (const copy of [localCopy, remoteCopy]) {
      expect(copy).toMatchObject({ pattern: 'jobs', peer: 'emitter', flags: EventFlag.ACK_HANDLERS, attempt: 1 });
    }
    expect([a.diagnostics().eventCopies, b.diagnostics().eventCopies]).toEqual([2, 1]);

    a.handled(local.session, { type: FrameType.Handled, id: localCopy.id, error: null });
    b.handled(remote.session, { type: FrameType.Handled, id: remoteCopy.id, error: null });
    await until('the ACK', () => framesOf(emitter, FrameType.Ack).length > 0);
    expect(emitter.socket.take().filter(f => f.type !== FrameType.Welcome)).toEqual([{ type: FrameType.Ack, id: 6, recipients: 2 }]);
    expect([a.diagnostics().eventCopies, b.diagnostics().eventCopies]).toEqual([0, 0]);
  });

  it('reports a handler that threw on B to the emitter on A as HANDLER_FAILED, with its error', async () => {
    const [a, b] = await pair();
    const emitter = connect(a, 'emitter');
    const remote = connect(b, 'remote', { events: ['jobs'] });
    await seen(a, 'remote');
    a.publish(emitter.session, event(7, 'jobs', 'work', { flags: EventFlag.ACK_HANDLERS, timeoutMs: 5000 }));
    await until('the copy on B', () => framesOf(remote, FrameType.Event).length === 1);
    const [copy] = framesOf<EventFrame>(remote, FrameType.Event);
    b.handled(remote.session, { type: FrameType.Handled, id: copy.id, error: encodePayload({ message: 'boom' }) });
    await until('the answer', () => framesOf(emitter, FrameType.Error).length > 0);
    const [answer] = framesOf<ErrorFrame>(emitter, FrameType.Error);
    const err = errorFromFrame(answer);
    expect([answer.id, err.code]).toEqual([7, RelayErrorCode.HANDLER_FAILED]);
    expect(err.details).toEqual([{ nodeId: 'remote', code: 'HANDLER_ERROR', error: { message: 'boom' } }]);
    expect(framesOf(emitter, FrameType.Ack)).toEqual([]);
  });

  it('moves a handler-acked copy to a queue member on A when the member on B it went to leaves', async () => {
    const [a, b] = await pair();
    const emitter = connect(a, 'emitter');
    // B's member first in A's index, so that it gets the first copy.
    const onB = connect(b, 'on-b', { events: ['jobs'], queue: 'g' });
    await seen(a, 'on-b');
    const onA = connect(a, 'on-a', { events: ['jobs'], queue: 'g' });
    a.publish(emitter.session, event(8, 'jobs', 'work', { flags: EventFlag.ACK_HANDLERS, timeoutMs: 5000 }));
    await until('the copy on B', () => framesOf(onB, FrameType.Event).length === 1);
    expect(framesOf(onA, FrameType.Event)).toEqual([]);

    disconnect(b, onB);
    await until('the copy moved to A', () => framesOf(onA, FrameType.Event).length === 1);
    const [moved] = framesOf<EventFrame>(onA, FrameType.Event);
    expect(moved).toMatchObject({ pattern: 'jobs', peer: 'emitter', flags: EventFlag.ACK_HANDLERS, attempt: 2 });
    a.handled(onA.session, { type: FrameType.Handled, id: moved.id, error: null });
    expect(framesOf(emitter, FrameType.Ack)).toEqual([{ type: FrameType.Ack, id: 8, recipients: 1 }]);
    await turns();
    expect([a.diagnostics().eventCopies, b.diagnostics().eventCopies]).toEqual([0, 0]);
  });

  it('answers a WAIT on A once a provider of the pattern says HELLO on B', async () => {
    const [a, b] = await pair();
    const caller = connect(a, 'caller');
    a.wait(caller.session, { type: FrameType.Wait, id: 4, pattern: 'sum', timeoutMs: 5000 });
    expect(a.nodeDiagnostics('caller')).toMatchObject({ waits: 1 });
    connect(b, 'prov', { patterns: ['sum'] });
    await until('the WAIT answered', () => framesOf(caller, FrameType.Ack).length === 1);
    expect(framesOf(caller, FrameType.Ack)).toEqual([{ type: FrameType.Ack, id: 4, recipients: 1 }]);
    expect(a.nodeDiagnostics('caller')).toMatchObject({ waits: 0 });
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

  it('fails a call in flight with PROVIDER_DISCONNECTED, once, when the provider’s connection on B drops', async () => {
    const [a, b] = await pair();
    const caller = connect(a, 'caller');
    const provider = connect(b, 'prov', { patterns: ['sum'] });
    await seen(a, 'prov');
    a.request(caller.session, request(1, 'sum', null));
    await until('the request at the provider', () => framesOf(provider, FrameType.Request).length === 1);

    disconnect(b, provider);
    await until('the error at the caller', () => framesOf(caller, FrameType.Error).length > 0);
    await until('A to unroute the provider', () => a.nodeDiagnostics('prov') === undefined);
    await turns();
    expect(framesOf<ErrorFrame>(caller, FrameType.Error)).toMatchObject([{ id: 1, code: RelayErrorCode.PROVIDER_DISCONNECTED }]);
    expect([a.diagnostics().requests, b.diagnostics().requests]).toEqual([0, 0]);
    expect(b.connectionCount).toBe(0);

    // Nothing else serves it now.
    a.request(caller.session, request(2, 'sum', null));
    expect(framesOf<ErrorFrame>(caller, FrameType.Error).at(-1)).toMatchObject({ id: 2, code: RelayErrorCode.MICROSERVICE_OFFLINE });
  });

  it('fails a call in flight with PROVIDER_DISCONNECTED when the provider’s relay shuts down without it answering', async () => {
    const [a, b] = await pair({ drainTimeoutMs: 50 });
    const caller = connect(a, 'caller');
    const provider = connect(b, 'prov', { patterns: ['sum'] });
    await seen(a, 'prov');
    a.request(caller.session, request(1, 'sum', null));
    await until('the request at the provider', () => framesOf(provider, FrameType.Request).length === 1);

    await b.onModuleDestroy();
    expect(framesOf(provider, FrameType.GoAway)).toMatchObject([{ type: FrameType.GoAway, drainMs: 50 }]);
    expect(provider.socket.closed).toMatchObject({ code: CloseCode.GOING_AWAY });
    await until('the error at the caller', () => framesOf(caller, FrameType.Error).length > 0);
    await turns();
    expect(framesOf<ErrorFrame>(caller, FrameType.Error)).toMatchObject([{ id: 1, code: RelayErrorCode.PROVIDER_DISCONNECTED }]);
    expect(a.status().cluster.relays).toEqual([]);
    expect(a.diagnostics().requests).toBe(0);
    expect(a.nodeDiagnostics('prov')).toBeUndefined();
  });

  it('lets a call in flight complete through the shutdown drain of the provider’s relay', async () => {
    const [a, b] = await pair({ drainTimeoutMs: 10_000 });
    const caller = connect(a, 'caller');
    const provider = connect(b, 'prov', { patterns: ['sum'] });
    await seen(a, 'prov');
    a.request(caller.session, request(1, 'sum', null));
    await until('the request at the provider', () => framesOf(provider, FrameType.Request).length === 1);
    const [delivered] = framesOf<RequestFrame>(provider, FrameType.Request);

    const started = Date.now();
    const closing = b.onModuleDestroy();
    expect(b.accepting).toBe(false);
    expect(framesOf(provider, FrameType.GoAway)).toHaveLength(1);
    // A hears that the provider left routing gracefully: the call is not failed.
    await until('A to unroute the provider', () => a.nodeDiagnostics('prov') === undefined);
    expect(framesOf(caller, FrameType.Error)).toEqual([]);

    b.response(provider.session, { type: FrameType.Response, id: delivered.id, flags: ResponseFlag.DONE, payload: encodePayload('ok') });
    await closing;
    expect(Date.now() - started).toBeLessThan(5000);
    await until('the response at the caller', () => framesOf(caller, FrameType.Response).length === 1);
    expect(framesOf(caller, FrameType.Response)).toEqual([
      { type: FrameType.Response, id: 1, flags: ResponseFlag.DONE, payload: encodePayload('ok') },
    ]);
    expect(framesOf(caller, FrameType.Error)).toEqual([]);
  });

  it('DRAIN takes a node out of routing on both relays, ACKs with its requests in flight, and lets them complete', async () => {
    const [a, b] = await pair();
    const caller = connect(a, 'caller');
    const provider = connect(b, 'prov', { patterns: ['sum'] });
    await seen(a, 'prov');
    a.request(caller.session, request(1, 'sum', null));
    await until('the request at the provider', () => framesOf(provider, FrameType.Request).length === 1);
    const [delivered] = framesOf<RequestFrame>(provider, FrameType.Request);

    b.drainNode(provider.session, { type: FrameType.Drain, id: 9 });
    expect(framesOf(provider, FrameType.Ack)).toEqual([{ type: FrameType.Ack, id: 9, recipients: 1 }]);
    expect(b.nodeDiagnostics('prov')).toMatchObject({ local: true, routed: false, requestsIn: 1 });
    await until('A to unroute the provider', () => a.nodeDiagnostics('prov') === undefined);

    b.response(provider.session, { type: FrameType.Response, id: delivered.id, flags: ResponseFlag.DONE, payload: null });
    await until('the response at the caller', () => framesOf(caller, FrameType.Response).length === 1);
    expect(framesOf(caller, FrameType.Error)).toEqual([]);
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
    expect(a.diagnostics()).toEqual({
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
});
