/**
 * EventAcks across relays: copies for nodes of other relays go through the cluster and are settled
 * by their relay's HANDLED, and copies another relay drives are handed to nodes of this relay and
 * answered back to it. Copies of this relay: event-acks.answers.spec.ts.
 */
import { beforeEach, describe, expect, it, jest } from '@jest/globals';
import { encodePayload, EventFlag, FrameType, RelayErrorCode } from '@wsrelay/protocol';
import { codec, fakeNode } from '../../spec-support/fakes.js';
import { ackFixture, copies, copiesIn, copy, DEADLINE, failure, frame, PATTERN, remoteNode } from '../../spec-support/event-acks-setup.js';
import { OPEN_IDENTITY } from '../auth/relay-auth.service.js';
import { ClusterMessageType as Cmt } from '../cluster/cluster-protocol.js';
import type { RelayCluster } from '../cluster/relay-cluster.js';
import { RemoteRelay } from '../cluster/remote.js';
import { eventFrame, HANDLER_ERROR } from './event-frame.js';

describe('EventAcks', () => {
  /** Fresh handler acks for each test, with fake timers (see ackFixture). */
  const t = ackFixture();

  describe('nodes of other relays', () => {
    let r: RemoteRelay;
    let send: jest.SpiedFunction<RelayCluster['send']>;

    beforeEach(() => {
      r = new RemoteRelay('instance-r', 'R');
      send = jest.spyOn(t.cluster, 'send').mockReturnValue(true);
    });

    it('get their copies in one EventCopies per relay, and their relay’s HANDLED settles them', () => {
      const [r1, r2] = [remoteNode(r, 'r1'), remoteNode(r, 'r2')];
      const a = t.node('a');
      const f = frame(7);
      expect(t.acks.start(t.emitter, f, [r1, a, r2], DEADLINE)).toBe(3);
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
      t.acks.handled(a, copy(a).id, null);

      // A stale answer from another relay, or one for an id it was not given, changes nothing.
      t.acks.remoteHandled(new RemoteRelay('instance-s', 'S'), d1, null, null);
      t.acks.remoteHandled(r, 123_456, null, null);
      expect(t.acks.size).toBe(2);

      t.acks.remoteHandled(r, d1, null, null);
      t.acks.remoteHandled(r, d2, HANDLER_ERROR, encodePayload('nope'));
      expect(failure(t.emitter, 7).details).toEqual([{ nodeId: 'r2', code: HANDLER_ERROR, error: 'nope' }]);
      expect(t.acks.size).toBe(0);
    });

    it('move a queue copy their relay could not deliver to another member', () => {
      const rq = remoteNode(r, 'rq', 'g');
      t.world.route(rq);
      const q2 = t.node('q2', 'g');
      t.acks.start(t.emitter, frame(7), [rq], DEADLINE);
      const did = copiesIn(send.mock.calls[0][1])[0][1];
      t.acks.remoteHandled(r, did, RelayErrorCode.PROVIDER_DISCONNECTED, null);
      const moved = copy(q2);
      expect(moved.attempt).toBe(2);
      t.acks.handled(q2, moved.id, null);
      expect(t.emitter.session.socket.take()).toEqual([{ type: FrameType.Ack, id: 7, recipients: 1 }]);
    });

    it('fail with PROVIDER_DISCONNECTED when their node or relay is gone', () => {
      const [r1, r2] = [remoteNode(r, 'r1'), remoteNode(r, 'r2')];
      const s = new RemoteRelay('instance-s', 'S');
      const s1 = remoteNode(s, 's1');
      t.acks.start(t.emitter, frame(7), [r1, r2, s1], DEADLINE);
      t.acks.remoteNodeGone(r1);
      expect(t.acks.size).toBe(2);
      s.gone = true;
      t.acks.relayGone(s);
      expect(t.acks.size).toBe(1);
      t.acks.relayGone(r);
      expect(failure(t.emitter, 7).details).toEqual([
        { nodeId: 'r1', code: RelayErrorCode.PROVIDER_DISCONNECTED },
        { nodeId: 's1', code: RelayErrorCode.PROVIDER_DISCONNECTED },
        { nodeId: 'r2', code: RelayErrorCode.PROVIDER_DISCONNECTED },
      ]);
    });

    it('fail at once (not at their timeout) when the cluster cannot send to their relay', () => {
      send.mockReturnValue(false);
      t.acks.start(t.emitter, frame(7), [remoteNode(r, 'r1')], DEADLINE);
      expect(t.acks.size).toBe(1);
      jest.runAllTicks();
      expect(failure(t.emitter, 7).details).toEqual([{ nodeId: 'r1', code: RelayErrorCode.PROVIDER_DISCONNECTED }]);
      expect(t.acks.size).toBe(0);
    });
  });

  describe('copies other relays drive', () => {
    let r: RemoteRelay;
    let send: jest.SpiedFunction<RelayCluster['send']>;
    const bytesFor = (id: number, attempt?: number) =>
      codec.encode(eventFrame({ pattern: PATTERN, payload: encodePayload('p'), ext: null }, id, 'far', null, attempt));

    beforeEach(() => {
      r = new RemoteRelay('instance-r', 'R');
      send = jest.spyOn(t.cluster, 'send').mockReturnValue(true);
    });

    it('are handed over under this relay’s id; the HANDLED, or the handler’s error, goes back under the other relay’s id', () => {
      const [a, b] = [t.node('a'), t.node('b')];
      t.acks.relay(
        r,
        t.world,
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
      expect(t.acks.size).toBe(2);
      expect(send).not.toHaveBeenCalled();

      expect(t.acks.handled(b, copyA.id, null)).toBe(false);
      expect(t.acks.handled(a, copyA.id, null)).toBe(true);
      expect(send).toHaveBeenLastCalledWith(r, { type: Cmt.Handled, did: 41, code: null, error: null });
      const error = encodePayload('boom');
      t.acks.handled(b, copyB.id, error);
      expect(send).toHaveBeenLastCalledWith(r, { type: Cmt.Handled, did: 42, code: HANDLER_ERROR, error });
      expect(t.acks.size).toBe(0);
      expect(t.settled).toHaveBeenCalledTimes(2);
      expect(jest.getTimerCount()).toBe(0);
    });

    it('for a node that is unknown, closed or not subscribed are answered PROVIDER_DISCONNECTED at once', () => {
      const closed = t.node('closed');
      closed.session.socket.close(1000);
      const other = fakeNode(t.world, { nodeId: 'other', events: ['other'] });
      t.world.route(other);
      t.acks.relay(
        r,
        t.world,
        PATTERN,
        [
          ['unknown', 1, 1],
          ['closed', 2, 1],
          ['other', 3, 1],
        ],
        bytesFor,
      );
      t.acks.relay(r, undefined, PATTERN, [['anyone', 4, 1]], bytesFor);
      expect(send.mock.calls.map(([, m]) => m)).toEqual(
        [1, 2, 3, 4].map(did => ({ type: Cmt.Handled, did, code: RelayErrorCode.PROVIDER_DISCONNECTED, error: null })),
      );
      expect(t.acks.size).toBe(0);
      expect(other.session.socket.sent).toEqual([]);
    });

    it('for a passive node (its relay did not know it cannot answer) are handed over plain and answered handled at once', () => {
      const browser = fakeNode(t.world, { nodeId: 'browser', events: [PATTERN] }, { ...OPEN_IDENTITY, isServer: false });
      t.world.route(browser);
      t.acks.relay(r, t.world, PATTERN, [['browser', 43, 1]], bytesFor);
      const plain = copy(browser);
      expect(plain).toMatchObject({ id: 0, pattern: PATTERN, peer: 'far' });
      expect(plain.flags).toBeUndefined();
      expect(browser.session.owed).toBe(0);
      expect(send.mock.calls.map(([, m]) => m)).toEqual([{ type: Cmt.Handled, did: 43, code: null, error: null }]);
      expect(t.acks.size).toBe(0);
    });

    it('for a passive member of a queue group (an earlier relay took it for a server) go back to move to a real member', () => {
      const browser = fakeNode(t.world, { nodeId: 'tab', events: [PATTERN], queue: 'billing' }, { ...OPEN_IDENTITY, isServer: false });
      t.world.route(browser);
      t.acks.relay(r, t.world, PATTERN, [['tab', 44, 1]], bytesFor);
      expect(browser.session.socket.sent).toEqual([]);
      expect(send.mock.calls.map(([, m]) => m)).toEqual([
        { type: Cmt.Handled, did: 44, code: RelayErrorCode.PROVIDER_DISCONNECTED, error: null },
      ]);
    });

    it('are answered PROVIDER_DISCONNECTED when their node leaves, and dropped unanswered when their relay is gone', () => {
      const [a, b] = [t.node('a'), t.node('b')];
      t.acks.relay(
        r,
        t.world,
        PATTERN,
        [
          ['a', 41, 1],
          ['b', 42, 1],
        ],
        bytesFor,
      );
      t.leave(a);
      expect(send).toHaveBeenCalledWith(r, { type: Cmt.Handled, did: 41, code: RelayErrorCode.PROVIDER_DISCONNECTED, error: null });
      expect(t.acks.size).toBe(1);
      t.acks.relayGone(r);
      expect(send).toHaveBeenCalledTimes(1);
      expect(t.acks.size).toBe(0);
      expect(t.acks.handled(b, copy(b).id, null)).toBe(false);
      expect(jest.getTimerCount()).toBe(0);
    });

    it('do not share delivery ids with the copies this relay drives', () => {
      const a = t.node('a');
      t.start(7, [a]);
      t.acks.relay(r, t.world, PATTERN, [['a', 41, 1]], bytesFor);
      const [own, relayed] = copies(a);
      expect(own.id).not.toBe(relayed.id);
      t.acks.handled(a, relayed.id, null);
      expect(send).toHaveBeenLastCalledWith(r, expect.objectContaining({ did: 41 }));
      expect(t.acks.pending(t.emitter)).toBe(1);
      t.acks.handled(a, own.id, null);
      expect(t.emitter.session.socket.take()).toEqual([{ type: FrameType.Ack, id: 7, recipients: 1 }]);
    });
  });
});
