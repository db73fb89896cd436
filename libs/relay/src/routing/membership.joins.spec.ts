/**
 * Membership of a node of this relay while it is in routing: how its HELLO puts it in routing and
 * announces it, how a token refresh narrows what it serves, and which nodes are announced and
 * listed. Leaving routing: membership.leaving.spec.ts; who may hold a node id:
 * membership.claims.spec.ts; nodes of other relays: membership.remote-nodes.spec.ts.
 */
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { type Joined, joinedTo, remote, setUpMembership, T0, TENANT } from '../../spec-support/membership-setup.js';
import type { RelayCluster } from '../cluster/relay-cluster.js';
import { RemoteRelay } from '../cluster/remote.js';
import type { Announcement } from './local-node.js';
import type { Membership } from './membership.js';
import type { NodeReservations } from './node-reservations.js';
import type { Worlds } from './world.js';

describe('Membership', () => {
  let worlds: Worlds;
  let reservations: NodeReservations;
  let membership: Membership;
  let nodeUp: jest.SpiedFunction<RelayCluster['nodeUp']>;

  beforeEach(() => {
    jest.useFakeTimers({ now: T0 });
    ({ worlds, reservations, membership, nodeUp } = setUpMembership());
  });

  afterEach(() => {
    jest.restoreAllMocks();
    jest.useRealTimers();
  });

  /** A session of `subject` that said HELLO as `nodeId`. */
  function joined(nodeId: string, subject?: string | null, more?: Partial<Announcement>, tenant?: string): Joined {
    return joinedTo(membership, nodeId, subject, more, tenant);
  }

  describe('join', () => {
    it('puts the node in routing, announces it and binds its id to its subject', () => {
      const node = joined('n1', 'alice', { service: 'orders', patterns: ['orders.get', 'orders.get'], events: ['orders.*'], queue: 'q' });
      const world = worlds.get(TENANT)!;
      expect(membership.nodeOf(node.session)).toBe(node);
      expect(membership.size).toBe(1);
      expect(world.members).toBe(1);
      expect(node.routed).toBe(true);
      expect(world.nodes.get('n1')).toBe(node);
      expect(world.providers.pick('orders.get')).toBe(node);
      expect(world.subscriptions.recipients('orders.created')).toEqual([node]);
      expect(node.patterns).toEqual(['orders.get']);
      expect(nodeUp).toHaveBeenCalledWith({
        tenant: TENANT,
        nodeId: 'n1',
        service: 'orders',
        patterns: ['orders.get'],
        events: ['orders.*'],
        queue: 'q',
        subject: 'alice',
        since: T0,
      });
      expect(reservations.ownerOf(TENANT, 'n1')).toBe('alice');
    });

    it('binds no id without a token subject', () => {
      joined('n1', null);
      expect(reservations.size).toBe(0);
    });

    it('keeps tenants apart', () => {
      const a = joined('n1', 'alice', { patterns: ['p'] }, 'a');
      const b = joined('n1', 'bob', { patterns: ['p'] }, 'b');
      expect(worlds.get('a')!.providers.pick('p')).toBe(a);
      expect(worlds.get('b')!.providers.pick('p')).toBe(b);
      expect(membership.find('a', 'n1')).toBe(a);
      expect(membership.find('b', 'n1')).toBe(b);
      expect(membership.find('c', 'n1')).toBeUndefined();
    });
  });

  describe('narrow (a token refresh)', () => {
    const allow = (serve: string[], subscribe: string[]) => ({
      serve: (p: string) => serve.includes(p),
      subscribe: (e: string) => subscribe.includes(e),
    });

    it('withdraws what the new token denies from routing and announces the rest', () => {
      const node = joined('n1', 'alice', { patterns: ['a', 'b'], events: ['x', 'y'] });
      nodeUp.mockClear();
      expect(membership.narrow(node, allow(['a'], ['y']))).toEqual([1, 1]);
      const world = node.world;
      expect(node.patterns).toEqual(['a']);
      expect(node.events).toEqual(['y']);
      expect(node.serves.has('b')).toBe(false);
      expect(node.routed).toBe(true);
      expect(world.providers.pick('a')).toBe(node);
      expect(world.providers.pick('b')).toBeUndefined();
      expect(world.subscriptions.recipients('x')).toEqual([]);
      expect(world.subscriptions.recipients('y')).toEqual([node]);
      expect(nodeUp).toHaveBeenCalledTimes(1);
      expect(nodeUp).toHaveBeenCalledWith(expect.objectContaining({ nodeId: 'n1', patterns: ['a'], events: ['y'], since: T0 }));
    });

    it('changes nothing when nothing is lost', () => {
      const node = joined('n1', 'alice', { patterns: ['a'], events: ['x'] });
      nodeUp.mockClear();
      expect(membership.narrow(node, allow(['a', 'b'], ['x']))).toEqual([0, 0]);
      expect(nodeUp).not.toHaveBeenCalled();
      expect(node.patterns).toEqual(['a']);
    });

    it('keeps a drained node out of routing', () => {
      const node = joined('n1', 'alice', { patterns: ['a', 'b'] });
      membership.drain(node);
      nodeUp.mockClear();
      expect(membership.narrow(node, allow(['a'], []))).toEqual([1, 0]);
      expect(node.patterns).toEqual(['a']);
      expect(node.routed).toBe(false);
      expect(node.world.providers.pick('a')).toBeUndefined();
      expect(nodeUp).not.toHaveBeenCalled();
    });

    it('narrows a node in the stand-by and keeps it there, out of routing', () => {
      const node = joined('n1', 'alice', { patterns: ['a', 'b'] });
      membership.moveOff(node);
      nodeUp.mockClear();
      expect(membership.narrow(node, allow(['a'], []))).toEqual([1, 0]);
      expect(membership.standbyPick(TENANT, 'a', null)).toBe(node);
      expect(membership.standbyPick(TENANT, 'b', null)).toBeUndefined();
      expect(node.routed).toBe(false);
      expect(nodeUp).not.toHaveBeenCalled();
    });
  });

  describe('localNodes and discover', () => {
    it('announces the local nodes in routing only', () => {
      const a = joined('a', 'alice', { patterns: ['p'] });
      membership.drain(joined('b'));
      membership.moveOff(joined('c', 'alice', { patterns: ['p'] }));
      joined('d', null, {}, 'other');
      membership.remoteUp(remote(new RemoteRelay('r2'), 'r1'));
      expect(membership.localNodes()).toEqual([
        { tenant: TENANT, nodeId: 'a', service: null, patterns: ['p'], events: [], queue: null, subject: 'alice', since: a.since },
        { tenant: 'other', nodeId: 'd', service: null, patterns: [], events: [], queue: null, subject: null, since: T0 },
      ]);
    });

    it("lists a tenant's routed nodes, local and remote, as DISCOVER shows them", () => {
      joined('a', 'alice', { service: 'svc', patterns: ['p'], events: ['e'], queue: 'q' });
      membership.drain(joined('b'));
      joined('c', 'alice', {}, 'other');
      membership.remoteUp(remote(new RemoteRelay('r2'), 'r1', { service: 'far', patterns: ['x'] }));
      const nodes = membership.discover(TENANT);
      expect(nodes).toEqual([
        { nodeId: 'a', service: 'svc', patterns: ['p'], events: ['e'], queue: 'q' },
        { nodeId: 'r1', service: 'far', patterns: ['x'], events: [], queue: null },
      ]);
      // Copies: a reply cannot alias routing state.
      nodes[0].patterns.push('mutated');
      expect(membership.discover(TENANT)[0].patterns).toEqual(['p']);
      expect(membership.discover('nobody')).toEqual([]);
    });
  });
});
