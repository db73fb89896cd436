/**
 * EventFanout across relays: one cluster message per relay for its subscribers, counted when sent,
 * and events (plain or with handler acks) from other relays handed to the nodes of this relay they
 * name. Subscribers of this relay: event-fanout.plain.spec.ts.
 */
import { beforeEach, describe, expect, it, jest } from '@jest/globals';
import { encodePayload, EventFlag, FrameType, RelayErrorCode } from '@wsrelay/protocol';
import { event, eventsOf, fanoutFixture, remoteNode } from '../../spec-support/event-fanout-setup.js';
import { ClusterMessageType as Cmt, type Msg } from '../cluster/cluster-protocol.js';
import { RemoteRelay } from '../cluster/remote.js';

describe('EventFanout', () => {
  /** A fresh fan-out for each test, with fake timers (see fanoutFixture). */
  const t = fanoutFixture();

  describe('nodes of other relays', () => {
    let r: RemoteRelay;
    let s: RemoteRelay;

    beforeEach(() => {
      r = new RemoteRelay('instance-r', 'R');
      s = new RemoteRelay('instance-s', 'S');
      for (const node of [remoteNode(r, 'r1', ['x']), remoteNode(r, 'r2', ['x.>', 'x']), remoteNode(s, 's1', ['x'])]) t.world.route(node);
    });

    it('get one cluster message per relay naming its targets, counted when sent', () => {
      const send = jest.spyOn(t.cluster, 'send').mockReturnValue(true);
      const local = t.subscriber('local', ['x']);
      const ext = encodePayload('ext');
      const frame = event(4, 'x', { ext });
      expect(t.fanout.publish(t.emitter, frame)).toBe(4);
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
      const send = jest.spyOn(t.cluster, 'send').mockImplementation(relay => relay === s);
      t.subscriber('local', ['x']);
      expect(t.fanout.publish(t.emitter, event(1, 'x'))).toBe(2);
      expect(send).toHaveBeenCalledTimes(2);
    });

    it('of a relay that is gone are skipped', () => {
      const send = jest.spyOn(t.cluster, 'send').mockReturnValue(true);
      r.gone = true;
      expect(t.fanout.publish(t.emitter, event(1, 'x'))).toBe(1);
      expect(send).toHaveBeenCalledTimes(1);
      expect(send).toHaveBeenCalledWith(s, expect.objectContaining({ targets: ['s1'] }));
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
      const a = t.subscriber('a', ['x.*']);
      const b = t.subscriber('b', ['x.>']);
      const unsubscribed = t.subscriber('unsubscribed', ['z']);
      const closed = t.subscriber('closed', ['x.y']);
      closed.session.socket.close(1000);
      t.fanout.remoteEvent(remoteEvent(['a', 'b', 'unsubscribed', 'closed', 'unknown']));
      const [sentA, sentB] = [a, b].map(n => n.session.socket.sent[0]);
      expect(sentA.buffer).toBe(sentB.buffer);
      expect(sentA.byteOffset).toBe(sentB.byteOffset);
      expect(eventsOf(a)).toEqual([
        { type: FrameType.Event, id: 8, pattern: 'x.y', payload: encodePayload('p'), peer: 'far', ext: null, claims: null },
      ]);
      expect(eventsOf(b)).toHaveLength(1);
      expect(unsubscribed.session.socket.sent).toHaveLength(0);
      expect(closed.session.socket.sent).toHaveLength(0);
    });

    it('of an unknown tenant go nowhere', () => {
      const a = t.subscriber('a', ['x.*']);
      t.fanout.remoteEvent(remoteEvent(['a'], 'nobody'));
      expect(a.session.socket.sent).toHaveLength(0);
    });

    it('with handler acks: each copy under this relay’s id and the sender’s attempt, its HANDLED back to the sender', () => {
      const send = jest.spyOn(t.cluster, 'send').mockReturnValue(true);
      const r = new RemoteRelay('instance-r', 'R');
      const a = t.subscriber('a', ['x.*']);
      t.fanout.remoteEventCopies(r, {
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
      expect(t.acks.size).toBe(1);
      t.fanout.handled(a, copy.id, null);
      expect(send).toHaveBeenLastCalledWith(r, { type: Cmt.Handled, did: 41, code: null, error: null });
      expect(t.acks.size).toBe(0);
    });
  });
});
