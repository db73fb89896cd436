/**
 * Setup shared by the Membership unit specs (src/routing/membership.*.spec.ts): a membership over
 * fresh worlds and reservations, with a cluster of one whose announcements are spied on and a
 * listener that records what it is told; sessions that say HELLO, and nodes of other relays.
 */
import { afterEach, beforeEach, jest } from '@jest/globals';
import { type ConnectionIdentity, OPEN_IDENTITY } from '../src/auth/relay-auth.service.js';
import type { ClusterNode } from '../src/cluster/cluster-protocol.js';
import type { RelayCluster } from '../src/cluster/relay-cluster.js';
import { nodeKey, RemoteNode, type RemoteRelay } from '../src/cluster/remote.js';
import type { Announcement } from '../src/routing/local-node.js';
import { Membership } from '../src/routing/membership.js';
import { NodeReservations } from '../src/routing/node-reservations.js';
import { Worlds } from '../src/routing/world.js';
import { fakeSession, type fakeNode, idleCluster, replies } from './fakes.js';

export const T0 = 1_700_000_000_000;
export const RESERVATION_MS = 60_000;
export const TENANT = 'acme';

/** A node of this relay on a fake socket. */
export type Joined = ReturnType<typeof fakeNode>;

export function identity(subject: string | null, tenant = TENANT): ConnectionIdentity {
  return { ...OPEN_IDENTITY, subject, tenant };
}

export function hello(nodeId: string, more: Partial<Announcement> = {}): Announcement {
  return { nodeId, service: null, patterns: [], events: [], queue: null, ...more };
}

/** A node of another relay, as that relay's presence announced it (and as the cluster keeps it). */
export function remote(relay: RemoteRelay, nodeId: string, more: Partial<ClusterNode> = {}): RemoteNode {
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

/** A membership and what it works with, made fresh for each test (after the fake clock is set). */
export interface MembershipParts {
  readonly worlds: Worlds;
  readonly reservations: NodeReservations;
  readonly cluster: RelayCluster;
  readonly membership: Membership;
  /** What the listener was told of providers arriving: tenant and patterns. */
  readonly arrived: Array<[string, string[]]>;
  /** The nodes of other relays the listener was told are lost. */
  readonly lost: RemoteNode[];
  readonly nodeUp: jest.SpiedFunction<RelayCluster['nodeUp']>;
  readonly nodeDown: jest.SpiedFunction<RelayCluster['nodeDown']>;
}

export function setUpMembership(): MembershipParts {
  const worlds = new Worlds();
  const reservations = new NodeReservations(RESERVATION_MS);
  const cluster = idleCluster();
  const nodeUp = jest.spyOn(cluster, 'nodeUp');
  const nodeDown = jest.spyOn(cluster, 'nodeDown');
  const membership = new Membership(worlds, reservations, cluster, replies);
  const arrived: Array<[string, string[]]> = [];
  const lost: RemoteNode[] = [];
  membership.listener = {
    providersArrived: (world, patterns) => void arrived.push([world.tenant, [...patterns]]),
    remoteNodeLost: node => void lost.push(node),
  };
  return { worlds, reservations, cluster, membership, arrived, lost, nodeUp, nodeDown };
}

/** A session of `subject` that said HELLO to `membership` as `nodeId`. */
export function joinedTo(
  membership: Membership,
  nodeId: string,
  subject: string | null = 'alice',
  more: Partial<Announcement> = {},
  tenant = TENANT,
): Joined {
  const session = fakeSession(identity(subject, tenant));
  return membership.join(session, hello(nodeId, more)) as Joined;
}

/** `cluster` knows `node` as another relay's claim to its id. */
export function claimantIn(cluster: RelayCluster, node: RemoteNode | undefined): jest.SpiedFunction<RelayCluster['claimant']> {
  return jest.spyOn(cluster, 'claimant').mockReturnValue(node);
}

/** What a Membership spec works with: the parts of `setUpMembership`, fresh for each test, and helpers over them. */
export class MembershipFixture implements MembershipParts {
  worlds!: Worlds;
  reservations!: NodeReservations;
  cluster!: RelayCluster;
  membership!: Membership;
  arrived!: Array<[string, string[]]>;
  lost!: RemoteNode[];
  nodeUp!: jest.SpiedFunction<RelayCluster['nodeUp']>;
  nodeDown!: jest.SpiedFunction<RelayCluster['nodeDown']>;

  /** A session of `subject` that said HELLO as `nodeId`. */
  joined(nodeId: string, subject?: string | null, more?: Partial<Announcement>, tenant?: string): Joined {
    return joinedTo(this.membership, nodeId, subject, more, tenant);
  }

  /** The cluster knows `node` as another relay's claim to its id. */
  claimantIs(node: RemoteNode | undefined): jest.SpiedFunction<RelayCluster['claimant']> {
    return claimantIn(this.cluster, node);
  }
}

/**
 * For a describe block: the returned fixture gets a fresh membership before each test (after the
 * fake clock is set to T0: `t.membership`, `t.worlds`, `t.arrived`...); after each test the mocks
 * are restored and real timers are back.
 */
export function membershipFixture(): MembershipFixture {
  const t = new MembershipFixture();
  beforeEach(() => {
    jest.useFakeTimers({ now: T0 });
    Object.assign(t, setUpMembership());
  });
  afterEach(() => {
    jest.restoreAllMocks();
    jest.useRealTimers();
  });
  return t;
}
