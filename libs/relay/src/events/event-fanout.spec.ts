import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import {
  decodePayload,
  encodePayload,
  type ErrorFrame,
  errorFromFrame,
  EventFlag,
  type EventFrame,
  type Frame,
  FrameType,
  RelayError,
  RelayErrorCode,
} from '@wsrelay/protocol';
import { codec, fakeNode, idleCluster, replies } from '../../spec-support/fakes.js';
import { ClusterMessageType as Cmt, type Msg } from '../cluster/cluster-protocol.js';
import type { RelayCluster } from '../cluster/relay-cluster.js';
import { RemoteNode, RemoteRelay } from '../cluster/remote.js';
import type { LocalNode } from '../routing/local-node.js';
import { type World, Worlds } from '../routing/world.js';
import { InFlightLimit } from '../session/in-flight-limit.js';
import { EventAcks } from './event-acks.js';
import { EventFanout } from './event-fanout.js';

/** How long an emitter waits for handler acks when its event does not say. */
const DEFAULT_ACK_TIMEOUT = 5000;
/** One delivery's time to confirm: longer than the emitter's deadline, so the deadline is what fails a copy here. */
const ATTEMPT_TIMEOUT = 60_000;
const MAX_IN_FLIGHT = 2;

type Node = ReturnType<typeof fakeNode>;

function event(id: number, pattern: string, extra: Partial<EventFrame> = {}): EventFrame {
  return { type: FrameType.Event, id, pattern, payload: encodePayload({ id }), peer: null, ext: null, claims: null, ...extra };
}

function handlersEvent(id: number, pattern: string, extra: Partial<EventFrame> = {}): EventFrame {
  return event(id, pattern, { flags: EventFlag.ACK_HANDLERS, ...extra });
}

function eventsOf(node: Node): EventFrame[] {
  return node.session.socket.take().filter((f): f is EventFrame => f.type === FrameType.Event);
}

function remoteNode(relay: RemoteRelay, nodeId: string, events: string[], queue: string | null = null): RemoteNode {
  return new RemoteNode(relay, { tenant: '', nodeId, service: null, patterns: [], events, queue, subject: null, since: 1 });
}

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

describe('EventFanout', () => {
  let worlds: Worlds;
  let world: World;
  let cluster: RelayCluster;
  let acks: EventAcks;
  let fanout: EventFanout;
  let emitter: Node;

  /** A node of this relay subscribed to `events`, in routing. */
  function subscriber(nodeId: string, events: string[], queue: string | null = null): Node {
    const node = fakeNode(world, { nodeId, events, queue });
    world.route(node);
    return node;
  }

  beforeEach(() => {
    jest.useFakeTimers();
    worlds = new Worlds();
    world = worlds.ensure('');
    cluster = idleCluster();
    acks = new EventAcks(codec, cluster, { attemptTimeoutMs: ATTEMPT_TIMEOUT, maxAttempts: 3, maxRetainedBytes: 1 << 20 });
    const limit = new InFlightLimit<LocalNode>(MAX_IN_FLIGHT).counts(node => acks.pending(node));
    fanout = new EventFanout(acks, worlds, cluster, replies, limit, DEFAULT_ACK_TIMEOUT);
    emitter = subscriber('emitter', []);
  });

  afterEach(() => {
    jest.clearAllTimers();
    jest.useRealTimers();
  });

  describe('plain events', () => {
    it('go to every subscriber whose subject matches, with * for one token and > for the rest', () => {
      const star = subscriber('star', ['orders.*']);
      const rest = subscriber('rest', ['orders.>']);
      const exact = subscriber('exact', ['orders.created']);
      const region = subscriber('region', ['orders.*.eu']);
      const other = subscriber('other', ['users.>']);

      expect(fanout.publish(emitter, event(1, 'orders.created'))).toBe(3);
      expect([star, rest, exact, region, other].map(n => eventsOf(n).length)).toEqual([1, 1, 1, 0, 0]);

      expect(fanout.publish(emitter, event(2, 'orders.created.eu'))).toBe(2);
      expect([star, rest, exact, region, other].map(n => eventsOf(n).length)).toEqual([0, 1, 0, 1, 0]);

      // `>` needs at least one token after it.
      expect(fanout.publish(emitter, event(3, 'orders'))).toBe(0);
      expect(eventsOf(rest)).toEqual([]);
    });

    it('carry the emitter id, subject, payload and ext, as from the emitter, with no ack flags', () => {
      const sub = subscriber('sub', ['a.*']);
      const ext = encodePayload({ headers: { trace: 't1' } });
      fanout.publish(emitter, event(9, 'a.b', { ext }));
      const [frame] = eventsOf(sub);
      expect(frame).toEqual({
        type: FrameType.Event,
        id: 9,
        pattern: 'a.b',
        payload: encodePayload({ id: 9 }),
        peer: 'emitter',
        ext,
        claims: null,
      });
      expect(frame.flags).toBeUndefined();
      expect(frame.attempt).toBeUndefined();
      expect(decodePayload(frame.payload)).toEqual({ id: 9 });
    });

    it('are encoded once for all local recipients', () => {
      const [a, b, c] = ['a', 'b', 'c'].map(id => subscriber(id, ['x']));
      expect(fanout.publish(emitter, event(1, 'x'))).toBe(3);
      const [bytesA, bytesB, bytesC] = [a, b, c].map(n => n.session.socket.sent[0]);
      expect(bytesB).toBe(bytesA);
      expect(bytesC).toBe(bytesA);
    });

    it('reach a subscriber once however many of its patterns match', () => {
      const sub = subscriber('sub', ['x.*', 'x.>', 'x.y']);
      expect(fanout.publish(emitter, event(1, 'x.y'))).toBe(1);
      expect(eventsOf(sub)).toHaveLength(1);
    });

    it('go to one member per queue group, in turn, and to every plain subscriber', () => {
      const [g1, g2, g3] = ['g1', 'g2', 'g3'].map(id => subscriber(id, ['jobs'], 'g'));
      const [h1, h2] = ['h1', 'h2'].map(id => subscriber(id, ['jobs.>', 'jobs'], 'h'));
      const plain = subscriber('plain', ['jobs']);
      const counts = Array.from({ length: 6 }, (_, i) => fanout.publish(emitter, event(i + 1, 'jobs')));
      expect(counts).toEqual([3, 3, 3, 3, 3, 3]);
      expect([g1, g2, g3].map(n => eventsOf(n).map(f => f.id))).toEqual([
        [1, 4],
        [2, 5],
        [3, 6],
      ]);
      expect([h1, h2].map(n => eventsOf(n).map(f => f.id))).toEqual([
        [1, 3, 5],
        [2, 4, 6],
      ]);
      expect(eventsOf(plain)).toHaveLength(6);
    });

    it('reach nobody, and count 0, without a subscriber', () => {
      subscriber('elsewhere', ['y']);
      expect(fanout.publish(emitter, event(1, 'x'))).toBe(0);
    });

    it('skip and do not count a subscriber whose socket is closed', () => {
      const open = subscriber('open', ['x']);
      const closed = subscriber('closed', ['x']);
      closed.session.socket.close(1000);
      expect(fanout.publish(emitter, event(1, 'x'))).toBe(1);
      expect(eventsOf(open)).toHaveLength(1);
      expect(closed.session.socket.sent).toHaveLength(0);
    });

    it('stay in their tenant', () => {
      const elsewhere = fakeNode(worlds.ensure('t2'), { nodeId: 'far', events: ['x'] });
      worlds.get('t2')!.route(elsewhere);
      const here = subscriber('here', ['x']);
      expect(fanout.publish(emitter, event(1, 'x'))).toBe(1);
      expect(eventsOf(here)).toHaveLength(1);
      expect(elsewhere.session.socket.sent).toHaveLength(0);
    });
  });

  describe('targeted events (peer)', () => {
    it('go to the named node only, if it subscribes to the subject', () => {
      const target = subscriber('target', ['x.*']);
      const bystander = subscriber('bystander', ['x.*']);
      expect(fanout.publish(emitter, event(1, 'x.y', { peer: 'target' }))).toBe(1);
      expect(eventsOf(target)).toHaveLength(1);
      expect(eventsOf(bystander)).toHaveLength(0);
    });

    it('go to the named queue member whatever the group turn', () => {
      subscriber('q1', ['x'], 'g');
      const q2 = subscriber('q2', ['x'], 'g');
      expect(fanout.publish(emitter, event(1, 'x', { peer: 'q2' }))).toBe(1);
      expect(fanout.publish(emitter, event(2, 'x', { peer: 'q2' }))).toBe(1);
      expect(eventsOf(q2).map(f => f.id)).toEqual([1, 2]);
    });

    it('reach nobody when the named node does not subscribe to the subject, or is unknown', () => {
      const target = subscriber('target', ['other']);
      const bystander = subscriber('bystander', ['x']);
      expect(fanout.publish(emitter, event(1, 'x', { peer: 'target' }))).toBe(0);
      expect(fanout.publish(emitter, event(2, 'x', { peer: 'nobody' }))).toBe(0);
      expect(target.session.socket.sent).toHaveLength(0);
      expect(bystander.session.socket.sent).toHaveLength(0);
    });
  });

  describe('nodes of other relays', () => {
    let r: RemoteRelay;
    let s: RemoteRelay;

    beforeEach(() => {
      r = new RemoteRelay('instance-r', 'R');
      s = new RemoteRelay('instance-s', 'S');
      for (const node of [remoteNode(r, 'r1', ['x']), remoteNode(r, 'r2', ['x.>', 'x']), remoteNode(s, 's1', ['x'])]) world.route(node);
    });

    it('get one cluster message per relay naming its targets, counted when sent', () => {
      const send = jest.spyOn(cluster, 'send').mockReturnValue(true);
      const local = subscriber('local', ['x']);
      const ext = encodePayload('ext');
      const frame = event(4, 'x', { ext });
      expect(fanout.publish(emitter, frame)).toBe(4);
      expect(eventsOf(local)).toHaveLength(1);
      expect(send).toHaveBeenCalledTimes(2);
      const common = {
        type: Cmt.Event as const,
        tenant: '',
        id: 4,
        pattern: 'x',
        payload: frame.payload,
        emitterNodeId: 'emitter',
        ext,
        claims: null,
      };
      expect(send).toHaveBeenCalledWith(r, { ...common, targets: ['r1', 'r2'] });
      expect(send).toHaveBeenCalledWith(s, { ...common, targets: ['s1'] });
    });

    it('are not counted when their relay cannot be reached', () => {
      const send = jest.spyOn(cluster, 'send').mockImplementation(relay => relay === s);
      subscriber('local', ['x']);
      expect(fanout.publish(emitter, event(1, 'x'))).toBe(2);
      expect(send).toHaveBeenCalledTimes(2);
    });

    it('of a relay that is gone are skipped', () => {
      const send = jest.spyOn(cluster, 'send').mockReturnValue(true);
      r.gone = true;
      expect(fanout.publish(emitter, event(1, 'x'))).toBe(1);
      expect(send).toHaveBeenCalledTimes(1);
      expect(send).toHaveBeenCalledWith(s, expect.objectContaining({ targets: ['s1'] }));
    });
  });

  describe('acknowledge', () => {
    it('ACKs with the number of recipients, 0 included', () => {
      fanout.acknowledge(emitter, 5, 3);
      fanout.acknowledge(emitter, 6, 0);
      expect(emitter.session.socket.take()).toEqual([
        { type: FrameType.Ack, id: 5, recipients: 3 },
        { type: FrameType.Ack, id: 6, recipients: 0 },
      ]);
    });

    it('sends nothing for id 0, nor while handler acks are awaited (recipients undefined)', () => {
      fanout.acknowledge(emitter, 0, 3);
      fanout.acknowledge(emitter, 7, undefined);
      expect(emitter.session.socket.sent).toHaveLength(0);
    });
  });

  describe('handler acks', () => {
    it('hand each recipient a copy of its own and ACK the emitter once every handler answered', () => {
      const a = subscriber('a', ['x']);
      const b = subscriber('b', ['x']);
      expect(fanout.publish(emitter, handlersEvent(3, 'x'))).toBeUndefined();
      const [copyA] = eventsOf(a);
      const [copyB] = eventsOf(b);
      for (const copy of [copyA, copyB]) {
        expect(copy).toMatchObject({ type: FrameType.Event, pattern: 'x', peer: 'emitter', flags: EventFlag.ACK_HANDLERS, attempt: 1 });
        expect(copy.id).not.toBe(0);
      }
      expect(copyA.id).not.toBe(copyB.id);
      expect(acks.pending(emitter)).toBe(1);

      fanout.handled(a, copyA.id, null);
      expect(emitter.session.socket.take()).toEqual([]);
      fanout.handled(b, copyB.id, null);
      expect(emitter.session.socket.take()).toEqual([{ type: FrameType.Ack, id: 3, recipients: 2 }]);
      expect(acks.pending(emitter)).toBe(0);
      expect(acks.size).toBe(0);
    });

    it('are not asked for with id 0: the event is a plain one', () => {
      const a = subscriber('a', ['x']);
      expect(fanout.publish(emitter, handlersEvent(0, 'x'))).toBe(1);
      const [copy] = eventsOf(a);
      expect(copy.id).toBe(0);
      expect(copy.flags).toBeUndefined();
      expect(acks.size).toBe(0);
    });

    it('count 0 at once without a subscriber, or when none is open', () => {
      expect(fanout.publish(emitter, handlersEvent(1, 'x'))).toBe(0);
      const closed = subscriber('closed', ['x']);
      closed.session.socket.close(1000);
      expect(fanout.publish(emitter, handlersEvent(2, 'x'))).toBe(0);
      expect(acks.pending(emitter)).toBe(0);
      expect(acks.size).toBe(0);
    });

    it('go to the named node only, for a targeted event', () => {
      const target = subscriber('target', ['x']);
      const bystander = subscriber('bystander', ['x']);
      expect(fanout.publish(emitter, handlersEvent(1, 'x', { peer: 'target' }))).toBeUndefined();
      const [copy] = eventsOf(target);
      expect(eventsOf(bystander)).toEqual([]);
      fanout.handled(target, copy.id, null);
      expect(emitter.session.socket.take()).toEqual([{ type: FrameType.Ack, id: 1, recipients: 1 }]);
    });

    it('refuse an id already waiting for its handlers (BAD_FRAME), and take it again once answered', () => {
      const a = subscriber('a', ['x']);
      fanout.publish(emitter, handlersEvent(4, 'x'));
      const err = caught(() => fanout.publish(emitter, handlersEvent(4, 'x')));
      expect(err).toBeInstanceOf(RelayError);
      expect(err).toMatchObject({ code: RelayErrorCode.BAD_FRAME });
      const [copy] = eventsOf(a);
      expect(eventsOf(a)).toEqual([]);
      fanout.handled(a, copy.id, null);
      expect(fanout.publish(emitter, handlersEvent(4, 'x'))).toBeUndefined();
      expect(eventsOf(a)).toHaveLength(1);
    });

    it('count against the in-flight limit (RATE_LIMITED); plain events do not', () => {
      subscriber('a', ['x']);
      fanout.publish(emitter, handlersEvent(1, 'x'));
      fanout.publish(emitter, handlersEvent(2, 'x'));
      const err = caught(() => fanout.publish(emitter, handlersEvent(3, 'x')));
      expect(err).toBeInstanceOf(RelayError);
      expect(err).toMatchObject({ code: RelayErrorCode.RATE_LIMITED });
      expect(acks.pending(emitter)).toBe(MAX_IN_FLIGHT);
      expect(fanout.publish(emitter, event(3, 'x'))).toBe(1);
    });

    it('wait for the handlers as long as the event says, else the default, then fail with TIMEOUT', () => {
      subscriber('a', ['x']);
      fanout.publish(emitter, handlersEvent(1, 'x', { timeoutMs: 100 }));
      fanout.publish(emitter, handlersEvent(2, 'x'));
      jest.advanceTimersByTime(99);
      expect(emitter.session.socket.take()).toEqual([]);
      jest.advanceTimersByTime(1);
      const [first] = emitter.session.socket.take() as ErrorFrame[];
      expect(first).toMatchObject({ type: FrameType.Error, id: 1, code: RelayErrorCode.HANDLER_FAILED });
      expect(errorFromFrame(first).details).toEqual([{ nodeId: 'a', code: RelayErrorCode.TIMEOUT }]);
      jest.advanceTimersByTime(DEFAULT_ACK_TIMEOUT - 101);
      expect(emitter.session.socket.take()).toEqual([]);
      jest.advanceTimersByTime(1);
      expect(emitter.session.socket.take()).toMatchObject([{ type: FrameType.Error, id: 2, code: RelayErrorCode.HANDLER_FAILED }]);
    });

    it('report a handler that threw as HANDLER_FAILED', () => {
      const a = subscriber('a', ['x']);
      fanout.publish(emitter, handlersEvent(1, 'x'));
      const [copy] = eventsOf(a);
      fanout.handled(a, copy.id, encodePayload({ message: 'boom' }));
      const frames: Frame[] = emitter.session.socket.take();
      expect(frames).toHaveLength(1);
      const err = errorFromFrame(frames[0] as ErrorFrame);
      expect(err.code).toBe(RelayErrorCode.HANDLER_FAILED);
      expect(err.details).toEqual([{ nodeId: 'a', code: 'HANDLER_ERROR', error: { message: 'boom' } }]);
    });

    it('send copies for nodes of other relays through the cluster', () => {
      const send = jest.spyOn(cluster, 'send').mockReturnValue(true);
      const r = new RemoteRelay('instance-r', 'R');
      world.route(remoteNode(r, 'r1', ['x']));
      expect(fanout.publish(emitter, handlersEvent(1, 'x'))).toBeUndefined();
      expect(send).toHaveBeenCalledWith(r, expect.objectContaining({ type: Cmt.EventCopies, pattern: 'x', emitterNodeId: 'emitter' }));
      expect(acks.size).toBe(1);
    });
  });

  describe('from other relays', () => {
    function remoteEvent(targets: string[], tenant = ''): Msg<Cmt.Event> {
      return {
        type: Cmt.Event,
        from: 'instance-r',
        tenant,
        id: 8,
        pattern: 'x.y',
        payload: encodePayload('p'),
        emitterNodeId: 'far',
        ext: null,
        claims: null,
        targets,
      };
    }

    it('go to the named nodes of this relay that still subscribe, encoded once, as from the remote emitter', () => {
      const a = subscriber('a', ['x.*']);
      const b = subscriber('b', ['x.>']);
      const unsubscribed = subscriber('unsubscribed', ['z']);
      const closed = subscriber('closed', ['x.y']);
      closed.session.socket.close(1000);
      fanout.remoteEvent(remoteEvent(['a', 'b', 'unsubscribed', 'closed', 'unknown']));
      expect(a.session.socket.sent[0]).toBe(b.session.socket.sent[0]);
      expect(eventsOf(a)).toEqual([
        { type: FrameType.Event, id: 8, pattern: 'x.y', payload: encodePayload('p'), peer: 'far', ext: null, claims: null },
      ]);
      expect(eventsOf(b)).toHaveLength(1);
      expect(unsubscribed.session.socket.sent).toHaveLength(0);
      expect(closed.session.socket.sent).toHaveLength(0);
    });

    it('of an unknown tenant go nowhere', () => {
      const a = subscriber('a', ['x.*']);
      fanout.remoteEvent(remoteEvent(['a'], 'nobody'));
      expect(a.session.socket.sent).toHaveLength(0);
    });

    it('with handler acks: each copy under this relay’s id and the sender’s attempt, its HANDLED back to the sender', () => {
      const send = jest.spyOn(cluster, 'send').mockReturnValue(true);
      const r = new RemoteRelay('instance-r', 'R');
      const a = subscriber('a', ['x.*']);
      fanout.remoteEventCopies(r, {
        type: Cmt.EventCopies,
        from: 'instance-r',
        tenant: '',
        pattern: 'x.y',
        payload: encodePayload('p'),
        emitterNodeId: 'far',
        ext: null,
        claims: null,
        copies: [
          ['a', 41, 2],
          ['gone', 42, 1],
        ],
      });
      expect(send).toHaveBeenCalledWith(r, { type: Cmt.Handled, did: 42, code: RelayErrorCode.PROVIDER_DISCONNECTED, error: null });
      const [copy] = eventsOf(a);
      expect(copy).toMatchObject({ type: FrameType.Event, pattern: 'x.y', peer: 'far', flags: EventFlag.ACK_HANDLERS, attempt: 2 });
      expect(acks.size).toBe(1);
      fanout.handled(a, copy.id, null);
      expect(send).toHaveBeenLastCalledWith(r, { type: Cmt.Handled, did: 41, code: null, error: null });
      expect(acks.size).toBe(0);
    });
  });
});
