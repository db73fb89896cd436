/**
 * Membership and node ids: which session may take an id (not one a node holds, here or on another
 * relay, nor one kept for another subject), and how claims to one id on several relays are settled
 * (the older claim wins; a tie goes by relay instance id). Nodes of other relays otherwise:
 * membership.remote-nodes.spec.ts.
 */
import { describe, expect, it, jest } from '@jest/globals';
import { CloseCode, FrameType, RelayErrorCode, RelayErrorMessages } from '@wsrelay/protocol';
import { fakeSession } from '../../spec-support/fakes.js';
import { identity, membershipFixture, remote, RESERVATION_MS, T0, TENANT } from '../../spec-support/membership-setup.js';
import { type RemoteNode, RemoteRelay } from '../cluster/remote.js';
import { closeReason } from '../internal/utf8.js';

describe('Membership', () => {
  /** A fresh membership for each test, on a fake clock at T0 (see membershipFixture). */
  const t = membershipFixture();

  describe('conflict', () => {
    it('refuses an id a live node holds, whoever asks', () => {
      t.joined('n1', 'alice');
      const message = RelayErrorMessages.nodeIdConflict('n1');
      expect(t.membership.conflict(fakeSession(identity('alice')), 'n1')).toBe(message);
      expect(t.membership.conflict(fakeSession(identity('bob')), 'n1')).toBe(message);
      expect(t.membership.conflict(fakeSession(identity(null)), 'n1')).toBe(message);
      expect(t.membership.conflict(fakeSession(identity('bob')), 'n2')).toBeUndefined();
      expect(t.membership.conflict(fakeSession(identity('bob', 'other')), 'n1')).toBeUndefined();
    });

    it('refuses an id a node of another relay holds', () => {
      t.membership.remoteUp(remote(new RemoteRelay('r2'), 'n1'));
      expect(t.membership.conflict(fakeSession(identity('alice')), 'n1')).toBe(RelayErrorMessages.nodeIdConflict('n1'));
    });

    it('after its holder drained, leaves the id to its subject only, for reservationMs', () => {
      t.membership.drain(t.joined('n1', 'alice'));
      const owned = RelayErrorMessages.nodeIdOwned('n1');
      expect(t.membership.conflict(fakeSession(identity('alice')), 'n1')).toBeUndefined();
      expect(t.membership.conflict(fakeSession(identity('bob')), 'n1')).toBe(owned);
      expect(t.membership.conflict(fakeSession(identity(null)), 'n1')).toBe(owned);
      jest.advanceTimersByTime(RESERVATION_MS - 1);
      expect(t.membership.conflict(fakeSession(identity('bob')), 'n1')).toBe(owned);
      jest.advanceTimersByTime(1);
      expect(t.membership.conflict(fakeSession(identity('bob')), 'n1')).toBeUndefined();
    });

    it('leaves the id of an anonymous node that closed to anyone', () => {
      const node = t.joined('n1', null);
      t.membership.closed(node);
      expect(t.membership.conflict(fakeSession(identity('bob')), 'n1')).toBeUndefined();
    });
  });

  describe('node id claims across relays', () => {
    it('closes a local node that loses its id to an older claim of another relay', () => {
      const local = t.joined('n1', 'alice', { patterns: ['p'] });
      const older = remote(new RemoteRelay('r2'), 'n1', { patterns: ['p'], subject: 'bob', since: T0 - 1 });
      t.membership.remoteUp(older);
      const world = local.world;
      expect(world.nodes.get('n1')).toBe(older);
      expect(local.routed).toBe(false);
      expect(world.providers.pick('p')).toBe(older);
      expect(t.nodeDown).toHaveBeenCalledWith(TENANT, 'n1', false, 'alice');
      const message = RelayErrorMessages.nodeIdConflict('n1');
      expect(local.session.socket.frames).toEqual([{ type: FrameType.Error, id: 0, code: RelayErrorCode.NODE_ID_CONFLICT, message }]);
      expect(local.session.socket.closed).toEqual({ code: CloseCode.NODE_ID_CONFLICT, reason: closeReason(message) });
      expect(t.reservations.ownerOf(TENANT, 'n1')).toBe('bob');
      expect(t.arrived).toEqual([[TENANT, ['p']]]);
      // Its close later does not take the winner out, nor unbind its id.
      t.membership.closed(local);
      t.membership.forget(local);
      expect(world.nodes.get('n1')).toBe(older);
      expect(t.reservations.ownerOf(TENANT, 'n1')).toBe('bob');
    });

    it('keeps a local node that holds the older claim', () => {
      const local = t.joined('n1', 'alice', { patterns: ['p'] });
      const newer = remote(new RemoteRelay('r2'), 'n1', { patterns: ['p'], subject: 'bob', since: T0 + 1 });
      t.membership.remoteUp(newer);
      expect(local.routed).toBe(true);
      expect(local.session.socket.frames).toEqual([]);
      expect(local.session.socket.closed).toBeUndefined();
      expect(t.nodeDown).not.toHaveBeenCalled();
      expect(t.arrived).toEqual([]);
      expect(t.reservations.ownerOf(TENANT, 'n1')).toBe('alice');
    });

    it.each([
      ['a lower', (own: string) => own.slice(0, -1), true],
      ['a higher', (own: string) => `${own}x`, false],
    ])('settles a tie on `since` with a local node by relay instance id (%s instance id wins: %s)', (_, instanceId, remoteWins) => {
      const local = t.joined('n1', 'alice');
      const rival = remote(new RemoteRelay(instanceId(t.cluster.instanceId)), 'n1', { since: T0 });
      t.membership.remoteUp(rival);
      expect(local.routed).toBe(!remoteWins);
      expect(local.session.socket.closed?.code).toBe(remoteWins ? CloseCode.NODE_ID_CONFLICT : undefined);
    });

    it('replaces a remote holder with an older claim of another relay, and settles what was in flight with the loser', () => {
      const holder = remote(new RemoteRelay('r2'), 'n1', { subject: 'alice', since: T0 });
      const older = remote(new RemoteRelay('r3'), 'n1', { patterns: ['p'], subject: 'bob', since: T0 - 1 });
      t.membership.remoteUp(holder);
      t.membership.remoteUp(older);
      const world = t.worlds.get(TENANT)!;
      expect(world.nodes.get('n1')).toBe(older);
      expect(t.lost).toEqual([holder]);
      expect(t.reservations.ownerOf(TENANT, 'n1')).toBe('bob');
    });

    it('keeps a remote holder with the older claim', () => {
      const holder = remote(new RemoteRelay('r2'), 'n1', { subject: 'alice', since: T0 });
      const newer = remote(new RemoteRelay('r3'), 'n1', { subject: 'bob', since: T0 + 1 });
      t.membership.remoteUp(holder);
      t.arrived.length = 0;
      t.membership.remoteUp(newer);
      expect(t.worlds.get(TENANT)!.nodes.get('n1')).toBe(holder);
      expect(t.lost).toEqual([]);
      expect(t.arrived).toEqual([]);
      expect(t.reservations.ownerOf(TENANT, 'n1')).toBe('alice');
    });

    it.each([
      ['r2', 'r3', 'r2'],
      ['r3', 'r2', 'r2'],
    ])('settles a tie between remote claims by relay instance id (%s holds, %s claims: %s wins)', (first, second, winner) => {
      const holder = remote(new RemoteRelay(first), 'n1', { since: T0 });
      const rival = remote(new RemoteRelay(second), 'n1', { since: T0 });
      t.membership.remoteUp(holder);
      t.membership.remoteUp(rival);
      expect((t.worlds.get(TENANT)!.nodes.get('n1') as RemoteNode).relay.instanceId).toBe(winner);
    });

    it('takes the new claim of the same relay whatever its age', () => {
      const relay = new RemoteRelay('r2');
      const old = remote(relay, 'n1', { since: T0 });
      t.membership.remoteUp(old);
      const renewed = remote(relay, 'n1', { since: T0 + 1000 });
      t.membership.remoteUp(renewed);
      expect(t.worlds.get(TENANT)!.nodes.get('n1')).toBe(renewed);
      expect(t.lost).toEqual([old]);
    });
  });
});
