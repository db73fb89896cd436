import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import {
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
import { codec, fakeNode, idleCluster } from '../../spec-support/fakes.js';
import { type ClusterOutgoing, ClusterMessageType as Cmt } from '../cluster/cluster-protocol.js';
import type { RelayCluster } from '../cluster/relay-cluster.js';
import { RemoteNode, RemoteRelay } from '../cluster/remote.js';
import type { Routable } from '../routing/routable.js';
import { World } from '../routing/world.js';
import { EventAcks, type EventAckSettings } from './event-acks.js';
import { eventFrame, HANDLER_ERROR } from './event-frame.js';

const ATTEMPT_TIMEOUT = 1000;
const MAX_ATTEMPTS = 3;
const MAX_RETAINED = 100;
/** The emitter's own deadline, well past every attempt unless a test says otherwise. */
const DEADLINE = 60_000;
const PATTERN = 'jobs';

type Node = ReturnType<typeof fakeNode>;

function frame(id: number, extra: Partial<EventFrame> = {}): EventFrame {
  return {
    type: FrameType.Event,
    id,
    pattern: PATTERN,
    payload: encodePayload({ job: id }),
    peer: null,
    ext: null,
    claims: null,
    flags: EventFlag.ACK_HANDLERS,
    ...extra,
  };
}

/** The copies a node was given since last asked. */
function copies(node: Node): EventFrame[] {
  return node.session.socket.take().filter((f): f is EventFrame => f.type === FrameType.Event);
}

/** The one copy a node was given since last asked. */
function copy(node: Node): EventFrame {
  const given = copies(node);
  expect(given).toHaveLength(1);
  return given[0];
}

/** The HANDLER_FAILED the emitter got (the only frame since last asked), decoded. */
function failure(emitter: Node, id: number): RelayError {
  const frames: Frame[] = emitter.session.socket.take();
  expect(frames).toHaveLength(1);
  expect(frames[0]).toMatchObject({ type: FrameType.Error, id, code: RelayErrorCode.HANDLER_FAILED });
  return errorFromFrame(frames[0] as ErrorFrame);
}

function remoteNode(relay: RemoteRelay, nodeId: string, queue: string | null = null): RemoteNode {
  return new RemoteNode(relay, { tenant: '', nodeId, service: null, patterns: [], events: [PATTERN], queue, subject: null, since: 1 });
}

/** The copies (node id, delivery id, attempt) an EventCopies message names. */
function copiesIn(m: ClusterOutgoing): ReadonlyArray<readonly [string, number, number]> {
  if (m.type !== Cmt.EventCopies) throw new Error(`expected EventCopies, got ${Cmt[m.type]}`);
  return m.copies;
}

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

describe('EventAcks', () => {
  let world: World;
  let cluster: RelayCluster;
  let acks: EventAcks;
  let settled: jest.Mock<() => void>;
  let emitter: Node;

  function make(settings: Partial<EventAckSettings> = {}): EventAcks {
    return new EventAcks(codec, cluster, {
      attemptTimeoutMs: ATTEMPT_TIMEOUT,
      maxAttempts: MAX_ATTEMPTS,
      maxRetainedBytes: MAX_RETAINED,
      onSettled: settled,
      ...settings,
    });
  }

  /** A node of this relay subscribed to PATTERN (in `queue`), in routing. */
  function node(nodeId: string, queue: string | null = null): Node {
    const n = fakeNode(world, { nodeId, events: [PATTERN], queue });
    world.route(n);
    return n;
  }

  /** The node leaves, as the relay core sees it go: out of routing, socket closed, then nodeGone. */
  function leave(n: Node): void {
    world.unroute(n);
    n.session.socket.close(1006);
    acks.nodeGone(n);
  }

  function start(id: number, recipients: readonly Routable[], extra: Partial<EventFrame> = {}, timeoutMs = DEADLINE): number {
    return acks.start(emitter, frame(id, extra), recipients, timeoutMs);
  }

  beforeEach(() => {
    jest.useFakeTimers();
    world = new World('');
    cluster = idleCluster();
    settled = jest.fn<() => void>();
    acks = make();
    emitter = fakeNode(world, { nodeId: 'emitter' });
    world.route(emitter);
  });

  afterEach(() => {
    jest.clearAllTimers();
    jest.useRealTimers();
  });

  describe('copies and answers', () => {
    it('gives each recipient its own copy (delivery id, attempt 1, the emitter as peer) and ACKs once all are handled', () => {
      const [a, b] = [node('a'), node('b')];
      const ext = encodePayload({ h: { k: 'v' } });
      expect(start(7, [a, b], { ext })).toBe(2);
      const [copyA, copyB] = [copy(a), copy(b)];
      expect(copyA).toEqual({
        type: FrameType.Event,
        id: copyA.id,
        pattern: PATTERN,
        payload: encodePayload({ job: 7 }),
        peer: 'emitter',
        ext,
        claims: null,
        flags: EventFlag.ACK_HANDLERS,
        attempt: 1,
      });
      expect(copyA.id).toBeGreaterThan(0);
      expect(copyB.id).toBeGreaterThan(0);
      expect(copyB.id).not.toBe(copyA.id);
      expect(acks.size).toBe(2);
      expect(acks.pending(emitter)).toBe(1);
      expect(acks.has(emitter, 7)).toBe(true);

      expect(acks.handled(a, copyA.id, null)).toBe(true);
      expect(emitter.session.socket.take()).toEqual([]);
      expect(acks.size).toBe(1);

      expect(acks.handled(b, copyB.id, null)).toBe(true);
      expect(emitter.session.socket.take()).toEqual([{ type: FrameType.Ack, id: 7, recipients: 2 }]);
      expect(acks.size).toBe(0);
      expect(acks.pending(emitter)).toBe(0);
      expect(acks.has(emitter, 7)).toBe(false);
      expect(jest.getTimerCount()).toBe(0);
    });

    it('keeps events of one emitter apart by their ids', () => {
      const a = node('a');
      start(1, [a]);
      start(2, [a]);
      const [first, second] = copies(a);
      expect(acks.pending(emitter)).toBe(2);
      acks.handled(a, second.id, null);
      expect(emitter.session.socket.take()).toEqual([{ type: FrameType.Ack, id: 2, recipients: 1 }]);
      acks.handled(a, first.id, null);
      expect(emitter.session.socket.take()).toEqual([{ type: FrameType.Ack, id: 1, recipients: 1 }]);
    });

    it('drops and counts a HANDLED that names no copy given to its sender', () => {
      const [a, b] = [node('a'), node('b')];
      start(7, [a, b]);
      const [copyA] = [copy(a), copy(b)];
      expect(acks.handled(b, copyA.id, null)).toBe(false);
      expect(acks.handled(a, 999_999, null)).toBe(false);
      expect(acks.dropped).toBe(2);
      expect(acks.size).toBe(2);
      expect(acks.handled(a, copyA.id, null)).toBe(true);
      expect(acks.handled(a, copyA.id, null)).toBe(false);
      expect(acks.dropped).toBe(3);
      expect(emitter.session.socket.take()).toEqual([]);
    });

    it('answers HANDLER_FAILED with each failed handler and its error once every copy is settled', () => {
      const [a, b, c] = [node('a'), node('b'), node('c')];
      start(7, [a, b, c]);
      const [copyA, copyB, copyC] = [copy(a), copy(b), copy(c)];
      acks.handled(b, copyB.id, encodePayload({ message: 'boom', status: 'error' }));
      expect(emitter.session.socket.take()).toEqual([]);
      acks.handled(a, copyA.id, null);
      acks.handled(c, copyC.id, encodePayload('bad input'));
      const err = failure(emitter, 7);
      expect(err.code).toBe(RelayErrorCode.HANDLER_FAILED);
      expect(err.message).toContain('2 of 3');
      expect(err.details).toEqual([
        { nodeId: 'b', code: HANDLER_ERROR, error: { message: 'boom', status: 'error' } },
        { nodeId: 'c', code: HANDLER_ERROR, error: 'bad input' },
      ]);
      expect(acks.pending(emitter)).toBe(0);
    });

    it('starts nothing when no recipient is open, and counts only the open ones', () => {
      const [a, b] = [node('a'), node('b')];
      b.session.socket.close(1000);
      expect(start(1, [b])).toBe(0);
      expect(acks.pending(emitter)).toBe(0);
      expect(acks.size).toBe(0);
      expect(jest.getTimerCount()).toBe(0);

      expect(start(2, [a, b])).toBe(1);
      acks.handled(a, copy(a).id, null);
      expect(emitter.session.socket.take()).toEqual([{ type: FrameType.Ack, id: 2, recipients: 1 }]);
    });

    it('calls onSettled as each copy settles (not when one moves)', () => {
      const [a, q1] = [node('a'), node('q1', 'g')];
      node('q2', 'g');
      start(1, [a, q1]);
      const copyA = copy(a);
      copy(q1);
      expect(settled).not.toHaveBeenCalled();
      acks.handled(a, copyA.id, null);
      expect(settled).toHaveBeenCalledTimes(1);
      leave(q1);
      expect(settled).toHaveBeenCalledTimes(1);
    });

    it('reports at most 100 failures, and a handler error over 4096 bytes without its body', () => {
      const nodes = Array.from({ length: 101 }, (_, i) => node(`n${String(i).padStart(3, '0')}`));
      start(1, nodes);
      const big = nodes[0];
      acks.handled(big, copy(big).id, encodePayload('x'.repeat(5000)));
      jest.advanceTimersByTime(ATTEMPT_TIMEOUT);
      const err = failure(emitter, 1);
      expect(err.message).toContain('101 of 101');
      expect(err.message).toContain('The first 100 are listed.');
      const details = err.details as Array<{ nodeId: string; code: string; error?: unknown }>;
      expect(details).toHaveLength(100);
      expect(details[0]).toEqual({ nodeId: 'n000', code: HANDLER_ERROR });
      expect(details[1]).toEqual({ nodeId: 'n001', code: RelayErrorCode.TIMEOUT });
      expect(details[99].nodeId).toBe('n099');
    });
  });

  describe('queue groups', () => {
    it('moves a copy its member does not confirm in time to another member (attempt 2, a fresh id); the late HANDLED is dropped', () => {
      const [q1, q2] = [node('q1', 'g'), node('q2', 'g')];
      start(7, [q1]);
      const first = copy(q1);
      jest.advanceTimersByTime(ATTEMPT_TIMEOUT - 1);
      expect(copies(q2)).toEqual([]);
      jest.advanceTimersByTime(1);
      const second = copy(q2);
      expect(second).toMatchObject({ pattern: PATTERN, peer: 'emitter', payload: encodePayload({ job: 7 }), attempt: 2 });
      expect(second.id).not.toBe(first.id);
      expect(acks.size).toBe(1);

      expect(acks.handled(q1, first.id, null)).toBe(false);
      expect(acks.dropped).toBe(1);
      expect(emitter.session.socket.take()).toEqual([]);

      expect(acks.handled(q2, second.id, null)).toBe(true);
      expect(emitter.session.socket.take()).toEqual([{ type: FrameType.Ack, id: 7, recipients: 1 }]);
      expect(copies(q1)).toEqual([]);
      expect(jest.getTimerCount()).toBe(0);
    });

    it('moves a copy at once when its member leaves', () => {
      const [q1, q2] = [node('q1', 'g'), node('q2', 'g')];
      start(7, [q1]);
      copy(q1);
      leave(q1);
      const moved = copy(q2);
      expect(moved.attempt).toBe(2);
      acks.handled(q2, moved.id, null);
      expect(emitter.session.socket.take()).toEqual([{ type: FrameType.Ack, id: 7, recipients: 1 }]);
    });

    it('tries members not tried yet first, then tried ones, up to maxAttempts; then the copy fails on its last member', () => {
      acks = make({ maxAttempts: 4 });
      const [q1, q2, q3] = [node('q1', 'g'), node('q2', 'g'), node('q3', 'g')];
      start(7, [q1]);
      const given: Array<[string, number]> = [];
      const record = () => {
        for (const n of [q1, q2, q3]) for (const c of copies(n)) given.push([n.nodeId, c.attempt!]);
      };
      record();
      for (let i = 0; i < 3; i++) {
        jest.advanceTimersByTime(ATTEMPT_TIMEOUT);
        record();
      }
      expect(given).toEqual([
        ['q1', 1],
        ['q2', 2],
        ['q3', 3],
        ['q1', 4],
      ]);
      expect(emitter.session.socket.take()).toEqual([]);
      jest.advanceTimersByTime(ATTEMPT_TIMEOUT);
      record();
      expect(given).toHaveLength(4);
      const err = failure(emitter, 7);
      expect(err.details).toEqual([{ nodeId: 'q1', code: RelayErrorCode.TIMEOUT }]);
      expect(acks.size).toBe(0);
    });

    it('passes over a backed-up member while another can take the copy', () => {
      const [q1, slow, q3] = [node('q1', 'g'), node('slow', 'g'), node('q3', 'g')];
      Object.defineProperty(slow, 'slow', { get: () => true });
      start(7, [q1]);
      copy(q1);
      leave(q1);
      expect(copies(slow)).toEqual([]);
      expect(copy(q3).attempt).toBe(2);
    });

    it('fails the copy with PROVIDER_DISCONNECTED when no other member is left', () => {
      const q1 = node('q1', 'g');
      start(7, [q1]);
      copy(q1);
      leave(q1);
      expect(failure(emitter, 7).details).toEqual([{ nodeId: 'q1', code: RelayErrorCode.PROVIDER_DISCONNECTED }]);
      expect(acks.size).toBe(0);
    });

    it('does not move the copy of a targeted event (peer)', () => {
      const [q1, q2] = [node('q1', 'g'), node('q2', 'g')];
      start(7, [q1], { peer: 'q1' });
      copy(q1);
      jest.advanceTimersByTime(ATTEMPT_TIMEOUT);
      expect(copies(q2)).toEqual([]);
      expect(failure(emitter, 7).details).toEqual([{ nodeId: 'q1', code: RelayErrorCode.TIMEOUT }]);
    });
  });

  describe('plain subscribers', () => {
    it('fail with PROVIDER_DISCONNECTED when they leave and TIMEOUT when they do not answer, in the order they failed', () => {
      const [a, b] = [node('a'), node('b')];
      start(7, [a, b]);
      copy(a);
      copy(b);
      leave(a);
      expect(emitter.session.socket.take()).toEqual([]);
      jest.advanceTimersByTime(ATTEMPT_TIMEOUT);
      const err = failure(emitter, 7);
      expect(err.message).toContain('2 of 2');
      expect(err.details).toEqual([
        { nodeId: 'a', code: RelayErrorCode.PROVIDER_DISCONNECTED },
        { nodeId: 'b', code: RelayErrorCode.TIMEOUT },
      ]);
    });
  });

  describe('the emitter', () => {
    it('fails what is left with TIMEOUT at its own deadline', () => {
      const [a, b] = [node('a'), node('b')];
      start(7, [a, b], {}, 500);
      acks.handled(a, copy(a).id, null);
      copy(b);
      jest.advanceTimersByTime(499);
      expect(emitter.session.socket.take()).toEqual([]);
      jest.advanceTimersByTime(1);
      expect(failure(emitter, 7).details).toEqual([{ nodeId: 'b', code: RelayErrorCode.TIMEOUT }]);
      expect(acks.size).toBe(0);
      expect(jest.getTimerCount()).toBe(0);
    });

    it('fails a queue copy still moving at its deadline, naming the member it was with', () => {
      const [q1, q2] = [node('q1', 'g'), node('q2', 'g')];
      start(7, [q1], {}, ATTEMPT_TIMEOUT + 10);
      jest.advanceTimersByTime(ATTEMPT_TIMEOUT);
      copy(q2);
      jest.advanceTimersByTime(10);
      expect(failure(emitter, 7).details).toEqual([{ nodeId: 'q2', code: RelayErrorCode.TIMEOUT }]);
    });

    it('may keep at most maxRetainedBytes of payload for copies that may move (RATE_LIMITED past it)', () => {
      const q1 = node('q1', 'g');
      const payload = new Uint8Array(60);
      start(1, [q1], { payload });
      const err = caught(() => start(2, [q1], { payload }));
      expect(err).toBeInstanceOf(RelayError);
      expect(err).toMatchObject({ code: RelayErrorCode.RATE_LIMITED });
      expect(acks.has(emitter, 2)).toBe(false);
      expect(acks.pending(emitter)).toBe(1);
      const [first] = copies(q1);
      expect(copies(q1)).toEqual([]);
      // Once the first is answered its bytes are free again.
      acks.handled(q1, first.id, null);
      expect(start(3, [q1], { payload })).toBe(1);
    });

    it('keeps no payload (and has no byte bound) when no copy can move: plain subscribers or a target', () => {
      const [a, q1] = [node('a'), node('q1', 'g')];
      const payload = new Uint8Array(60);
      expect(start(1, [a], { payload })).toBe(1);
      expect(start(2, [a], { payload })).toBe(1);
      expect(start(3, [q1], { payload, peer: 'q1' })).toBe(1);
      expect(start(4, [q1], { payload, peer: 'q1' })).toBe(1);
      expect(acks.pending(emitter)).toBe(4);
    });

    it('leaving abandons its events: no answer, later HANDLEDs dropped, timers gone', () => {
      const [a, b] = [node('a'), node('b')];
      start(1, [a, b]);
      const [copyA] = [copy(a), copy(b)];
      leave(emitter);
      expect(acks.pending(emitter)).toBe(0);
      expect(acks.size).toBe(0);
      expect(settled).toHaveBeenCalled();
      expect(jest.getTimerCount()).toBe(0);
      expect(acks.handled(a, copyA.id, null)).toBe(false);
      expect(acks.dropped).toBe(1);
      expect(emitter.session.socket.sent).toEqual([]);
    });
  });

  describe('nodes of other relays', () => {
    let r: RemoteRelay;
    let send: jest.SpiedFunction<RelayCluster['send']>;

    beforeEach(() => {
      r = new RemoteRelay('instance-r', 'R');
      send = jest.spyOn(cluster, 'send').mockReturnValue(true);
    });

    it('get their copies in one EventCopies per relay, and their relay’s HANDLED settles them', () => {
      const [r1, r2] = [remoteNode(r, 'r1'), remoteNode(r, 'r2')];
      const a = node('a');
      const f = frame(7);
      expect(acks.start(emitter, f, [r1, a, r2], DEADLINE)).toBe(3);
      expect(send).toHaveBeenCalledTimes(1);
      const [relay, m] = send.mock.calls[0];
      expect(relay).toBe(r);
      expect(m).toMatchObject({
        type: Cmt.EventCopies,
        tenant: '',
        pattern: PATTERN,
        payload: f.payload,
        emitterNodeId: 'emitter',
        claims: null,
      });
      const sent = copiesIn(m);
      expect(sent.map(([nodeId, , attempt]) => [nodeId, attempt])).toEqual([
        ['r1', 1],
        ['r2', 1],
      ]);
      const [d1, d2] = sent.map(c => c[1]);
      acks.handled(a, copy(a).id, null);

      // A stale answer from another relay, or one for an id it was not given, changes nothing.
      acks.remoteHandled(new RemoteRelay('instance-s', 'S'), d1, null, null);
      acks.remoteHandled(r, 123_456, null, null);
      expect(acks.size).toBe(2);

      acks.remoteHandled(r, d1, null, null);
      acks.remoteHandled(r, d2, HANDLER_ERROR, encodePayload('nope'));
      expect(failure(emitter, 7).details).toEqual([{ nodeId: 'r2', code: HANDLER_ERROR, error: 'nope' }]);
      expect(acks.size).toBe(0);
    });

    it('move a queue copy their relay could not deliver to another member', () => {
      const rq = remoteNode(r, 'rq', 'g');
      world.route(rq);
      const q2 = node('q2', 'g');
      acks.start(emitter, frame(7), [rq], DEADLINE);
      const did = copiesIn(send.mock.calls[0][1])[0][1];
      acks.remoteHandled(r, did, RelayErrorCode.PROVIDER_DISCONNECTED, null);
      const moved = copy(q2);
      expect(moved.attempt).toBe(2);
      acks.handled(q2, moved.id, null);
      expect(emitter.session.socket.take()).toEqual([{ type: FrameType.Ack, id: 7, recipients: 1 }]);
    });

    it('fail with PROVIDER_DISCONNECTED when their node or relay is gone', () => {
      const [r1, r2] = [remoteNode(r, 'r1'), remoteNode(r, 'r2')];
      const s = new RemoteRelay('instance-s', 'S');
      const s1 = remoteNode(s, 's1');
      acks.start(emitter, frame(7), [r1, r2, s1], DEADLINE);
      acks.remoteNodeGone(r1);
      expect(acks.size).toBe(2);
      s.gone = true;
      acks.relayGone(s);
      expect(acks.size).toBe(1);
      acks.relayGone(r);
      expect(failure(emitter, 7).details).toEqual([
        { nodeId: 'r1', code: RelayErrorCode.PROVIDER_DISCONNECTED },
        { nodeId: 's1', code: RelayErrorCode.PROVIDER_DISCONNECTED },
        { nodeId: 'r2', code: RelayErrorCode.PROVIDER_DISCONNECTED },
      ]);
    });

    it('fail at once (not at their timeout) when the cluster cannot send to their relay', () => {
      send.mockReturnValue(false);
      acks.start(emitter, frame(7), [remoteNode(r, 'r1')], DEADLINE);
      expect(acks.size).toBe(1);
      jest.runAllTicks();
      expect(failure(emitter, 7).details).toEqual([{ nodeId: 'r1', code: RelayErrorCode.PROVIDER_DISCONNECTED }]);
      expect(acks.size).toBe(0);
    });
  });

  describe('copies other relays drive', () => {
    let r: RemoteRelay;
    let send: jest.SpiedFunction<RelayCluster['send']>;
    const bytesFor = (id: number, attempt: number) =>
      codec.encode(eventFrame({ pattern: PATTERN, payload: encodePayload('p'), ext: null }, id, 'far', null, attempt));

    beforeEach(() => {
      r = new RemoteRelay('instance-r', 'R');
      send = jest.spyOn(cluster, 'send').mockReturnValue(true);
    });

    it('are handed over under this relay’s id; the HANDLED, or the handler’s error, goes back under the other relay’s id', () => {
      const [a, b] = [node('a'), node('b')];
      acks.relay(
        r,
        world,
        PATTERN,
        [
          ['a', 41, 2],
          ['b', 42, 1],
        ],
        bytesFor,
      );
      const [copyA, copyB] = [copy(a), copy(b)];
      expect(copyA).toMatchObject({ pattern: PATTERN, peer: 'far', flags: EventFlag.ACK_HANDLERS, attempt: 2 });
      expect(copyB.attempt).toBe(1);
      expect(acks.size).toBe(2);
      expect(send).not.toHaveBeenCalled();

      expect(acks.handled(b, copyA.id, null)).toBe(false);
      expect(acks.handled(a, copyA.id, null)).toBe(true);
      expect(send).toHaveBeenLastCalledWith(r, { type: Cmt.Handled, did: 41, code: null, error: null });
      const error = encodePayload('boom');
      acks.handled(b, copyB.id, error);
      expect(send).toHaveBeenLastCalledWith(r, { type: Cmt.Handled, did: 42, code: HANDLER_ERROR, error });
      expect(acks.size).toBe(0);
      expect(settled).toHaveBeenCalledTimes(2);
      expect(jest.getTimerCount()).toBe(0);
    });

    it('for a node that is unknown, closed or not subscribed are answered PROVIDER_DISCONNECTED at once', () => {
      const closed = node('closed');
      closed.session.socket.close(1000);
      const other = fakeNode(world, { nodeId: 'other', events: ['other'] });
      world.route(other);
      acks.relay(
        r,
        world,
        PATTERN,
        [
          ['unknown', 1, 1],
          ['closed', 2, 1],
          ['other', 3, 1],
        ],
        bytesFor,
      );
      acks.relay(r, undefined, PATTERN, [['anyone', 4, 1]], bytesFor);
      expect(send.mock.calls.map(([, m]) => m)).toEqual(
        [1, 2, 3, 4].map(did => ({ type: Cmt.Handled, did, code: RelayErrorCode.PROVIDER_DISCONNECTED, error: null })),
      );
      expect(acks.size).toBe(0);
      expect(other.session.socket.sent).toEqual([]);
    });

    it('are answered PROVIDER_DISCONNECTED when their node leaves, and dropped unanswered when their relay is gone', () => {
      const [a, b] = [node('a'), node('b')];
      acks.relay(
        r,
        world,
        PATTERN,
        [
          ['a', 41, 1],
          ['b', 42, 1],
        ],
        bytesFor,
      );
      leave(a);
      expect(send).toHaveBeenCalledWith(r, { type: Cmt.Handled, did: 41, code: RelayErrorCode.PROVIDER_DISCONNECTED, error: null });
      expect(acks.size).toBe(1);
      acks.relayGone(r);
      expect(send).toHaveBeenCalledTimes(1);
      expect(acks.size).toBe(0);
      expect(acks.handled(b, copy(b).id, null)).toBe(false);
      expect(jest.getTimerCount()).toBe(0);
    });

    it('do not share delivery ids with the copies this relay drives', () => {
      const a = node('a');
      start(7, [a]);
      acks.relay(r, world, PATTERN, [['a', 41, 1]], bytesFor);
      const [own, relayed] = copies(a);
      expect(own.id).not.toBe(relayed.id);
      acks.handled(a, relayed.id, null);
      expect(send).toHaveBeenLastCalledWith(r, expect.objectContaining({ did: 41 }));
      expect(acks.pending(emitter)).toBe(1);
      acks.handled(a, own.id, null);
      expect(emitter.session.socket.take()).toEqual([{ type: FrameType.Ack, id: 7, recipients: 1 }]);
    });
  });
});
