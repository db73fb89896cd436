/**
 * Membership of a node of this relay leaving routing: drained by the node (its id kept for its
 * subject), moved off into the stand-by when the relay drains, closed, and forgotten. Joining:
 * membership.joins.spec.ts.
 */
import { describe, expect, it, jest } from '@jest/globals';
import { CloseCode } from '@wsrelay/protocol';
import { membershipFixture, remote, RESERVATION_MS, T0, TENANT } from '../../spec-support/membership-setup.js';
import { RemoteRelay } from '../cluster/remote.js';

describe('Membership', () => {
  /** A fresh membership for each test, on a fake clock at T0 (see membershipFixture). */
  const t = membershipFixture();

  describe('drain', () => {
    it('takes the node out of routing gracefully; it stays a member until forgotten', () => {
      const node = t.joined('n1', 'alice', { patterns: ['p'], events: ['e'] });
      const world = node.world;
      t.membership.drain(node);
      expect(node.routed).toBe(false);
      expect(world.nodes.has('n1')).toBe(false);
      expect(world.providers.pick('p')).toBeUndefined();
      expect(world.subscriptions.recipients('e')).toEqual([]);
      expect(t.nodeDown).toHaveBeenCalledTimes(1);
      expect(t.nodeDown).toHaveBeenCalledWith(TENANT, 'n1', true, 'alice');
      expect(t.membership.nodeOf(node.session)).toBe(node);
      expect(world.members).toBe(1);
      expect(t.membership.localNodes()).toEqual([]);
    });

    it('keeps the id bound to its subject for reservationMs', () => {
      t.membership.drain(t.joined('n1', 'alice'));
      jest.advanceTimersByTime(RESERVATION_MS - 1);
      expect(t.reservations.ownerOf(TENANT, 'n1')).toBe('alice');
      jest.advanceTimersByTime(1);
      expect(t.reservations.ownerOf(TENANT, 'n1')).toBeUndefined();
    });

    it('announces a drain once', () => {
      const node = t.joined('n1');
      t.membership.drain(node);
      t.membership.drain(node);
      expect(t.nodeDown).toHaveBeenCalledTimes(1);
    });

    it('lets a new session of the subject take the id while the drained one finishes', () => {
      const old = t.joined('n1', 'alice');
      t.membership.drain(old);
      expect(t.membership.find(TENANT, 'n1')).toBe(old);
      const fresh = t.joined('n1', 'alice');
      expect(t.membership.find(TENANT, 'n1')).toBe(fresh);
      expect(t.membership.size).toBe(2);
      expect(t.reservations.ownerOf(TENANT, 'n1')).toBe('alice');
      // The old one closing does not unbind the id the new one holds.
      t.membership.closed(old);
      t.membership.forget(old);
      jest.advanceTimersByTime(RESERVATION_MS * 2);
      expect(t.reservations.ownerOf(TENANT, 'n1')).toBe('alice');
      expect(fresh.routed).toBe(true);
    });

    it('takes a node the relay moved off out of the stand-by', () => {
      const node = t.joined('n1', 'alice', { patterns: ['p'] });
      t.membership.moveOff(node);
      t.membership.drain(node);
      expect(t.membership.standbyPick(TENANT, 'p', null)).toBeUndefined();
      expect(t.nodeDown).toHaveBeenCalledTimes(1);
    });
  });

  describe('moveOff (the relay drains)', () => {
    it('takes a provider out of routing into the stand-by', () => {
      const node = t.joined('n1', 'alice', { patterns: ['p'], events: ['e'] });
      t.membership.moveOff(node);
      expect(node.routed).toBe(false);
      expect(node.world.providers.pick('p')).toBeUndefined();
      expect(node.world.subscriptions.recipients('e')).toEqual([]);
      expect(t.nodeDown).toHaveBeenCalledWith(TENANT, 'n1', true, 'alice');
      expect(t.membership.standbyPick(TENANT, 'p', null)).toBe(node);
      expect(t.membership.standbyPick(TENANT, 'p', 'n1')).toBe(node);
      expect(t.membership.standbyPick(TENANT, 'p', 'n2')).toBeUndefined();
      expect(t.membership.standbyPick(TENANT, 'q', null)).toBeUndefined();
      expect(t.membership.standbyPick('other', 'p', null)).toBeUndefined();
    });

    it('keeps the id bound while the node is connected', () => {
      t.membership.moveOff(t.joined('n1', 'alice', { patterns: ['p'] }));
      jest.advanceTimersByTime(RESERVATION_MS * 10);
      expect(t.reservations.ownerOf(TENANT, 'n1')).toBe('alice');
    });

    it('puts no node without patterns in the stand-by, and leaves alone one out of routing', () => {
      const subscriber = t.joined('n1', 'alice', { events: ['e'] });
      t.membership.moveOff(subscriber);
      expect(subscriber.routed).toBe(false);
      const drained = t.joined('n2', 'alice', { patterns: ['p'] });
      t.membership.drain(drained);
      t.nodeDown.mockClear();
      t.membership.moveOff(drained);
      expect(t.nodeDown).not.toHaveBeenCalled();
      expect(t.membership.standbyPick(TENANT, 'p', null)).toBeUndefined();
    });

    it('takes the providers moved off in turn, past one that is closing', () => {
      const [a, b, c] = ['a', 'b', 'c'].map(id => t.joined(id, 'alice', { patterns: ['p'] }));
      [a, b, c].forEach(n => t.membership.moveOff(n));
      expect([1, 2, 3, 4].map(() => t.membership.standbyPick(TENANT, 'p', null))).toEqual([a, b, c, a]);
      b.session.socket.close(CloseCode.NORMAL);
      expect([1, 2, 3, 4].map(() => t.membership.standbyPick(TENANT, 'p', null))).toEqual([c, a, c, a]);
    });

    it('forgets a provider of the stand-by once it closed', () => {
      const node = t.joined('n1', 'alice', { patterns: ['p'] });
      t.membership.moveOff(node);
      t.nodeDown.mockClear();
      t.membership.closed(node);
      expect(t.membership.standbyPick(TENANT, 'p', null)).toBeUndefined();
      expect(t.membership.standbyPick(TENANT, 'p', 'n1')).toBeUndefined();
      // It had left routing already: no second NODE_DOWN.
      expect(t.nodeDown).not.toHaveBeenCalled();
      jest.advanceTimersByTime(RESERVATION_MS);
      expect(t.reservations.ownerOf(TENANT, 'n1')).toBeUndefined();
    });
  });

  describe('closed and forget', () => {
    it('takes a closed node out of routing at once, and forgets it later', () => {
      const node = t.joined('n1', 'alice', { patterns: ['p'] });
      const world = node.world;
      t.membership.closed(node);
      expect(node.routed).toBe(false);
      expect(world.providers.pick('p')).toBeUndefined();
      expect(t.nodeDown).toHaveBeenCalledWith(TENANT, 'n1', false, 'alice');
      expect(t.membership.nodeOf(node.session)).toBe(node);
      expect(t.worlds.get(TENANT)).toBe(world);

      t.membership.forget(node);
      expect(t.membership.nodeOf(node.session)).toBeUndefined();
      expect(t.membership.size).toBe(0);
      expect(world.members).toBe(0);
      expect(t.worlds.get(TENANT)).toBeUndefined();
    });

    it('keeps its id bound to its subject for reservationMs', () => {
      t.membership.closed(t.joined('n1', 'alice'));
      jest.advanceTimersByTime(RESERVATION_MS - 1);
      expect(t.reservations.ownerOf(TENANT, 'n1')).toBe('alice');
      jest.advanceTimersByTime(1);
      expect(t.reservations.ownerOf(TENANT, 'n1')).toBeUndefined();
    });

    it('gives the id to the claim of another relay that was kept out', () => {
      const node = t.joined('n1', 'alice');
      const other = remote(new RemoteRelay('r2'), 'n1', { patterns: ['p'], subject: 'bob', since: T0 + 1 });
      t.membership.remoteUp(other);
      expect(node.routed).toBe(true);
      const claimant = t.claimantIs(other);
      t.membership.closed(node);
      expect(claimant).toHaveBeenCalledWith(TENANT, 'n1');
      expect(node.world.nodes.get('n1')).toBe(other);
      expect(node.world.providers.pick('p')).toBe(other);
      expect(t.arrived).toEqual([[TENANT, ['p']]]);
      expect(t.reservations.ownerOf(TENANT, 'n1')).toBe('bob');
      t.membership.forget(node);
      // The world stays: the remote node is in it.
      expect(t.worlds.get(TENANT)).toBe(node.world);
    });

    it('asks for no claimant when the node was out of routing already', () => {
      const node = t.joined('n1');
      t.membership.drain(node);
      const claimant = t.claimantIs(undefined);
      t.membership.closed(node);
      expect(claimant).not.toHaveBeenCalled();
      expect(t.nodeDown).toHaveBeenCalledTimes(1);
    });

    it('keeps a world while another member is left, and forgets a node once', () => {
      const a = t.joined('a');
      const b = t.joined('b');
      t.membership.drain(b);
      t.membership.closed(a);
      t.membership.forget(a);
      t.membership.forget(a);
      const world = t.worlds.get(TENANT)!;
      expect(world.members).toBe(1);
      expect(t.membership.size).toBe(1);
      t.membership.closed(b);
      t.membership.forget(b);
      expect(t.worlds.get(TENANT)).toBeUndefined();
    });
  });
});
