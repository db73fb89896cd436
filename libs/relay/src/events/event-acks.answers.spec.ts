/**
 * EventAcks for an event that asks for handler acks: each recipient's own copy, the one answer the
 * emitter gets once every copy is settled (ACK, or HANDLER_FAILED naming each failed handler), and
 * the emitter's deadline, byte bound and leaving. Queue groups: event-acks.queue-groups.spec.ts;
 * other relays: event-acks.other-relays.spec.ts.
 */
import { describe, expect, it, jest } from '@jest/globals';
import { encodePayload, EventFlag, FrameType, RelayError, RelayErrorCode, RelayErrorMessages } from '@wsrelay/protocol';
import { ackFixture, ATTEMPT_TIMEOUT, caught, copies, copy, failure, PATTERN, startFor } from '../../spec-support/event-acks-setup.js';
import { fakeNode } from '../../spec-support/fakes.js';
import { Budget } from '../internal/budget.js';
import { HANDLER_ERROR } from './event-frame.js';

describe('EventAcks', () => {
  /** Fresh handler acks for each test, with fake timers (see ackFixture). */
  const t = ackFixture();

  describe('copies and answers', () => {
    it('gives each recipient its own copy (delivery id, attempt 1, the emitter as peer) and ACKs once all are handled', () => {
      const [a, b] = [t.node('a'), t.node('b')];
      const ext = encodePayload({ h: { k: 'v' } });
      expect(t.start(7, [a, b], { ext })).toBe(2);
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
      expect(t.acks.size).toBe(2);
      expect(t.acks.pending(t.emitter)).toBe(1);
      expect(t.acks.has(t.emitter, 7)).toBe(true);

      expect(t.acks.handled(a, copyA.id, null)).toBe(true);
      expect(t.emitter.session.socket.take()).toEqual([]);
      expect(t.acks.size).toBe(1);

      expect(t.acks.handled(b, copyB.id, null)).toBe(true);
      expect(t.emitter.session.socket.take()).toEqual([{ type: FrameType.Ack, id: 7, recipients: 2 }]);
      expect(t.acks.size).toBe(0);
      expect(t.acks.pending(t.emitter)).toBe(0);
      expect(t.acks.has(t.emitter, 7)).toBe(false);
      expect(jest.getTimerCount()).toBe(0);
    });

    it('keeps events of one emitter apart by their ids', () => {
      const a = t.node('a');
      t.start(1, [a]);
      t.start(2, [a]);
      const [first, second] = copies(a);
      expect(t.acks.pending(t.emitter)).toBe(2);
      t.acks.handled(a, second.id, null);
      expect(t.emitter.session.socket.take()).toEqual([{ type: FrameType.Ack, id: 2, recipients: 1 }]);
      t.acks.handled(a, first.id, null);
      expect(t.emitter.session.socket.take()).toEqual([{ type: FrameType.Ack, id: 1, recipients: 1 }]);
    });

    it('drops and counts a HANDLED that names no copy given to its sender', () => {
      const [a, b] = [t.node('a'), t.node('b')];
      t.start(7, [a, b]);
      const [copyA] = [copy(a), copy(b)];
      expect(t.acks.handled(b, copyA.id, null)).toBe(false);
      expect(t.acks.handled(a, 999_999, null)).toBe(false);
      expect(t.acks.dropped).toBe(2);
      expect(t.acks.size).toBe(2);
      expect(t.acks.handled(a, copyA.id, null)).toBe(true);
      expect(t.acks.handled(a, copyA.id, null)).toBe(false);
      expect(t.acks.dropped).toBe(3);
      expect(t.emitter.session.socket.take()).toEqual([]);
    });

    it('answers HANDLER_FAILED with each failed handler and its error once every copy is settled', () => {
      const [a, b, c] = [t.node('a'), t.node('b'), t.node('c')];
      t.start(7, [a, b, c]);
      const [copyA, copyB, copyC] = [copy(a), copy(b), copy(c)];
      t.acks.handled(b, copyB.id, encodePayload({ message: 'boom', status: 'error' }));
      expect(t.emitter.session.socket.take()).toEqual([]);
      t.acks.handled(a, copyA.id, null);
      t.acks.handled(c, copyC.id, encodePayload('bad input'));
      const err = failure(t.emitter, 7);
      expect(err.code).toBe(RelayErrorCode.HANDLER_FAILED);
      expect(err.message).toContain('2 of 3');
      expect(err.details).toEqual([
        { nodeId: 'b', code: HANDLER_ERROR, error: { message: 'boom', status: 'error' } },
        { nodeId: 'c', code: HANDLER_ERROR, error: 'bad input' },
      ]);
      expect(t.acks.pending(t.emitter)).toBe(0);
    });

    it('starts nothing when no recipient is open, and counts only the open ones', () => {
      const [a, b] = [t.node('a'), t.node('b')];
      b.session.socket.close(1000);
      expect(t.start(1, [b])).toBe(0);
      expect(t.acks.pending(t.emitter)).toBe(0);
      expect(t.acks.size).toBe(0);
      expect(jest.getTimerCount()).toBe(0);

      expect(t.start(2, [a, b])).toBe(1);
      t.acks.handled(a, copy(a).id, null);
      expect(t.emitter.session.socket.take()).toEqual([{ type: FrameType.Ack, id: 2, recipients: 1 }]);
    });

    it('calls onSettled as each copy settles (not when one moves)', () => {
      const [a, q1] = [t.node('a'), t.node('q1', 'g')];
      t.node('q2', 'g');
      t.start(1, [a, q1]);
      const copyA = copy(a);
      copy(q1);
      expect(t.settled).not.toHaveBeenCalled();
      t.acks.handled(a, copyA.id, null);
      expect(t.settled).toHaveBeenCalledTimes(1);
      t.leave(q1);
      expect(t.settled).toHaveBeenCalledTimes(1);
    });

    it('reports at most 100 failures, and a handler error over 4096 bytes without its body', () => {
      const nodes = Array.from({ length: 101 }, (_, i) => t.node(`n${String(i).padStart(3, '0')}`));
      t.start(1, nodes);
      const big = nodes[0];
      t.acks.handled(big, copy(big).id, encodePayload('x'.repeat(5000)));
      jest.advanceTimersByTime(ATTEMPT_TIMEOUT);
      const err = failure(t.emitter, 1);
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
      const [a, b] = [t.node('a'), t.node('b')];
      t.start(7, [a, b], {}, 500);
      t.acks.handled(a, copy(a).id, null);
      copy(b);
      jest.advanceTimersByTime(499);
      expect(t.emitter.session.socket.take()).toEqual([]);
      jest.advanceTimersByTime(1);
      expect(failure(t.emitter, 7).details).toEqual([{ nodeId: 'b', code: RelayErrorCode.TIMEOUT }]);
      expect(t.acks.size).toBe(0);
      expect(jest.getTimerCount()).toBe(0);
    });

    it('fails a queue copy still moving at its deadline, naming the member it was with', () => {
      const [q1, q2] = [t.node('q1', 'g'), t.node('q2', 'g')];
      t.start(7, [q1], {}, ATTEMPT_TIMEOUT + 10);
      jest.advanceTimersByTime(ATTEMPT_TIMEOUT);
      copy(q2);
      jest.advanceTimersByTime(10);
      expect(failure(t.emitter, 7).details).toEqual([{ nodeId: 'q2', code: RelayErrorCode.TIMEOUT }]);
    });

    it('may keep at most maxRetainedBytes of payload for copies that may move (RATE_LIMITED past it)', () => {
      const q1 = t.node('q1', 'g');
      const payload = new Uint8Array(60);
      t.start(1, [q1], { payload });
      const err = caught(() => t.start(2, [q1], { payload }));
      expect(err).toBeInstanceOf(RelayError);
      expect(err).toMatchObject({ code: RelayErrorCode.RATE_LIMITED });
      expect(t.acks.has(t.emitter, 2)).toBe(false);
      expect(t.acks.pending(t.emitter)).toBe(1);
      const [first] = copies(q1);
      expect(copies(q1)).toEqual([]);
      // Once the first is answered its bytes are free again.
      t.acks.handled(q1, first.id, null);
      expect(t.start(3, [q1], { payload })).toBe(1);
    });

    it('keeps at most the relay-wide retainedBytes for all emitters together, one emitter its share (RATE_LIMITED past either), given back as events end', () => {
      const retainedBytes = new Budget(240);
      t.acks = t.make({ maxRetainedBytes: 1000, retainedBytes });
      const q1 = t.node('q1', 'g');
      const others = ['o1', 'o2', 'o3', 'o4'].map(nodeId => fakeNode(t.world, { nodeId }));
      const payload = new Uint8Array(60);
      const what = 'payloads of events with handler acks';
      expect(t.start(1, [q1], { payload })).toBe(1);
      // Past its share (a quarter: 60 bytes), though the relay has room; its per-connection bound (1000) is larger.
      const share = RelayErrorMessages.connectionBudgetShare(what, 'retainedBytes', 60);
      expect(caught(() => t.start(2, [q1], { payload }))).toMatchObject({ code: RelayErrorCode.RATE_LIMITED, message: share });
      for (const o of others.slice(0, 3)) expect(startFor(t.acks, o, 1, [q1], { payload })).toBe(1);
      const full = RelayErrorMessages.relayBudgetFull(what, 'retainedBytes', 240);
      expect(caught(() => startFor(t.acks, others[3], 1, [q1], { payload }))).toMatchObject({
        code: RelayErrorCode.RATE_LIMITED,
        message: full,
      });
      expect(t.acks.pending(others[3])).toBe(0);
      expect(retainedBytes.status()).toEqual({ used: 240, limit: 240, refused: 2 });
      // Answered: room again, for anyone; an emitter that leaves gives back what its events kept.
      t.acks.handled(q1, copies(q1)[0].id, null);
      expect(startFor(t.acks, others[3], 2, [q1], { payload })).toBe(1);
      expect(retainedBytes.used).toBe(240);
      for (const o of others) t.acks.nodeGone(o);
      expect(retainedBytes.used).toBe(0);
    });

    it('keeps no payload (and has no byte bound) when no copy can move: plain subscribers or a target', () => {
      const [a, q1] = [t.node('a'), t.node('q1', 'g')];
      const payload = new Uint8Array(60);
      expect(t.start(1, [a], { payload })).toBe(1);
      expect(t.start(2, [a], { payload })).toBe(1);
      expect(t.start(3, [q1], { payload, peer: 'q1' })).toBe(1);
      expect(t.start(4, [q1], { payload, peer: 'q1' })).toBe(1);
      expect(t.acks.pending(t.emitter)).toBe(4);
    });

    it('leaving abandons its events: no answer, later HANDLEDs dropped, timers gone', () => {
      const [a, b] = [t.node('a'), t.node('b')];
      t.start(1, [a, b]);
      const [copyA] = [copy(a), copy(b)];
      t.leave(t.emitter);
      expect(t.acks.pending(t.emitter)).toBe(0);
      expect(t.acks.size).toBe(0);
      expect(t.settled).toHaveBeenCalled();
      expect(jest.getTimerCount()).toBe(0);
      expect(t.acks.handled(a, copyA.id, null)).toBe(false);
      expect(t.acks.dropped).toBe(1);
      expect(t.emitter.session.socket.sent).toEqual([]);
    });
  });
});
