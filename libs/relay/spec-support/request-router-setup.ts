/**
 * Setup shared by the RequestRouter unit specs (src/requests/request-router.*.spec.ts): a router
 * over a fresh world of this relay (no other relay, no network), the frames a caller sends it,
 * and what a caller or a provider is sent back.
 */
import { afterEach, beforeEach, expect, jest } from '@jest/globals';
import { type Frame, FrameType, RelayError, type RelayErrorCode, type RequestFrame } from '@wsrelay/protocol';
import { RelayLifecycle } from '../src/lifecycle/relay-lifecycle.js';
import { RequestBook } from '../src/requests/request-book.js';
import { RequestRouter } from '../src/requests/request-router.js';
import { Waits } from '../src/requests/waits.js';
import type { LocalNode } from '../src/routing/local-node.js';
import { Membership } from '../src/routing/membership.js';
import { NodeReservations } from '../src/routing/node-reservations.js';
import { type World, Worlds } from '../src/routing/world.js';
import { InFlightLimit } from '../src/session/in-flight-limit.js';
import { fakeNode, idleCluster, replies } from './fakes.js';

export const TIMEOUT = 4000;
export const PAYLOAD = new Uint8Array([1, 2, 3]);

export type Node = ReturnType<typeof fakeNode>;

export function request(id: number, more: Partial<RequestFrame> = {}): RequestFrame {
  return {
    type: FrameType.Request,
    id,
    pattern: 'sum',
    payload: PAYLOAD,
    timeoutMs: TIMEOUT,
    peer: null,
    ext: null,
    claims: null,
    ...more,
  };
}

export function error(id: number, code: RelayErrorCode, message: string): Frame {
  return { type: FrameType.Error, id, code, message };
}

export function response(id: number, flags: number, payload: Uint8Array | null = null): Frame {
  return { type: FrameType.Response, id, flags, payload };
}

export function cancel(id: number): Frame {
  return { type: FrameType.Cancel, id };
}

/** The RelayError `fn` throws. */
export function thrown(fn: () => void): RelayError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(RelayError);
    return err as RelayError;
  }
  throw new Error('nothing was thrown');
}

/** A router and what it works with, made fresh for each test. */
export interface RouterParts {
  readonly worlds: Worlds;
  readonly world: World;
  readonly membership: Membership;
  readonly lifecycle: RelayLifecycle;
  readonly book: RequestBook;
  readonly waits: Waits;
  readonly router: RequestRouter;
  /** A node of the world, not routed, that sends the requests. */
  readonly caller: Node;
}

/** A fresh router: `maxInFlight` per connection (requests and waits), `maxHeldBytes` of held payload per node. */
export function buildRouter(maxInFlight = 100, maxHeldBytes = 1000): RouterParts {
  const worlds = new Worlds();
  const world = worlds.ensure('');
  const cluster = idleCluster();
  const membership = new Membership(worlds, new NodeReservations(60_000), cluster, replies);
  const lifecycle = new RelayLifecycle();
  const book = new RequestBook();
  const waits = new Waits(replies, maxHeldBytes);
  const limit = new InFlightLimit<LocalNode>(maxInFlight).counts(n => book.askedCount(n)).counts(n => waits.count(n));
  const router = new RequestRouter(book, waits, worlds, membership, cluster, lifecycle, replies, limit);
  const caller = fakeNode(world, { nodeId: 'caller' });
  return { worlds, world, membership, lifecycle, book, waits, router, caller };
}

/** A provider of `patterns` in `world`, in routing. */
export function providerIn(world: World, nodeId: string, patterns = ['sum']): Node {
  const node = fakeNode(world, { nodeId, patterns });
  world.route(node);
  return node;
}

/** The one REQUEST `node` was sent since the last look. */
export function deliveredTo(node: Node): RequestFrame {
  const frames = node.session.socket.take();
  expect(frames).toHaveLength(1);
  expect(frames[0].type).toBe(FrameType.Request);
  return frames[0] as RequestFrame;
}

/** What a RequestRouter spec works with: the parts of `buildRouter`, fresh for each test, and helpers over them. */
export class RouterFixture implements RouterParts {
  worlds!: Worlds;
  world!: World;
  membership!: Membership;
  lifecycle!: RelayLifecycle;
  book!: RequestBook;
  waits!: Waits;
  router!: RequestRouter;
  /** The node that sends the requests; a test may put another there. */
  caller!: Node;

  /** A fresh router: `maxInFlight` per connection (requests and waits), `maxHeldBytes` of held payload per node. */
  build(maxInFlight?: number, maxHeldBytes?: number): void {
    Object.assign(this, buildRouter(maxInFlight, maxHeldBytes));
  }

  /** A provider of `patterns`, in routing. */
  provider(nodeId: string, patterns?: string[]): Node {
    return providerIn(this.world, nodeId, patterns);
  }
}

/**
 * For a describe block: the returned fixture gets a fresh router (`build()`) before each test,
 * after the fake timers are in (`t.router`, `t.caller`, `t.provider('p')`...); after each test
 * real timers are back.
 */
export function routerFixture(): RouterFixture {
  const t = new RouterFixture();
  beforeEach(() => {
    jest.useFakeTimers();
    t.build();
  });
  afterEach(() => {
    jest.useRealTimers();
  });
  return t;
}
