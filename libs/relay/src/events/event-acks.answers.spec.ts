/**
 * EventAcks for an event that asks for handler acks: each recipient's own copy, the one answer the
 * emitter gets once every copy is settled (ACK, or HANDLER_FAILED naming each failed handler), and
 * the emitter's deadline, byte bound and leaving. Queue groups: event-acks.queue-groups.spec.ts;
 * other relays: event-acks.other-relays.spec.ts.
 */
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { encodePayload, EventFlag, type EventFrame, FrameType, RelayError, RelayErrorCode } from '@wsrelay/protocol';
import {
  ATTEMPT_TIMEOUT,
  caught,
  copies,
  copy,
  failure,
  leaveFrom,
  type Node,
  PATTERN,
  setUpAcks,
  startFor,
  subscriberIn,
} from '../../spec-support/event-acks-setup.js';
import type { Routable } from '../routing/routable.js';
import type { World } from '../routing/world.js';
import type { EventAcks } from './event-acks.js';
import { HANDLER_ERROR } from './event-frame.js';

describe('EventAcks', () => {
  let world: World;
  let acks: EventAcks;
  let settled: jest.Mock<() => void>;
  let emitter: Node;

  /** A node of this relay subscribed to PATTERN (in `queue`), in routing. */
  function node(nodeId: string, queue?: string | null): Node {
    return subscriberIn(world, nodeId, queue);
  }

  /** The node leaves, as the relay core sees it go: out of routing, socket closed, then nodeGone. */
  function leave(n: Node): void {
    leaveFrom(world, acks, n);
  }

  function start(id: number, recipients: readonly Routable[], extra?: Partial<EventFrame>, timeoutMs?: number): number {
    return startFor(acks, emitter, id, recipients, extra, timeoutMs);
  }

  beforeEach(() => {
    jest.useFakeTimers();
    ({ world, acks, settled, emitter } = setUpAcks());
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
});
