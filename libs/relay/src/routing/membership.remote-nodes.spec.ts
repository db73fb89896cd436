/**
 * Membership of nodes of other relays, as the cluster reports them: routed, taken down, replaced
 * by a claim that was kept out, and followed through a token refresh. Settling claims to one id:
 * membership.claims.spec.ts.
 */
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { claimantIn, type Joined, joinedTo, remote, setUpMembership, T0, TENANT } from '../../spec-support/membership-setup.js';
import type { ClusterNode } from '../cluster/cluster-protocol.js';
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
  let lost: RemoteNode[];

  beforeEach(() => {
    jest.useFakeTimers({ now: T0 });
    ({ worlds, reservations, cluster, membership, arrived, lost } = setUpMembership());
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

  describe('nodes of other relays', () => {
    it('routes a remote node, binds its id to its subject and lets waiting calls go', () => {
      const node = remote(new RemoteRelay('r2'), 'r1', { patterns: ['p'], events: ['e'], subject: 'bob' });
      membership.remoteUp(node);
      const world = worlds.get(TENANT)!;
      expect(world.routes(node)).toBe(true);
      expect(world.providers.pick('p')).toBe(node);
      expect(world.subscriptions.recipients('e')).toEqual([node]);
      expect(reservations.ownerOf(TENANT, 'r1')).toBe('bob');
      expect(arrived).toEqual([[TENANT, ['p']]]);
      // The same node again changes nothing.
      membership.remoteUp(node);
      expect(arrived).toHaveLength(1);
    });

    it('takes a remote node down: its requests settle unless it drained, its id stays bound as its relay says', () => {
      const relay = new RemoteRelay('r2');
      const crashed = remote(relay, 'r1', { subject: 'bob' });
      const drained = remote(relay, 'r2', { subject: 'bob' });
      membership.remoteUp(crashed);
      membership.remoteUp(drained);
      membership.remoteDown(crashed, false, 5000);
      membership.remoteDown(drained, true, 0);
      expect(lost).toEqual([crashed]);
      expect(reservations.ownerOf(TENANT, 'r1')).toBe('bob');
      expect(reservations.ownerOf(TENANT, 'r2')).toBeUndefined();
      jest.advanceTimersByTime(5000);
      expect(reservations.ownerOf(TENANT, 'r1')).toBeUndefined();
      // Nothing is left in the tenant's world.
      expect(worlds.get(TENANT)).toBeUndefined();
    });

    it('ignores a remote node going down that was not in routing', () => {
      const local = joined('n1', 'alice');
      const loser = remote(new RemoteRelay('r2'), 'n1', { since: T0 + 1 });
      membership.remoteUp(loser);
      membership.remoteDown(loser, false, 0);
      expect(local.routed).toBe(true);
      expect(lost).toEqual([]);
      expect(reservations.ownerOf(TENANT, 'n1')).toBe('alice');
    });

    it('puts the best claim kept out in once the holder went down', () => {
      const holder = remote(new RemoteRelay('r2'), 'n1', { since: T0 - 10 });
      const next = remote(new RemoteRelay('r3'), 'n1', { patterns: ['p'], since: T0 - 5 });
      membership.remoteUp(holder);
      membership.remoteUp(next);
      expect(worlds.get(TENANT)!.nodes.get('n1')).toBe(holder);
      arrived.length = 0;
      claimantIs(next);
      membership.remoteDown(holder, false, 0);
      expect(worlds.get(TENANT)!.nodes.get('n1')).toBe(next);
      expect(arrived).toEqual([[TENANT, ['p']]]);
      expect(lost).toEqual([holder]);
    });

    it('does not put back the node that went down as its own claimant', () => {
      const node = remote(new RemoteRelay('r2'), 'n1');
      membership.remoteUp(node);
      claimantIs(node);
      membership.remoteDown(node, false, 0);
      expect(worlds.get(TENANT)).toBeUndefined();
    });

    it('follows a remote node whose token refresh withdrew patterns, keeping the same node', () => {
      const node = remote(new RemoteRelay('r2'), 'r1', { patterns: ['a', 'b'], events: ['x'] });
      membership.remoteUp(node);
      arrived.length = 0;
      const info: ClusterNode = { ...node.info, patterns: ['a'], events: [] };
      membership.remoteChanged(node, info);
      const world = worlds.get(TENANT)!;
      expect(node.info).toBe(info);
      expect(world.routes(node)).toBe(true);
      expect(world.providers.pick('a')).toBe(node);
      expect(world.providers.pick('b')).toBeUndefined();
      expect(world.subscriptions.recipients('x')).toEqual([]);
      expect(arrived).toEqual([[TENANT, ['a']]]);
      expect(lost).toEqual([]);
    });

    it('updates a remote claim kept out without routing it', () => {
      joined('n1', 'alice', { patterns: ['p'] });
      const loser = remote(new RemoteRelay('r2'), 'n1', { patterns: ['p', 'q'], since: T0 + 1 });
      membership.remoteUp(loser);
      const info: ClusterNode = { ...loser.info, patterns: ['q'] };
      membership.remoteChanged(loser, info);
      expect(loser.patterns).toEqual(['q']);
      expect(worlds.get(TENANT)!.routes(loser)).toBe(false);
      expect(worlds.get(TENANT)!.providers.pick('q')).toBeUndefined();
      expect(arrived).toEqual([]);
    });
  });
});
