/**
 * Membership of a node of this relay leaving routing: drained by the node (its id kept for its
 * subject), moved off into the stand-by when the relay drains, closed, and forgotten. Joining:
 * membership.joins.spec.ts.
 */
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { CloseCode } from '@wsrelay/protocol';
import {
  claimantIn,
  type Joined,
  joinedTo,
  remote,
  RESERVATION_MS,
  setUpMembership,
  T0,
  TENANT,
} from '../../spec-support/membership-setup.js';
import type { RelayCluster } from '../cluster/relay-cluster.js';
import { type RemoteNode, RemoteRelay } from '../cluster/remote.js';
import type { Announcement } from './local-node.js';
import type { Membership } from './membership.js';
import type { NodeReservations } from './node-reservations.js';
import type { Worlds } from './world.js';

describe('Membership', () => {
  let worlds: Worlds;
  let reservations: NodeReservations;
  let cluster: RelayCluster;
  let membership: Membership;
  let arrived: Array<[string, string[]]>;
  let nodeDown: jest.SpiedFunction<RelayCluster['nodeDown']>;

  beforeEach(() => {
    jest.useFakeTimers({ now: T0 });
    ({ worlds, reservations, cluster, membership, arrived, nodeDown } = setUpMembership());
  });

  afterEach(() => {
    jest.restoreAllMocks();
    jest.useRealTimers();
  });

  /** A session of `subject` that said HELLO as `nodeId`. */
  function joined(nodeId: string, subject?: string | null, more?: Partial<Announcement>, tenant?: string): Joined {
    return joinedTo(membership, nodeId, subject, more, tenant);
  }

  /** The cluster knows `node` as another relay's claim to its id. */
  function claimantIs(node: RemoteNode | undefined): jest.SpiedFunction<RelayCluster['claimant']> {
    return claimantIn(cluster, node);
  }

  describe('drain', () => {
    it('takes the node out of routing gracefully; it stays a member until forgotten', () => {
      const node = joined('n1', 'alice', { patterns: ['p'], events: ['e'] });
      const world = node.world;
      membership.drain(node);
      expect(node.routed).toBe(false);
      expect(world.nodes.has('n1')).toBe(false);
      expect(world.providers.pick('p')).toBeUndefined();
      expect(world.subscriptions.recipients('e')).toEqual([]);
      expect(nodeDown).toHaveBeenCalledTimes(1);
      expect(nodeDown).toHaveBeenCalledWith(TENANT, 'n1', true, 'alice');
      expect(membership.nodeOf(node.session)).toBe(node);
      expect(world.members).toBe(1);
      expect(membership.localNodes()).toEqual([]);
    });

    it('keeps the id bound to its subject for reservationMs', () => {
      membership.drain(joined('n1', 'alice'));
      jest.advanceTimersByTime(RESERVATION_MS - 1);
      expect(reservations.ownerOf(TENANT, 'n1')).toBe('alice');
      jest.advanceTimersByTime(1);
      expect(reservations.ownerOf(TENANT, 'n1')).toBeUndefined();
    });

    it('announces a drain once', () => {
      const node = joined('n1');
      membership.drain(node);
      membership.drain(node);
      expect(nodeDown).toHaveBeenCalledTimes(1);
    });

    it('lets a new session of the subject take the id while the drained one finishes', () => {
      const old = joined('n1', 'alice');
      membership.drain(old);
      expect(membership.find(TENANT, 'n1')).toBe(old);
      const fresh = joined('n1', 'alice');
      expect(membership.find(TENANT, 'n1')).toBe(fresh);
      expect(membership.size).toBe(2);
      expect(reservations.ownerOf(TENANT, 'n1')).toBe('alice');
      // The old one closing does not unbind the id the new one holds.
      membership.closed(old);
      membership.forget(old);
      jest.advanceTimersByTime(RESERVATION_MS * 2);
      expect(reservations.ownerOf(TENANT, 'n1')).toBe('alice');
      expect(fresh.routed).toBe(true);
    });

    it('takes a node the relay moved off out of the stand-by', () => {
      const node = joined('n1', 'alice', { patterns: ['p'] });
      membership.moveOff(node);
      membership.drain(node);
      expect(membership.standbyPick(TENANT, 'p', null)).toBeUndefined();
      expect(nodeDown).toHaveBeenCalledTimes(1);
    });
  });

  describe('moveOff (the relay drains)', () => {
    it('takes a provider out of routing into the stand-by', () => {
      const node = joined('n1', 'alice', { patterns: ['p'], events: ['e'] });
      membership.moveOff(node);
      expect(node.routed).toBe(false);
      expect(node.world.providers.pick('p')).toBeUndefined();
      expect(node.world.subscriptions.recipients('e')).toEqual([]);
      expect(nodeDown).toHaveBeenCalledWith(TENANT, 'n1', true, 'alice');
      expect(membership.standbyPick(TENANT, 'p', null)).toBe(node);
      expect(membership.standbyPick(TENANT, 'p', 'n1')).toBe(node);
      expect(membership.standbyPick(TENANT, 'p', 'n2')).toBeUndefined();
      expect(membership.standbyPick(TENANT, 'q', null)).toBeUndefined();
      expect(membership.standbyPick('other', 'p', null)).toBeUndefined();
    });

    it('keeps the id bound while the node is connected', () => {
      membership.moveOff(joined('n1', 'alice', { patterns: ['p'] }));
      jest.advanceTimersByTime(RESERVATION_MS * 10);
      expect(reservations.ownerOf(TENANT, 'n1')).toBe('alice');
    });

    it('puts no node without patterns in the stand-by, and leaves alone one out of routing', () => {
      const subscriber = joined('n1', 'alice', { events: ['e'] });
      membership.moveOff(subscriber);
      expect(subscriber.routed).toBe(false);
      const drained = joined('n2', 'alice', { patterns: ['p'] });
      membership.drain(drained);
      nodeDown.mockClear();
      membership.moveOff(drained);
      expect(nodeDown).not.toHaveBeenCalled();
      expect(membership.standbyPick(TENANT, 'p', null)).toBeUndefined();
    });

    it('takes the providers moved off in turn, past one that is closing', () => {
      const [a, b, c] = ['a', 'b', 'c'].map(id => joined(id, 'alice', { patterns: ['p'] }));
      [a, b, c].forEach(n => membership.moveOff(n));
      expect([1, 2, 3, 4].map(() => membership.standbyPick(TENANT, 'p', null))).toEqual([a, b, c, a]);
      b.session.socket.close(CloseCode.NORMAL);
      expect([1, 2, 3, 4].map(() => membership.standbyPick(TENANT, 'p', null))).toEqual([c, a, c, a]);
    });

    it('forgets a provider of the stand-by once it closed', () => {
      const node = joined('n1', 'alice', { patterns: ['p'] });
      membership.moveOff(node);
      nodeDown.mockClear();
      membership.closed(node);
      expect(membership.standbyPick(TENANT, 'p', null)).toBeUndefined();
      expect(membership.standbyPick(TENANT, 'p', 'n1')).toBeUndefined();
      // It had left routing already: no second NODE_DOWN.
      expect(nodeDown).not.toHaveBeenCalled();
      jest.advanceTimersByTime(RESERVATION_MS);
      expect(reservations.ownerOf(TENANT, 'n1')).toBeUndefined();
    });
  });

  describe('closed and forget', () => {
    it('takes a closed node out of routing at once, and forgets it later', () => {
      const node = joined('n1', 'alice', { patterns: ['p'] });
      const world = node.world;
      membership.closed(node);
      expect(node.routed).toBe(false);
      expect(world.providers.pick('p')).toBeUndefined();
      expect(nodeDown).toHaveBeenCalledWith(TENANT, 'n1', false, 'alice');
      expect(membership.nodeOf(node.session)).toBe(node);
      expect(worlds.get(TENANT)).toBe(world);

      membership.forget(node);
      expect(membership.nodeOf(node.session)).toBeUndefined();
      expect(membership.size).toBe(0);
      expect(world.members).toBe(0);
      expect(worlds.get(TENANT)).toBeUndefined();
    });

    it('keeps its id bound to its subject for reservationMs', () => {
      membership.closed(joined('n1', 'alice'));
      jest.advanceTimersByTime(RESERVATION_MS - 1);
      expect(reservations.ownerOf(TENANT, 'n1')).toBe('alice');
      jest.advanceTimersByTime(1);
      expect(reservations.ownerOf(TENANT, 'n1')).toBeUndefined();
    });

    it('gives the id to the claim of another relay that was kept out', () => {
      const node = joined('n1', 'alice');
      const other = remote(new RemoteRelay('r2'), 'n1', { patterns: ['p'], subject: 'bob', since: T0 + 1 });
      membership.remoteUp(other);
      expect(node.routed).toBe(true);
      const claimant = claimantIs(other);
      membership.closed(node);
      expect(claimant).toHaveBeenCalledWith(TENANT, 'n1');
      expect(node.world.nodes.get('n1')).toBe(other);
      expect(node.world.providers.pick('p')).toBe(other);
      expect(arrived).toEqual([[TENANT, ['p']]]);
      expect(reservations.ownerOf(TENANT, 'n1')).toBe('bob');
      membership.forget(node);
      // The world stays: the remote node is in it.
      expect(worlds.get(TENANT)).toBe(node.world);
    });

    it('asks for no claimant when the node was out of routing already', () => {
      const node = joined('n1');
      membership.drain(node);
      const claimant = claimantIs(undefined);
      membership.closed(node);
      expect(claimant).not.toHaveBeenCalled();
      expect(nodeDown).toHaveBeenCalledTimes(1);
    });

    it('keeps a world while another member is left, and forgets a node once', () => {
      const a = joined('a');
      const b = joined('b');
      membership.drain(b);
      membership.closed(a);
      membership.forget(a);
      membership.forget(a);
      const world = worlds.get(TENANT)!;
      expect(world.members).toBe(1);
      expect(membership.size).toBe(1);
      membership.closed(b);
      membership.forget(b);
      expect(worlds.get(TENANT)).toBeUndefined();
    });
  });
});
