/**
 * EventFanout for events that ask for handler acks: a copy of its own for each recipient, the ACK
 * once every handler answered, the in-flight limit and the deadline, and HANDLER_FAILED. Plain
 * events: event-fanout.plain.spec.ts.
 */
import { describe, expect, it, jest } from '@jest/globals';
import {
  encodePayload,
  type ErrorFrame,
  errorFromFrame,
  EventFlag,
  type Frame,
  FrameType,
  RelayError,
  RelayErrorCode,
} from '@wsrelay/protocol';
import {
  caught,
  DEFAULT_ACK_TIMEOUT,
  event,
  eventsOf,
  fanoutFixture,
  handlersEvent,
  MAX_IN_FLIGHT,
  remoteNode,
} from '../../spec-support/event-fanout-setup.js';
import { fakeNode } from '../../spec-support/fakes.js';
import { OPEN_IDENTITY } from '../auth/relay-auth.service.js';
import { ClusterMessageType as Cmt } from '../cluster/cluster-protocol.js';
import { RemoteNode, RemoteRelay } from '../cluster/remote.js';

describe('EventFanout', () => {
  /** A fresh fan-out for each test, with fake timers (see fanoutFixture). */
  const t = fanoutFixture();

  describe('handler acks', () => {
    it('hand each recipient a copy of its own and ACK the emitter once every handler answered', () => {
      const a = t.subscriber('a', ['x']);
      const b = t.subscriber('b', ['x']);
      expect(t.fanout.publish(t.emitter, handlersEvent(3, 'x'))).toBeUndefined();
      const [copyA] = eventsOf(a);
      const [copyB] = eventsOf(b);
      for (const copy of [copyA, copyB]) {
        expect(copy).toMatchObject({ type: FrameType.Event, pattern: 'x', peer: 'emitter', flags: EventFlag.ACK_HANDLERS, attempt: 1 });
        expect(copy.id).not.toBe(0);
      }
      expect(copyA.id).not.toBe(copyB.id);
      expect(t.acks.pending(t.emitter)).toBe(1);

      t.fanout.handled(a, copyA.id, null);
      expect(t.emitter.session.socket.take()).toEqual([]);
      t.fanout.handled(b, copyB.id, null);
      expect(t.emitter.session.socket.take()).toEqual([{ type: FrameType.Ack, id: 3, recipients: 2 }]);
      expect(t.acks.pending(t.emitter)).toBe(0);
      expect(t.acks.size).toBe(0);
    });

    it('are not asked for with id 0: the event is a plain one', () => {
      const a = t.subscriber('a', ['x']);
      expect(t.fanout.publish(t.emitter, handlersEvent(0, 'x'))).toBe(1);
      const [copy] = eventsOf(a);
      expect(copy.id).toBe(0);
      expect(copy.flags).toBeUndefined();
      expect(t.acks.size).toBe(0);
    });

    it('count 0 at once without a subscriber, or when none is open', () => {
      expect(t.fanout.publish(t.emitter, handlersEvent(1, 'x'))).toBe(0);
      const closed = t.subscriber('closed', ['x']);
      closed.session.socket.close(1000);
      expect(t.fanout.publish(t.emitter, handlersEvent(2, 'x'))).toBe(0);
      expect(t.acks.pending(t.emitter)).toBe(0);
      expect(t.acks.size).toBe(0);
    });

    it('go to the named node only, for a targeted event', () => {
      const target = t.subscriber('target', ['x']);
      const bystander = t.subscriber('bystander', ['x']);
      expect(t.fanout.publish(t.emitter, handlersEvent(1, 'x', { peer: 'target' }))).toBeUndefined();
      const [copy] = eventsOf(target);
      expect(eventsOf(bystander)).toEqual([]);
      t.fanout.handled(target, copy.id, null);
      expect(t.emitter.session.socket.take()).toEqual([{ type: FrameType.Ack, id: 1, recipients: 1 }]);
    });

    it('refuse an id already waiting for its handlers (BAD_FRAME), and take it again once answered', () => {
      const a = t.subscriber('a', ['x']);
      t.fanout.publish(t.emitter, handlersEvent(4, 'x'));
      const err = caught(() => t.fanout.publish(t.emitter, handlersEvent(4, 'x')));
      expect(err).toBeInstanceOf(RelayError);
      expect(err).toMatchObject({ code: RelayErrorCode.BAD_FRAME });
      const [copy] = eventsOf(a);
      expect(eventsOf(a)).toEqual([]);
      t.fanout.handled(a, copy.id, null);
      expect(t.fanout.publish(t.emitter, handlersEvent(4, 'x'))).toBeUndefined();
      expect(eventsOf(a)).toHaveLength(1);
    });

    it('count against the in-flight limit (RATE_LIMITED); plain events do not', () => {
      t.subscriber('a', ['x']);
      t.fanout.publish(t.emitter, handlersEvent(1, 'x'));
      t.fanout.publish(t.emitter, handlersEvent(2, 'x'));
      const err = caught(() => t.fanout.publish(t.emitter, handlersEvent(3, 'x')));
      expect(err).toBeInstanceOf(RelayError);
      expect(err).toMatchObject({ code: RelayErrorCode.RATE_LIMITED });
      expect(t.acks.pending(t.emitter)).toBe(MAX_IN_FLIGHT);
      expect(t.fanout.publish(t.emitter, event(3, 'x'))).toBe(1);
    });

    it('wait for the handlers as long as the event says, else the default, then fail with TIMEOUT', () => {
      t.subscriber('a', ['x']);
      t.fanout.publish(t.emitter, handlersEvent(1, 'x', { timeoutMs: 100 }));
      t.fanout.publish(t.emitter, handlersEvent(2, 'x'));
      jest.advanceTimersByTime(99);
      expect(t.emitter.session.socket.take()).toEqual([]);
      jest.advanceTimersByTime(1);
      const [first] = t.emitter.session.socket.take() as ErrorFrame[];
      expect(first).toMatchObject({ type: FrameType.Error, id: 1, code: RelayErrorCode.HANDLER_FAILED });
      expect(errorFromFrame(first).details).toEqual([{ nodeId: 'a', code: RelayErrorCode.TIMEOUT }]);
      jest.advanceTimersByTime(DEFAULT_ACK_TIMEOUT - 101);
      expect(t.emitter.session.socket.take()).toEqual([]);
      jest.advanceTimersByTime(1);
      expect(t.emitter.session.socket.take()).toMatchObject([{ type: FrameType.Error, id: 2, code: RelayErrorCode.HANDLER_FAILED }]);
    });

    it('report a handler that threw as HANDLER_FAILED', () => {
      const a = t.subscriber('a', ['x']);
      t.fanout.publish(t.emitter, handlersEvent(1, 'x'));
      const [copy] = eventsOf(a);
      t.fanout.handled(a, copy.id, encodePayload({ message: 'boom' }));
      const frames: Frame[] = t.emitter.session.socket.take();
      expect(frames).toHaveLength(1);
      const err = errorFromFrame(frames[0] as ErrorFrame);
      expect(err.code).toBe(RelayErrorCode.HANDLER_FAILED);
      expect(err.details).toEqual([{ nodeId: 'a', code: 'HANDLER_ERROR', error: { message: 'boom' } }]);
    });

    it('send copies for nodes of other relays through the cluster', () => {
      const send = jest.spyOn(t.cluster, 'send').mockReturnValue(true);
      const r = new RemoteRelay('instance-r', 'R');
      t.world.route(remoteNode(r, 'r1', ['x']));
      expect(t.fanout.publish(t.emitter, handlersEvent(1, 'x'))).toBeUndefined();
      expect(send).toHaveBeenCalledWith(r, expect.objectContaining({ type: Cmt.EventCopies, pattern: 'x', emitterNodeId: 'emitter' }));
      expect(t.acks.size).toBe(1);
    });
  });

  describe('handler acks with passive subscribers (browsers, which cannot answer HANDLED)', () => {
    /** A passive client of this relay subscribed to `events`, in routing. */
    const passive = (nodeId: string, events: string[], queue: string | null = null) => {
      const node = fakeNode(t.world, { nodeId, events, queue }, { ...OPEN_IDENTITY, isServer: false });
      t.world.route(node);
      return node;
    };

    it('give a passive subscriber a plain copy at once, and wait for and count the handlers only', () => {
      const handler = t.subscriber('handler', ['x']);
      const browser = passive('browser', ['x']);
      expect(t.fanout.publish(t.emitter, handlersEvent(5, 'x'))).toBeUndefined();
      const [plain] = eventsOf(browser);
      expect(plain).toMatchObject({ type: FrameType.Event, id: 5, pattern: 'x', peer: 'emitter' });
      expect(plain.flags).toBeUndefined();
      expect(plain.attempt).toBeUndefined();
      expect(browser.session.owed).toBe(0);
      const [copy] = eventsOf(handler);
      expect(copy).toMatchObject({ flags: EventFlag.ACK_HANDLERS, attempt: 1 });
      expect(t.acks.size).toBe(1);
      t.fanout.handled(handler, copy.id, null);
      expect(t.emitter.session.socket.take()).toEqual([{ type: FrameType.Ack, id: 5, recipients: 1 }]);
    });

    it('ACK 0 at once when only passive subscribers receive the event, and keep nothing waiting', () => {
      const browser = passive('browser', ['x']);
      expect(t.fanout.publish(t.emitter, handlersEvent(6, 'x', { peer: 'browser' }))).toBe(0);
      expect(eventsOf(browser)).toMatchObject([{ id: 6, pattern: 'x' }]);
      expect(t.acks.pending(t.emitter)).toBe(0);
      expect(jest.getTimerCount()).toBe(0);
    });

    it("keep a passive queue group apart: servers' group gets the copy to answer, and it never moves to a browser", () => {
      const [s1, s2] = [t.subscriber('s1', ['x'], 'g'), t.subscriber('s2', ['x'], 'g')];
      const [p1, p2] = [passive('p1', ['x'], 'g'), passive('p2', ['x'], 'g')];
      t.fanout.publish(t.emitter, handlersEvent(7, 'x'));
      const [copy] = eventsOf(s1);
      expect(copy.flags).toBe(EventFlag.ACK_HANDLERS);
      expect(eventsOf(p1)).toMatchObject([{ id: 7 }]);
      expect([eventsOf(s2), eventsOf(p2)]).toEqual([[], []]);
      // s1 leaves without answering: the copy moves to the other server.
      t.world.unroute(s1);
      s1.session.socket.close(1000);
      t.acks.nodeGone(s1);
      const [moved] = eventsOf(s2);
      expect(moved).toMatchObject({ flags: EventFlag.ACK_HANDLERS, attempt: 2 });
      expect([eventsOf(p1), eventsOf(p2)]).toEqual([[], []]);
      t.fanout.handled(s2, moved.id, null);
      expect(t.emitter.session.socket.take()).toEqual([{ type: FrameType.Ack, id: 7, recipients: 1 }]);
    });

    it('send a passive subscriber of another relay a plain event, not a copy to answer', () => {
      const send = jest.spyOn(t.cluster, 'send').mockReturnValue(true);
      const r = new RemoteRelay('instance-r', 'R');
      const far = new RemoteNode(r, {
        tenant: '',
        nodeId: 'far',
        service: null,
        patterns: [],
        events: ['x'],
        queue: null,
        subject: null,
        since: 1,
        passive: true,
      });
      t.world.route(far);
      expect(t.fanout.publish(t.emitter, handlersEvent(8, 'x'))).toBe(0);
      expect(send).toHaveBeenCalledTimes(1);
      expect(send).toHaveBeenCalledWith(r, expect.objectContaining({ type: Cmt.Event, id: 8, pattern: 'x', targets: ['far'] }));
      expect(t.acks.size).toBe(0);
    });
  });
});
