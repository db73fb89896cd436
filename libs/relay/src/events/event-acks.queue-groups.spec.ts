/**
 * EventAcks when a recipient leaves or does not confirm in time: a queue group's copy moves to
 * another member (up to maxAttempts), a plain subscriber's copy fails. The answers themselves:
 * event-acks.answers.spec.ts.
 */
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { encodePayload, type EventFrame, FrameType, RelayErrorCode } from '@wsrelay/protocol';
import {
  ATTEMPT_TIMEOUT,
  copies,
  copy,
  failure,
  leaveFrom,
  makeAcks,
  type Node,
  PATTERN,
  setUpAcks,
  startFor,
  subscriberIn,
} from '../../spec-support/event-acks-setup.js';
import type { RelayCluster } from '../cluster/relay-cluster.js';
import type { Routable } from '../routing/routable.js';
import type { World } from '../routing/world.js';
import type { EventAcks, EventAckSettings } from './event-acks.js';

describe('EventAcks', () => {
  let world: World;
  let cluster: RelayCluster;
  let acks: EventAcks;
  let settled: jest.Mock<() => void>;
  let emitter: Node;

  function make(settings?: Partial<EventAckSettings>): EventAcks {
    return makeAcks(cluster, settled, settings);
  }

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
    ({ world, cluster, acks, settled, emitter } = setUpAcks());
  });

  afterEach(() => {
    jest.clearAllTimers();
    jest.useRealTimers();
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
});
