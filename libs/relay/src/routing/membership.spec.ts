import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { CloseCode, FrameType, RelayErrorCode, RelayErrorMessages } from '@wsrelay/protocol';
import { fakeSession, idleCluster, replies } from '../../spec-support/fakes.js';
import { type ConnectionIdentity, OPEN_IDENTITY } from '../auth/relay-auth.service.js';
import type { ClusterNode } from '../cluster/cluster-protocol.js';
import type { RelayCluster } from '../cluster/relay-cluster.js';
import { nodeKey, RemoteNode, RemoteRelay } from '../cluster/remote.js';
import { closeReason } from '../internal/utf8.js';
import type { Announcement, LocalNode } from './local-node.js';
import { Membership } from './membership.js';
import { NodeReservations } from './node-reservations.js';
import { Worlds } from './world.js';

const T0 = 1_700_000_000_000;
const RESERVATION_MS = 60_000;
const TENANT = 'acme';

function identity(subject: string | null, tenant = TENANT): ConnectionIdentity {
  return { ...OPEN_IDENTITY, subject, tenant };
}

function hello(nodeId: string, more: Partial<Announcement> = {}): Announcement {
  return { nodeId, service: null, patterns: [], events: [], queue: null, ...more };
}

/** A node of another relay, as that relay's presence announced it (and as the cluster keeps it). */
function remote(relay: RemoteRelay, nodeId: string, more: Partial<ClusterNode> = {}): RemoteNode {
  const info: ClusterNode = {
    tenant: TENANT,
    nodeId,
    service: null,
    patterns: [],
    events: [],
    queue: null,
    subject: null,
    since: T0,
    ...more,
  };
  const node = new RemoteNode(relay, info);
  relay.nodes.set(nodeKey(info.tenant, nodeId), node);
  return node;
}

describe('Membership', () => {
  let worlds: Worlds;
  let reservations: NodeReservations;
  let cluster: RelayCluster;
  let membership: Membership;
  let arrived: Array<[string, string[]]>;
  let lost: RemoteNode[];
  let nodeUp: jest.SpiedFunction<RelayCluster['nodeUp']>;
  let nodeDown: jest.SpiedFunction<RelayCluster['nodeDown']>;

  beforeEach(() => {
    jest.useFakeTimers({ now: T0 });
    worlds = new Worlds();
    reservations = new NodeReservations(RESERVATION_MS);
    cluster = idleCluster();
    nodeUp = jest.spyOn(cluster, 'nodeUp');
    nodeDown = jest.spyOn(cluster, 'nodeDown');
    membership = new Membership(worlds, reservations, cluster, replies);
    arrived = [];
    lost = [];
    membership.listener = {
      providersArrived: (world, patterns) => void arrived.push([world.tenant, [...patterns]]),
      remoteNodeLost: node => void lost.push(node),
    };
  });

  afterEach(() => {
    jest.restoreAllMocks();
    jest.useRealTimers();
  });

  /** A session of `subject` that said HELLO as `nodeId`. */
  function joined(nodeId: string, subject: string | null = 'alice', more: Partial<Announcement> = {}, tenant = TENANT) {
    const session = fakeSession(identity(subject, tenant));
    return membership.join(session, hello(nodeId, more)) as LocalNode & { session: typeof session };
  }

  /** The cluster knows `node` as another relay's claim to its id. */
  function claimantIs(node: RemoteNode | undefined): jest.SpiedFunction<RelayCluster['claimant']> {
    return jest.spyOn(cluster, 'claimant').mockReturnValue(node);
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

  describe('conflict', () => {
    it('refuses an id a live node holds, whoever asks', () => {
      joined('n1', 'alice');
      const message = RelayErrorMessages.nodeIdConflict('n1');
      expect(membership.conflict(fakeSession(identity('alice')), 'n1')).toBe(message);
      expect(membership.conflict(fakeSession(identity('bob')), 'n1')).toBe(message);
      expect(membership.conflict(fakeSession(identity(null)), 'n1')).toBe(message);
      expect(membership.conflict(fakeSession(identity('bob')), 'n2')).toBeUndefined();
      expect(membership.conflict(fakeSession(identity('bob', 'other')), 'n1')).toBeUndefined();
    });

    it('refuses an id a node of another relay holds', () => {
      membership.remoteUp(remote(new RemoteRelay('r2'), 'n1'));
      expect(membership.conflict(fakeSession(identity('alice')), 'n1')).toBe(RelayErrorMessages.nodeIdConflict('n1'));
    });

    it('after its holder drained, leaves the id to its subject only, for reservationMs', () => {
      membership.drain(joined('n1', 'alice'));
      const owned = RelayErrorMessages.nodeIdOwned('n1');
      expect(membership.conflict(fakeSession(identity('alice')), 'n1')).toBeUndefined();
      expect(membership.conflict(fakeSession(identity('bob')), 'n1')).toBe(owned);
      expect(membership.conflict(fakeSession(identity(null)), 'n1')).toBe(owned);
      jest.advanceTimersByTime(RESERVATION_MS - 1);
      expect(membership.conflict(fakeSession(identity('bob')), 'n1')).toBe(owned);
      jest.advanceTimersByTime(1);
      expect(membership.conflict(fakeSession(identity('bob')), 'n1')).toBeUndefined();
    });

    it('leaves the id of an anonymous node that closed to anyone', () => {
      const node = joined('n1', null);
      membership.closed(node);
      expect(membership.conflict(fakeSession(identity('bob')), 'n1')).toBeUndefined();
    });
  });

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

  describe('node id claims across relays', () => {
    it('closes a local node that loses its id to an older claim of another relay', () => {
      const local = joined('n1', 'alice', { patterns: ['p'] });
      const older = remote(new RemoteRelay('r2'), 'n1', { patterns: ['p'], subject: 'bob', since: T0 - 1 });
      membership.remoteUp(older);
      const world = local.world;
      expect(world.nodes.get('n1')).toBe(older);
      expect(local.routed).toBe(false);
      expect(world.providers.pick('p')).toBe(older);
      expect(nodeDown).toHaveBeenCalledWith(TENANT, 'n1', false, 'alice');
      const message = RelayErrorMessages.nodeIdConflict('n1');
      expect(local.session.socket.frames).toEqual([{ type: FrameType.Error, id: 0, code: RelayErrorCode.NODE_ID_CONFLICT, message }]);
      expect(local.session.socket.closed).toEqual({ code: CloseCode.NODE_ID_CONFLICT, reason: closeReason(message) });
      expect(reservations.ownerOf(TENANT, 'n1')).toBe('bob');
      expect(arrived).toEqual([[TENANT, ['p']]]);
      // Its close later does not take the winner out, nor unbind its id.
      membership.closed(local);
      membership.forget(local);
      expect(world.nodes.get('n1')).toBe(older);
      expect(reservations.ownerOf(TENANT, 'n1')).toBe('bob');
    });

    it('keeps a local node that holds the older claim', () => {
      const local = joined('n1', 'alice', { patterns: ['p'] });
      const newer = remote(new RemoteRelay('r2'), 'n1', { patterns: ['p'], subject: 'bob', since: T0 + 1 });
      membership.remoteUp(newer);
      expect(local.routed).toBe(true);
      expect(local.session.socket.frames).toEqual([]);
      expect(local.session.socket.closed).toBeUndefined();
      expect(nodeDown).not.toHaveBeenCalled();
      expect(arrived).toEqual([]);
      expect(reservations.ownerOf(TENANT, 'n1')).toBe('alice');
    });

    it.each([
      ['a lower', (own: string) => own.slice(0, -1), true],
      ['a higher', (own: string) => `${own}x`, false],
    ])('settles a tie on `since` with a local node by relay instance id (%s instance id wins: %s)', (_, instanceId, remoteWins) => {
      const local = joined('n1', 'alice');
      const rival = remote(new RemoteRelay(instanceId(cluster.instanceId)), 'n1', { since: T0 });
      membership.remoteUp(rival);
      expect(local.routed).toBe(!remoteWins);
      expect(local.session.socket.closed?.code).toBe(remoteWins ? CloseCode.NODE_ID_CONFLICT : undefined);
    });

    it('replaces a remote holder with an older claim of another relay, and settles what was in flight with the loser', () => {
      const holder = remote(new RemoteRelay('r2'), 'n1', { subject: 'alice', since: T0 });
      const older = remote(new RemoteRelay('r3'), 'n1', { patterns: ['p'], subject: 'bob', since: T0 - 1 });
      membership.remoteUp(holder);
      membership.remoteUp(older);
      const world = worlds.get(TENANT)!;
      expect(world.nodes.get('n1')).toBe(older);
      expect(lost).toEqual([holder]);
      expect(reservations.ownerOf(TENANT, 'n1')).toBe('bob');
    });

    it('keeps a remote holder with the older claim', () => {
      const holder = remote(new RemoteRelay('r2'), 'n1', { subject: 'alice', since: T0 });
      const newer = remote(new RemoteRelay('r3'), 'n1', { subject: 'bob', since: T0 + 1 });
      membership.remoteUp(holder);
      arrived.length = 0;
      membership.remoteUp(newer);
      expect(worlds.get(TENANT)!.nodes.get('n1')).toBe(holder);
      expect(lost).toEqual([]);
      expect(arrived).toEqual([]);
      expect(reservations.ownerOf(TENANT, 'n1')).toBe('alice');
    });

    it.each([
      ['r2', 'r3', 'r2'],
      ['r3', 'r2', 'r2'],
    ])('settles a tie between remote claims by relay instance id (%s holds, %s claims: %s wins)', (first, second, winner) => {
      const holder = remote(new RemoteRelay(first), 'n1', { since: T0 });
      const rival = remote(new RemoteRelay(second), 'n1', { since: T0 });
      membership.remoteUp(holder);
      membership.remoteUp(rival);
      expect((worlds.get(TENANT)!.nodes.get('n1') as RemoteNode).relay.instanceId).toBe(winner);
    });

    it('takes the new claim of the same relay whatever its age', () => {
      const relay = new RemoteRelay('r2');
      const old = remote(relay, 'n1', { since: T0 });
      membership.remoteUp(old);
      const renewed = remote(relay, 'n1', { since: T0 + 1000 });
      membership.remoteUp(renewed);
      expect(worlds.get(TENANT)!.nodes.get('n1')).toBe(renewed);
      expect(lost).toEqual([old]);
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
