/**
 * EventAcks across relays: copies for nodes of other relays go through the cluster and are settled
 * by their relay's HANDLED, and copies another relay drives are handed to nodes of this relay and
 * answered back to it. Copies of this relay: event-acks.answers.spec.ts.
 */
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { encodePayload, EventFlag, type EventFrame, FrameType, RelayErrorCode } from '@wsrelay/protocol';
import { codec, fakeNode } from '../../spec-support/fakes.js';
import {
  copies,
  copiesIn,
  copy,
  DEADLINE,
  failure,
  frame,
  leaveFrom,
  type Node,
  PATTERN,
  remoteNode,
  setUpAcks,
  startFor,
  subscriberIn,
} from '../../spec-support/event-acks-setup.js';
import { ClusterMessageType as Cmt } from '../cluster/cluster-protocol.js';
import type { RelayCluster } from '../cluster/relay-cluster.js';
import { RemoteRelay } from '../cluster/remote.js';
import type { Routable } from '../routing/routable.js';
import type { World } from '../routing/world.js';
import type { EventAcks } from './event-acks.js';
import { eventFrame, HANDLER_ERROR } from './event-frame.js';

describe('EventAcks', () => {
  let world: World;
  let cluster: RelayCluster;
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
    ({ world, cluster, acks, settled, emitter } = setUpAcks());
  });

  afterEach(() => {
    jest.clearAllTimers();
    jest.useRealTimers();
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
