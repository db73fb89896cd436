/**
 * Membership of a node of this relay while it is in routing: how its HELLO puts it in routing and
 * announces it, how a token refresh narrows what it serves, and which nodes are announced and
 * listed. Leaving routing: membership.leaving.spec.ts; who may hold a node id:
 * membership.claims.spec.ts; nodes of other relays: membership.remote-nodes.spec.ts.
 */
import { describe, expect, it } from '@jest/globals';
import { membershipFixture, remote, T0, TENANT } from '../../spec-support/membership-setup.js';
import { Permissions } from '../auth/permissions.js';
import { RemoteRelay } from '../cluster/remote.js';
import { ALL_PERMISSIONS } from '../relay.constants.js';

const EVERYTHING = new Permissions(ALL_PERMISSIONS);

describe('Membership', () => {
  /** A fresh membership for each test, on a fake clock at T0 (see membershipFixture). */
  const t = membershipFixture();

  describe('join', () => {
    it('puts the node in routing, announces it and binds its id to its subject', () => {
      const node = t.joined('n1', 'alice', { service: 'orders', patterns: ['orders.get', 'orders.get'], events: ['orders.*'], queue: 'q' });
      const world = t.worlds.get(TENANT)!;
      expect(t.membership.nodeOf(node.session)).toBe(node);
      expect(t.membership.size).toBe(1);
      expect(world.members).toBe(1);
      expect(node.routed).toBe(true);
      expect(world.nodes.get('n1')).toBe(node);
      expect(world.providers.pick('orders.get')).toBe(node);
      expect(world.subscriptions.recipients('orders.created')).toEqual([node]);
      expect(node.patterns).toEqual(['orders.get']);
      expect(t.nodeUp).toHaveBeenCalledWith({
        tenant: TENANT,
        nodeId: 'n1',
        service: 'orders',
        patterns: ['orders.get'],
        events: ['orders.*'],
        queue: 'q',
        subject: 'alice',
        since: T0,
      });
      expect(t.reservations.ownerOf(TENANT, 'n1')).toBe('alice');
    });

    it('binds no id without a token subject', () => {
      t.joined('n1', null);
      expect(t.reservations.size).toBe(0);
    });

    it('keeps tenants apart', () => {
      const a = t.joined('n1', 'alice', { patterns: ['p'] }, 'a');
      const b = t.joined('n1', 'bob', { patterns: ['p'] }, 'b');
      expect(t.worlds.get('a')!.providers.pick('p')).toBe(a);
      expect(t.worlds.get('b')!.providers.pick('p')).toBe(b);
      expect(t.membership.find('a', 'n1')).toBe(a);
      expect(t.membership.find('b', 'n1')).toBe(b);
      expect(t.membership.find('c', 'n1')).toBeUndefined();
    });
  });

  describe('narrow (a token refresh)', () => {
    const allow = (serve: string[], subscribe: string[]) => ({
      serve: (p: string) => serve.includes(p),
      subscribe: (e: string) => subscribe.includes(e),
    });

    it('withdraws what the new token denies from routing and announces the rest', () => {
      const node = t.joined('n1', 'alice', { patterns: ['a', 'b'], events: ['x', 'y'] });
      t.nodeUp.mockClear();
      expect(t.membership.narrow(node, allow(['a'], ['y']))).toEqual([1, 1]);
      const world = node.world;
      expect(node.patterns).toEqual(['a']);
      expect(node.events).toEqual(['y']);
      expect(node.serves.has('b')).toBe(false);
      expect(node.routed).toBe(true);
      expect(world.providers.pick('a')).toBe(node);
      expect(world.providers.pick('b')).toBeUndefined();
      expect(world.subscriptions.recipients('x')).toEqual([]);
      expect(world.subscriptions.recipients('y')).toEqual([node]);
      expect(t.nodeUp).toHaveBeenCalledTimes(1);
      expect(t.nodeUp).toHaveBeenCalledWith(expect.objectContaining({ nodeId: 'n1', patterns: ['a'], events: ['y'], since: T0 }));
    });

    it('changes nothing when nothing is lost', () => {
      const node = t.joined('n1', 'alice', { patterns: ['a'], events: ['x'] });
      t.nodeUp.mockClear();
      expect(t.membership.narrow(node, allow(['a', 'b'], ['x']))).toEqual([0, 0]);
      expect(t.nodeUp).not.toHaveBeenCalled();
      expect(node.patterns).toEqual(['a']);
    });

    it('keeps a drained node out of routing', () => {
      const node = t.joined('n1', 'alice', { patterns: ['a', 'b'] });
      t.membership.drain(node);
      t.nodeUp.mockClear();
      expect(t.membership.narrow(node, allow(['a'], []))).toEqual([1, 0]);
      expect(node.patterns).toEqual(['a']);
      expect(node.routed).toBe(false);
      expect(node.world.providers.pick('a')).toBeUndefined();
      expect(t.nodeUp).not.toHaveBeenCalled();
    });

    it('narrows a node in the stand-by and keeps it there, out of routing', () => {
      const node = t.joined('n1', 'alice', { patterns: ['a', 'b'] });
      t.membership.moveOff(node);
      t.nodeUp.mockClear();
      expect(t.membership.narrow(node, allow(['a'], []))).toEqual([1, 0]);
      expect(t.membership.standbyPick(TENANT, 'a', null)).toBe(node);
      expect(t.membership.standbyPick(TENANT, 'b', null)).toBeUndefined();
      expect(node.routed).toBe(false);
      expect(t.nodeUp).not.toHaveBeenCalled();
    });
  });

  describe('localNodes and discover', () => {
    it('announces the local nodes in routing only', () => {
      const a = t.joined('a', 'alice', { patterns: ['p'] });
      t.membership.drain(t.joined('b'));
      t.membership.moveOff(t.joined('c', 'alice', { patterns: ['p'] }));
      t.joined('d', null, {}, 'other');
      t.membership.remoteUp(remote(new RemoteRelay('r2'), 'r1'));
      expect(t.membership.localNodes()).toEqual([
        { tenant: TENANT, nodeId: 'a', service: null, patterns: ['p'], events: [], queue: null, subject: 'alice', since: a.since },
        { tenant: 'other', nodeId: 'd', service: null, patterns: [], events: [], queue: null, subject: null, since: T0 },
      ]);
    });

    it("lists a tenant's routed nodes, local and remote, as DISCOVER shows them", () => {
      t.joined('a', 'alice', { service: 'svc', patterns: ['p'], events: ['e'], queue: 'q' });
      t.membership.drain(t.joined('b'));
      t.joined('c', 'alice', {}, 'other');
      t.membership.remoteUp(remote(new RemoteRelay('r2'), 'r1', { service: 'far', patterns: ['x'] }));
      const nodes = t.membership.discover(TENANT, EVERYTHING);
      expect(nodes).toEqual([
        { nodeId: 'a', service: 'svc', patterns: ['p'], events: ['e'], queue: 'q' },
        { nodeId: 'r1', service: 'far', patterns: ['x'], events: [], queue: null },
      ]);
      // Copies: a reply cannot alias routing state.
      nodes[0].patterns.push('mutated');
      expect(t.membership.discover(TENANT, EVERYTHING)[0].patterns).toEqual(['p']);
      expect(t.membership.discover('nobody', EVERYTHING)).toEqual([]);
    });

    it('lists to a restricted token only the patterns it may call and the subscriptions it may emit to; nodes with neither are left out', () => {
      t.joined('orders', 'svc', { patterns: ['orders.get', 'orders.delete'], events: ['orders.>'] });
      t.joined('admin', 'svc', { patterns: ['admin.reset'], events: ['admin.*'] });
      t.joined('caller', 'bob');
      t.membership.remoteUp(remote(new RemoteRelay('r2'), 'far', { patterns: ['orders.list', 'billing.charge'] }));
      const caller = new Permissions({ call: ['orders.get', 'orders.list'], publish: ['orders.eu.*'] });
      expect(t.membership.discover(TENANT, caller)).toEqual([
        { nodeId: 'orders', service: null, patterns: ['orders.get'], events: ['orders.>'], queue: null },
        { nodeId: 'far', service: null, patterns: ['orders.list'], events: [], queue: null },
      ]);
      expect(t.membership.discover(TENANT, new Permissions({}))).toEqual([]);
      // Everything allowed: every node, the caller that announces nothing included.
      expect(t.membership.discover(TENANT, EVERYTHING).map(n => n.nodeId)).toEqual(['orders', 'admin', 'caller', 'far']);
    });
  });
});
