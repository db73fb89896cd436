/**
 * Membership of nodes of other relays, as the cluster reports them: routed, taken down, replaced
 * by a claim that was kept out, and followed through a token refresh. Settling claims to one id:
 * membership.claims.spec.ts.
 */
import { describe, expect, it, jest } from '@jest/globals';
import { membershipFixture, remote, T0, TENANT } from '../../spec-support/membership-setup.js';
import type { ClusterNode } from '../cluster/cluster-protocol.js';
import { RemoteRelay } from '../cluster/remote.js';

describe('Membership', () => {
  /** A fresh membership for each test, on a fake clock at T0 (see membershipFixture). */
  const t = membershipFixture();

  describe('nodes of other relays', () => {
    it('routes a remote node, binds its id to its subject and lets waiting calls go', () => {
      const node = remote(new RemoteRelay('r2'), 'r1', { patterns: ['p'], events: ['e'], subject: 'bob' });
      t.membership.remoteUp(node);
      const world = t.worlds.get(TENANT)!;
      expect(world.routes(node)).toBe(true);
      expect(world.providers.pick('p')).toBe(node);
      expect(world.subscriptions.recipients('e')).toEqual([node]);
      expect(t.reservations.ownerOf(TENANT, 'r1')).toBe('bob');
      expect(t.arrived).toEqual([[TENANT, ['p']]]);
      // The same node again changes nothing.
      t.membership.remoteUp(node);
      expect(t.arrived).toHaveLength(1);
    });

    it('takes a remote node down: its requests settle unless it drained, its id stays bound as its relay says', () => {
      const relay = new RemoteRelay('r2');
      const crashed = remote(relay, 'r1', { subject: 'bob' });
      const drained = remote(relay, 'r2', { subject: 'bob' });
      t.membership.remoteUp(crashed);
      t.membership.remoteUp(drained);
      t.membership.remoteDown(crashed, false, 5000);
      t.membership.remoteDown(drained, true, 0);
      expect(t.lost).toEqual([crashed]);
      expect(t.reservations.ownerOf(TENANT, 'r1')).toBe('bob');
      expect(t.reservations.ownerOf(TENANT, 'r2')).toBeUndefined();
      jest.advanceTimersByTime(5000);
      expect(t.reservations.ownerOf(TENANT, 'r1')).toBeUndefined();
      // Nothing is left in the tenant's world.
      expect(t.worlds.get(TENANT)).toBeUndefined();
    });

    it('ignores a remote node going down that was not in routing', () => {
      const local = t.joined('n1', 'alice');
      const loser = remote(new RemoteRelay('r2'), 'n1', { since: T0 + 1 });
      t.membership.remoteUp(loser);
      t.membership.remoteDown(loser, false, 0);
      expect(local.routed).toBe(true);
      expect(t.lost).toEqual([]);
      expect(t.reservations.ownerOf(TENANT, 'n1')).toBe('alice');
    });

    it('puts the best claim kept out in once the holder went down', () => {
      const holder = remote(new RemoteRelay('r2'), 'n1', { since: T0 - 10 });
      const next = remote(new RemoteRelay('r3'), 'n1', { patterns: ['p'], since: T0 - 5 });
      t.membership.remoteUp(holder);
      t.membership.remoteUp(next);
      expect(t.worlds.get(TENANT)!.nodes.get('n1')).toBe(holder);
      t.arrived.length = 0;
      t.claimantIs(next);
      t.membership.remoteDown(holder, false, 0);
      expect(t.worlds.get(TENANT)!.nodes.get('n1')).toBe(next);
      expect(t.arrived).toEqual([[TENANT, ['p']]]);
      expect(t.lost).toEqual([holder]);
    });

    it('does not put back the node that went down as its own claimant', () => {
      const node = remote(new RemoteRelay('r2'), 'n1');
      t.membership.remoteUp(node);
      t.claimantIs(node);
      t.membership.remoteDown(node, false, 0);
      expect(t.worlds.get(TENANT)).toBeUndefined();
    });

    it('follows a remote node whose token refresh withdrew patterns, keeping the same node', () => {
      const node = remote(new RemoteRelay('r2'), 'r1', { patterns: ['a', 'b'], events: ['x'] });
      t.membership.remoteUp(node);
      t.arrived.length = 0;
      const info: ClusterNode = { ...node.info, patterns: ['a'], events: [] };
      t.membership.remoteChanged(node, info);
      const world = t.worlds.get(TENANT)!;
      expect(node.info).toBe(info);
      expect(world.routes(node)).toBe(true);
      expect(world.providers.pick('a')).toBe(node);
      expect(world.providers.pick('b')).toBeUndefined();
      expect(world.subscriptions.recipients('x')).toEqual([]);
      expect(t.arrived).toEqual([[TENANT, ['a']]]);
      expect(t.lost).toEqual([]);
    });

    it('updates a remote claim kept out without routing it', () => {
      t.joined('n1', 'alice', { patterns: ['p'] });
      const loser = remote(new RemoteRelay('r2'), 'n1', { patterns: ['p', 'q'], since: T0 + 1 });
      t.membership.remoteUp(loser);
      const info: ClusterNode = { ...loser.info, patterns: ['q'] };
      t.membership.remoteChanged(loser, info);
      expect(loser.patterns).toEqual(['q']);
      expect(t.worlds.get(TENANT)!.routes(loser)).toBe(false);
      expect(t.worlds.get(TENANT)!.providers.pick('q')).toBeUndefined();
      expect(t.arrived).toEqual([]);
    });
  });
});
