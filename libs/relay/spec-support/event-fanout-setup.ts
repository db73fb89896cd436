/**
 * Setup shared by the EventFanout unit specs (src/events/event-fanout.*.spec.ts): a fan-out over
 * fresh worlds of this relay and a cluster of one, an emitter in routing, the events it sends, and
 * what subscribers are given.
 */
import { afterEach, beforeEach, jest } from '@jest/globals';
import { encodePayload, EventFlag, type EventFrame, FrameType } from '@wsrelay/protocol';
import type { RelayCluster } from '../src/cluster/relay-cluster.js';
import { RemoteNode, type RemoteRelay } from '../src/cluster/remote.js';
import { EventAcks } from '../src/events/event-acks.js';
import { EventFanout } from '../src/events/event-fanout.js';
import type { LocalNode } from '../src/routing/local-node.js';
import { type World, Worlds } from '../src/routing/world.js';
import { InFlightLimit } from '../src/session/in-flight-limit.js';
import { codec, fakeNode, idleCluster, replies } from './fakes.js';

/** How long an emitter waits for handler acks when its event does not say. */
export const DEFAULT_ACK_TIMEOUT = 5000;
/** One delivery's time to confirm: longer than the emitter's deadline, so the deadline is what fails a copy here. */
export const ATTEMPT_TIMEOUT = 60_000;
export const MAX_IN_FLIGHT = 2;

export type Node = ReturnType<typeof fakeNode>;

export function event(id: number, pattern: string, extra: Partial<EventFrame> = {}): EventFrame {
  return { type: FrameType.Event, id, pattern, payload: encodePayload({ id }), peer: null, ext: null, claims: null, ...extra };
}

export function handlersEvent(id: number, pattern: string, extra: Partial<EventFrame> = {}): EventFrame {
  return event(id, pattern, { flags: EventFlag.ACK_HANDLERS, ...extra });
}

export function eventsOf(node: Node): EventFrame[] {
  return node.session.socket.take().filter((f): f is EventFrame => f.type === FrameType.Event);
}

export function remoteNode(relay: RemoteRelay, nodeId: string, events: string[], queue: string | null = null): RemoteNode {
  return new RemoteNode(relay, { tenant: '', nodeId, service: null, patterns: [], events, queue, subject: null, since: 1 });
}

export { caught } from './fakes.js';

/** A node of `world` subscribed to `events`, in routing. */
export function subscriberIn(world: World, nodeId: string, events: string[], queue: string | null = null): Node {
  const node = fakeNode(world, { nodeId, events, queue });
  world.route(node);
  return node;
}

/** A fan-out and what it works with, made fresh for each test (after the fake timers are in). */
export interface FanoutParts {
  readonly worlds: Worlds;
  /** The default tenant's world. */
  readonly world: World;
  readonly cluster: RelayCluster;
  readonly acks: EventAcks;
  readonly fanout: EventFanout;
  /** A node of the world, in routing and subscribed to nothing, that emits the events. */
  readonly emitter: Node;
}

export function setUpFanout(): FanoutParts {
  const worlds = new Worlds();
  const world = worlds.ensure('');
  const cluster = idleCluster();
  const acks = new EventAcks(codec, cluster, { attemptTimeoutMs: ATTEMPT_TIMEOUT, maxAttempts: 3, maxRetainedBytes: 1 << 20 });
  const limit = new InFlightLimit<LocalNode>(MAX_IN_FLIGHT).counts(node => acks.pending(node));
  const fanout = new EventFanout(acks, worlds, cluster, replies, limit, DEFAULT_ACK_TIMEOUT);
  const emitter = subscriberIn(world, 'emitter', []);
  return { worlds, world, cluster, acks, fanout, emitter };
}

/** What an EventFanout spec works with: the parts of `setUpFanout`, fresh for each test, and a helper over them. */
export class FanoutFixture implements FanoutParts {
  worlds!: Worlds;
  world!: World;
  cluster!: RelayCluster;
  acks!: EventAcks;
  fanout!: EventFanout;
  emitter!: Node;

  /** A node of this relay subscribed to `events`, in routing. */
  subscriber(nodeId: string, events: string[], queue?: string | null): Node {
    return subscriberIn(this.world, nodeId, events, queue);
  }
}

/**
 * For a describe block: the returned fixture gets a fresh fan-out before each test (after the fake
 * timers are in: `t.fanout`, `t.world`, `t.emitter`...); after each test the timers are cleared and
 * real ones are back.
 */
export function fanoutFixture(): FanoutFixture {
  const t = new FanoutFixture();
  beforeEach(() => {
    jest.useFakeTimers();
    Object.assign(t, setUpFanout());
  });
  afterEach(() => {
    jest.clearAllTimers();
    jest.useRealTimers();
  });
  return t;
}
