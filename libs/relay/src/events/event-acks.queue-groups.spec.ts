/**
 * EventAcks when a recipient leaves or does not confirm in time: a queue group's copy moves to
 * another member (up to maxAttempts), a plain subscriber's copy fails. The answers themselves:
 * event-acks.answers.spec.ts.
 */
import { describe, expect, it, jest } from '@jest/globals';
import { encodePayload, FrameType, RelayErrorCode } from '@wsrelay/protocol';
import { ackFixture, ATTEMPT_TIMEOUT, copies, copy, failure, PATTERN } from '../../spec-support/event-acks-setup.js';

describe('EventAcks', () => {
  /** Fresh handler acks for each test, with fake timers (see ackFixture). */
  const t = ackFixture();

  describe('queue groups', () => {
    it('moves a copy its member does not confirm in time to another member (attempt 2, a fresh id); the late HANDLED is dropped', () => {
      const [q1, q2] = [t.node('q1', 'g'), t.node('q2', 'g')];
      t.start(7, [q1]);
      const first = copy(q1);
      jest.advanceTimersByTime(ATTEMPT_TIMEOUT - 1);
      expect(copies(q2)).toEqual([]);
      jest.advanceTimersByTime(1);
      const second = copy(q2);
      expect(second).toMatchObject({ pattern: PATTERN, peer: 'emitter', payload: encodePayload({ job: 7 }), attempt: 2 });
      expect(second.id).not.toBe(first.id);
      expect(t.acks.size).toBe(1);

      expect(t.acks.handled(q1, first.id, null)).toBe(false);
      expect(t.acks.dropped).toBe(1);
      expect(t.emitter.session.socket.take()).toEqual([]);

      expect(t.acks.handled(q2, second.id, null)).toBe(true);
      expect(t.emitter.session.socket.take()).toEqual([{ type: FrameType.Ack, id: 7, recipients: 1 }]);
      expect(copies(q1)).toEqual([]);
      expect(jest.getTimerCount()).toBe(0);
    });

    it('moves a copy at once when its member leaves', () => {
      const [q1, q2] = [t.node('q1', 'g'), t.node('q2', 'g')];
      t.start(7, [q1]);
      copy(q1);
      t.leave(q1);
      const moved = copy(q2);
      expect(moved.attempt).toBe(2);
      t.acks.handled(q2, moved.id, null);
      expect(t.emitter.session.socket.take()).toEqual([{ type: FrameType.Ack, id: 7, recipients: 1 }]);
    });

    it('tries members not tried yet first, then tried ones, up to maxAttempts; then the copy fails on its last member', () => {
      t.acks = t.make({ maxAttempts: 4 });
      const [q1, q2, q3] = [t.node('q1', 'g'), t.node('q2', 'g'), t.node('q3', 'g')];
      t.start(7, [q1]);
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
      expect(t.emitter.session.socket.take()).toEqual([]);
      jest.advanceTimersByTime(ATTEMPT_TIMEOUT);
      record();
      expect(given).toHaveLength(4);
      const err = failure(t.emitter, 7);
      expect(err.details).toEqual([{ nodeId: 'q1', code: RelayErrorCode.TIMEOUT }]);
      expect(t.acks.size).toBe(0);
    });

    it('passes over a backed-up member while another can take the copy', () => {
      const [q1, slow, q3] = [t.node('q1', 'g'), t.node('slow', 'g'), t.node('q3', 'g')];
      Object.defineProperty(slow, 'slow', { get: () => true });
      t.start(7, [q1]);
      copy(q1);
      t.leave(q1);
      expect(copies(slow)).toEqual([]);
      expect(copy(q3).attempt).toBe(2);
    });

    it('fails the copy with PROVIDER_DISCONNECTED when no other member is left', () => {
      const q1 = t.node('q1', 'g');
      t.start(7, [q1]);
      copy(q1);
      t.leave(q1);
      expect(failure(t.emitter, 7).details).toEqual([{ nodeId: 'q1', code: RelayErrorCode.PROVIDER_DISCONNECTED }]);
      expect(t.acks.size).toBe(0);
    });

    it('does not move the copy of a targeted event (peer)', () => {
      const [q1, q2] = [t.node('q1', 'g'), t.node('q2', 'g')];
      t.start(7, [q1], { peer: 'q1' });
      copy(q1);
      jest.advanceTimersByTime(ATTEMPT_TIMEOUT);
      expect(copies(q2)).toEqual([]);
      expect(failure(t.emitter, 7).details).toEqual([{ nodeId: 'q1', code: RelayErrorCode.TIMEOUT }]);
    });
  });

  describe('plain subscribers', () => {
    it('fail with PROVIDER_DISCONNECTED when they leave and TIMEOUT when they do not answer, in the order they failed', () => {
      const [a, b] = [t.node('a'), t.node('b')];
      t.start(7, [a, b]);
      copy(a);
      copy(b);
      t.leave(a);
      expect(t.emitter.session.socket.take()).toEqual([]);
      jest.advanceTimersByTime(ATTEMPT_TIMEOUT);
      const err = failure(t.emitter, 7);
      expect(err.message).toContain('2 of 2');
      expect(err.details).toEqual([
        { nodeId: 'a', code: RelayErrorCode.PROVIDER_DISCONNECTED },
        { nodeId: 'b', code: RelayErrorCode.TIMEOUT },
      ]);
    });
  });
});
