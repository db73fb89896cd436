/**
 * Setup shared by the EventAcks unit specs (src/events/event-acks.*.spec.ts): handler acks over a
 * fresh world of this relay and a cluster of one, an emitter in routing, events that ask for
 * handler acks, and what the emitter and the recipients are sent.
 */
import { afterEach, beforeEach, expect, jest } from '@jest/globals';
import {
  encodePayload,
  type ErrorFrame,
  errorFromFrame,
  EventFlag,
  type EventFrame,
  type Frame,
  FrameType,
  type RelayError,
  RelayErrorCode,
} from '@wsrelay/protocol';
import { type ClusterOutgoing, ClusterMessageType as Cmt } from '../src/cluster/cluster-protocol.js';
import type { RelayCluster } from '../src/cluster/relay-cluster.js';
import { RemoteNode, type RemoteRelay } from '../src/cluster/remote.js';
import { EventAcks, type EventAckSettings } from '../src/events/event-acks.js';
import type { Routable } from '../src/routing/routable.js';
import { World } from '../src/routing/world.js';
import { codec, fakeNode, idleCluster } from './fakes.js';

export const ATTEMPT_TIMEOUT = 1000;
export const MAX_ATTEMPTS = 3;
export const MAX_RETAINED = 100;
/** The emitter's own deadline, well past every attempt unless a test says otherwise. */
export const DEADLINE = 60_000;
export const PATTERN = 'jobs';

export type Node = ReturnType<typeof fakeNode>;

export function frame(id: number, extra: Partial<EventFrame> = {}): EventFrame {
  return {
    type: FrameType.Event,
    id,
    pattern: PATTERN,
    payload: encodePayload({ job: id }),
    peer: null,
    ext: null,
    claims: null,
    flags: EventFlag.ACK_HANDLERS,
    ...extra,
  };
}

/** The copies a node was given since last asked. */
export function copies(node: Node): EventFrame[] {
  return node.session.socket.take().filter((f): f is EventFrame => f.type === FrameType.Event);
}

/** The one copy a node was given since last asked. */
export function copy(node: Node): EventFrame {
  const given = copies(node);
  expect(given).toHaveLength(1);
  return given[0];
}

/** The HANDLER_FAILED the emitter got (the only frame since last asked), decoded. */
export function failure(emitter: Node, id: number): RelayError {
  const frames: Frame[] = emitter.session.socket.take();
  expect(frames).toHaveLength(1);
  expect(frames[0]).toMatchObject({ type: FrameType.Error, id, code: RelayErrorCode.HANDLER_FAILED });
  return errorFromFrame(frames[0] as ErrorFrame);
}

export function remoteNode(relay: RemoteRelay, nodeId: string, queue: string | null = null): RemoteNode {
  return new RemoteNode(relay, { tenant: '', nodeId, service: null, patterns: [], events: [PATTERN], queue, subject: null, since: 1 });
}

/** The copies (node id, delivery id, attempt) an EventCopies message names. */
export function copiesIn(m: ClusterOutgoing): ReadonlyArray<readonly [string, number, number]> {
  if (m.type !== Cmt.EventCopies) throw new Error(`expected EventCopies, got ${Cmt[m.type]}`);
  return m.copies;
}

export { caught } from './fakes.js';

/** Handler acks on `cluster` with this file's timings and bound, unless `settings` says otherwise. */
export function makeAcks(cluster: RelayCluster, settled: () => void, settings: Partial<EventAckSettings> = {}): EventAcks {
  return new EventAcks(codec, cluster, {
    attemptTimeoutMs: ATTEMPT_TIMEOUT,
    maxAttempts: MAX_ATTEMPTS,
    maxRetainedBytes: MAX_RETAINED,
    onSettled: settled,
    ...settings,
  });
}

/** Handler acks and what they work with, made fresh for each test (after the fake timers are in). */
export interface AckParts {
  readonly world: World;
  readonly cluster: RelayCluster;
  /** The acks' onSettled. */
  readonly settled: jest.Mock<() => void>;
  readonly acks: EventAcks;
  /** A node of the world, in routing, that emits the events. */
  readonly emitter: Node;
}

export function setUpAcks(): AckParts {
  const world = new World('');
  const cluster = idleCluster();
  const settled = jest.fn<() => void>();
  const acks = makeAcks(cluster, settled);
  const emitter = fakeNode(world, { nodeId: 'emitter' });
  world.route(emitter);
  return { world, cluster, settled, acks, emitter };
}

/** A node of `world` subscribed to PATTERN (in `queue`), in routing. */
export function subscriberIn(world: World, nodeId: string, queue: string | null = null): Node {
  const n = fakeNode(world, { nodeId, events: [PATTERN], queue });
  world.route(n);
  return n;
}

/** `n` leaves, as the relay core sees it go: out of routing, socket closed, then nodeGone. */
export function leaveFrom(world: World, acks: EventAcks, n: Node): void {
  world.unroute(n);
  n.session.socket.close(1006);
  acks.nodeGone(n);
}

/** `emitter` starts event `id` (PATTERN, handler acks) for `recipients`, with a deadline of `timeoutMs`. */
export function startFor(
  acks: EventAcks,
  emitter: Node,
  id: number,
  recipients: readonly Routable[],
  extra: Partial<EventFrame> = {},
  timeoutMs = DEADLINE,
): number {
  return acks.start(emitter, frame(id, extra), recipients, timeoutMs);
}

/** What an EventAcks spec works with: the parts of `setUpAcks`, fresh for each test, and helpers over them. */
export class AckFixture implements AckParts {
  world!: World;
  cluster!: RelayCluster;
  settled!: jest.Mock<() => void>;
  /** The acks under test; a test may put its own there (`make`), and the helpers then use those. */
  acks!: EventAcks;
  emitter!: Node;

  /** Handler acks on this cluster and onSettled, with `settings` over this file's. */
  make(settings?: Partial<EventAckSettings>): EventAcks {
    return makeAcks(this.cluster, this.settled, settings);
  }

  /** A node of this relay subscribed to PATTERN (in `queue`), in routing. */
  node(nodeId: string, queue?: string | null): Node {
    return subscriberIn(this.world, nodeId, queue);
  }

  /** The node leaves, as the relay core sees it go: out of routing, socket closed, then nodeGone. */
  leave(n: Node): void {
    leaveFrom(this.world, this.acks, n);
  }

  /** The emitter starts event `id` (PATTERN, handler acks) for `recipients`, with a deadline of `timeoutMs`. */
  start(id: number, recipients: readonly Routable[], extra?: Partial<EventFrame>, timeoutMs?: number): number {
    return startFor(this.acks, this.emitter, id, recipients, extra, timeoutMs);
  }
}

/**
 * For a describe block: the returned fixture gets fresh handler acks before each test (after the
 * fake timers are in: `t.acks`, `t.world`, `t.emitter`...); after each test the timers are cleared
 * and real ones are back.
 */
export function ackFixture(): AckFixture {
  const t = new AckFixture();
  beforeEach(() => {
    jest.useFakeTimers();
    Object.assign(t, setUpAcks());
  });
  afterEach(() => {
    jest.clearAllTimers();
    jest.useRealTimers();
  });
  return t;
}
