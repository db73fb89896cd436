import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { type Frame, FrameType, RelayError, RelayErrorCode, RelayErrorMessages, type RequestFrame, ResponseFlag } from '@wsrelay/protocol';
import { fakeNode, idleCluster, replies } from '../../spec-support/fakes.js';
import { type ConnectionIdentity, OPEN_IDENTITY } from '../auth/relay-auth.service.js';
import { Permissions } from '../auth/permissions.js';
import { RemoteNode, RemoteRelay } from '../cluster/remote.js';
import { RelayLifecycle } from '../lifecycle/relay-lifecycle.js';
import type { LocalNode } from '../routing/local-node.js';
import { Membership } from '../routing/membership.js';
import { NodeReservations } from '../routing/node-reservations.js';
import { type World, Worlds } from '../routing/world.js';
import { InFlightLimit } from '../session/in-flight-limit.js';
import { RequestBook } from './request-book.js';
import { RequestRouter } from './request-router.js';
import { Waits } from './waits.js';

const TIMEOUT = 4000;
const PAYLOAD = new Uint8Array([1, 2, 3]);

type Node = ReturnType<typeof fakeNode>;

function request(id: number, more: Partial<RequestFrame> = {}): RequestFrame {
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

function error(id: number, code: RelayErrorCode, message: string): Frame {
  return { type: FrameType.Error, id, code, message };
}

function response(id: number, flags: number, payload: Uint8Array | null = null): Frame {
  return { type: FrameType.Response, id, flags, payload };
}

function cancel(id: number): Frame {
  return { type: FrameType.Cancel, id };
}

/** The RelayError `fn` throws. */
function thrown(fn: () => void): RelayError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(RelayError);
    return err as RelayError;
  }
  throw new Error('nothing was thrown');
}

describe('RequestRouter', () => {
  let worlds: Worlds;
  let world: World;
  let membership: Membership;
  let lifecycle: RelayLifecycle;
  let book: RequestBook;
  let waits: Waits;
  let router: RequestRouter;
  let caller: Node;

  /** A fresh router: `maxInFlight` per connection (requests and waits), `maxHeldBytes` of held payload per node. */
  function build(maxInFlight = 100, maxHeldBytes = 1000): void {
    worlds = new Worlds();
    world = worlds.ensure('');
    const cluster = idleCluster();
    membership = new Membership(worlds, new NodeReservations(60_000), cluster, replies);
    lifecycle = new RelayLifecycle();
    book = new RequestBook();
    waits = new Waits(replies, maxHeldBytes);
    const limit = new InFlightLimit<LocalNode>(maxInFlight).counts(n => book.askedCount(n)).counts(n => waits.count(n));
    router = new RequestRouter(book, waits, worlds, membership, cluster, lifecycle, replies, limit);
    caller = fakeNode(world, { nodeId: 'caller' });
  }

  /** A provider of `patterns`, in routing. */
  function provider(nodeId: string, patterns = ['sum']): Node {
    const node = fakeNode(world, { nodeId, patterns });
    world.route(node);
    return node;
  }

  /** The one REQUEST `node` was sent since the last look. */
  function deliveredTo(node: Node): RequestFrame {
    const frames = node.session.socket.take();
    expect(frames).toHaveLength(1);
    expect(frames[0].type).toBe(FrameType.Request);
    return frames[0] as RequestFrame;
  }

  beforeEach(() => {
    jest.useFakeTimers();
    build();
  });

  afterEach(() => {
    jest.useRealTimers();
  });

  // A REQUEST goes to one provider (round-robin, or the node it names) under the relay's id; nothing serving it fails it.
  describe('routing', () => {
    it("delivers a REQUEST under the relay's id, with the caller's node id and its verified claims", () => {
      const claims = new Uint8Array([9, 9]);
      const identity: ConnectionIdentity = { ...OPEN_IDENTITY, encodedClaims: claims };
      caller = fakeNode(world, { nodeId: 'caller' }, identity);
      const p = provider('p');
      const ext = new Uint8Array([7]);
      router.request(caller, request(1, { ext, claims: new Uint8Array([6]) }));

      const pending = book.asked(caller, 1)!;
      expect(deliveredTo(p)).toEqual({
        type: FrameType.Request,
        id: pending.rid,
        pattern: 'sum',
        payload: PAYLOAD,
        timeoutMs: TIMEOUT,
        peer: 'caller',
        ext,
        claims,
      });
      expect(caller.session.socket.take()).toEqual([]);
      expect(book.size).toBe(1);
      expect(router.inFlightAt(p)).toBe(1);
    });

    it('takes the providers of a pattern in turn', () => {
      const [p1, p2] = [provider('p1'), provider('p2')];
      for (let id = 1; id <= 4; id++) router.request(caller, request(id));
      expect(p1.session.socket.take().map(f => f.type)).toEqual([FrameType.Request, FrameType.Request]);
      expect(p2.session.socket.take().map(f => f.type)).toEqual([FrameType.Request, FrameType.Request]);
      expect(book.deliveredTo(p1).map(r => r.callerRequestId)).toEqual([1, 3]);
      expect(book.deliveredTo(p2).map(r => r.callerRequestId)).toEqual([2, 4]);
    });

    it('sends a request that names a node to that node only', () => {
      const [p1, p2] = [provider('p1'), provider('p2')];
      for (let id = 1; id <= 3; id++) router.request(caller, request(id, { peer: 'p2' }));
      expect(p1.session.socket.take()).toEqual([]);
      expect(p2.session.socket.take()).toHaveLength(3);
      expect(router.inFlightAt(p2)).toBe(3);
    });

    it('fails a request nothing serves with MICROSERVICE_OFFLINE', () => {
      provider('p', ['other']);
      router.request(caller, request(1));
      expect(caller.session.socket.take()).toEqual([
        error(1, RelayErrorCode.MICROSERVICE_OFFLINE, RelayErrorMessages.microserviceOffline('sum', null)),
      ]);
      expect(book.size).toBe(0);
    });

    it('fails a request for a node that is not there, or does not serve the pattern, with MICROSERVICE_OFFLINE', () => {
      const p = provider('p', ['other']);
      provider('q');
      router.request(caller, request(1, { peer: 'gone' }));
      router.request(caller, request(2, { peer: 'p' }));
      expect(caller.session.socket.take()).toEqual([
        error(1, RelayErrorCode.MICROSERVICE_OFFLINE, RelayErrorMessages.microserviceOffline('sum', 'gone')),
        error(2, RelayErrorCode.MICROSERVICE_OFFLINE, RelayErrorMessages.microserviceOffline('sum', 'p')),
      ]);
      expect(p.session.socket.take()).toEqual([]);
      expect(book.size).toBe(0);
    });

    it('fails a request for a node of another relay it cannot reach with PROVIDER_DISCONNECTED', () => {
      const relay = new RemoteRelay('other');
      const info = { tenant: '', nodeId: 'far', service: null, patterns: ['sum'], events: [], queue: null, subject: null, since: 1 };
      world.route(new RemoteNode(relay, info));
      router.request(caller, request(1));
      expect(caller.session.socket.take()).toEqual([
        error(1, RelayErrorCode.PROVIDER_DISCONNECTED, RelayErrorMessages.providerDisconnected('sum')),
      ]);
      expect(book.size).toBe(0);
      expect(book.deliveredCount(relay)).toBe(0);
    });
  });

  // A caller's id names one call at a time (BAD_FRAME), and a caller has a bounded number in flight (RATE_LIMITED).
  describe('admission', () => {
    it('throws BAD_FRAME for an id already in flight, and takes the id again once it settled', () => {
      const p = provider('p');
      router.request(caller, request(1));
      deliveredTo(p);
      const err = thrown(() => router.request(caller, request(1)));
      expect(err.code).toBe(RelayErrorCode.BAD_FRAME);
      expect(err.message).toBe(RelayErrorMessages.badFrame(RelayErrorMessages.duplicateId(1)));
      expect(p.session.socket.take()).toEqual([]);
      expect(book.size).toBe(1);

      router.response(p, { type: FrameType.Response, id: book.asked(caller, 1)!.rid, flags: ResponseFlag.DONE, payload: null });
      router.request(caller, request(1));
      expect(deliveredTo(p).type).toBe(FrameType.Request);
    });

    it('throws BAD_FRAME for the id of a pending WAIT or of a held request', () => {
      lifecycle.started(10_000);
      waits.wait(caller, 1, 'other', TIMEOUT);
      router.request(caller, request(2));
      expect(thrown(() => router.request(caller, request(1))).code).toBe(RelayErrorCode.BAD_FRAME);
      expect(thrown(() => router.request(caller, request(2))).code).toBe(RelayErrorCode.BAD_FRAME);
      expect(waits.counts).toEqual({ waits: 1, held: 1, patterns: 2 });
    });

    it('throws RATE_LIMITED past the in-flight limit, counting held requests and WAITs', () => {
      build(3);
      const p = provider('p');
      lifecycle.started(10_000);
      router.request(caller, request(1));
      router.request(caller, request(2, { pattern: 'later' }));
      waits.wait(caller, 3, 'other', TIMEOUT);
      const err = thrown(() => router.request(caller, request(4)));
      expect(err.code).toBe(RelayErrorCode.RATE_LIMITED);
      expect(err.message).toBe(RelayErrorMessages.tooManyInFlight(3));
      expect(deliveredTo(p).type).toBe(FrameType.Request);
      expect(caller.session.socket.take()).toEqual([]);

      router.cancel(caller, 2);
      router.request(caller, request(4));
      expect(deliveredTo(p).type).toBe(FrameType.Request);
    });

    it('does not count a request that failed at once', () => {
      build(1);
      router.request(caller, request(1));
      router.request(caller, request(2));
      expect(caller.session.socket.take().map(f => f.type)).toEqual([FrameType.Error, FrameType.Error]);
    });
  });

  // RESPONSEs go back to the caller under its own id; DONE or ERROR ends the call; only the provider may answer.
  describe('responses', () => {
    let p: Node;
    let rid: number;

    beforeEach(() => {
      p = provider('p');
      router.request(caller, request(5));
      rid = deliveredTo(p).id;
    });

    it('relays values and the completion to the caller, settling on DONE', () => {
      const value = new Uint8Array([4, 2]);
      router.response(p, { type: FrameType.Response, id: rid, flags: 0, payload: value });
      expect(caller.session.socket.take()).toEqual([response(5, 0, value)]);
      expect(book.size).toBe(1);

      router.response(p, { type: FrameType.Response, id: rid, flags: ResponseFlag.DONE, payload: null });
      expect(caller.session.socket.take()).toEqual([response(5, ResponseFlag.DONE)]);
      expect(book.size).toBe(0);
      expect(router.inFlightAt(p)).toBe(0);
      expect(router.dropped).toBe(0);

      router.response(p, { type: FrameType.Response, id: rid, flags: 0, payload: value });
      expect(caller.session.socket.take()).toEqual([]);
      expect(router.dropped).toBe(1);
      jest.advanceTimersByTime(TIMEOUT);
      expect(caller.session.socket.take()).toEqual([]);
      expect(p.session.socket.take()).toEqual([]);
    });

    it('settles on an ERROR response', () => {
      const failure = new Uint8Array([1]);
      router.response(p, { type: FrameType.Response, id: rid, flags: ResponseFlag.ERROR | ResponseFlag.DONE, payload: failure });
      expect(caller.session.socket.take()).toEqual([response(5, ResponseFlag.ERROR | ResponseFlag.DONE, failure)]);
      expect(book.size).toBe(0);
    });

    it('settles on the ERROR flag alone', () => {
      router.response(p, { type: FrameType.Response, id: rid, flags: ResponseFlag.ERROR, payload: null });
      expect(caller.session.socket.take()).toEqual([response(5, ResponseFlag.ERROR)]);
      expect(book.size).toBe(0);
    });

    it('drops a RESPONSE from a node the request was not routed to, or for an unknown id', () => {
      const other = provider('other');
      router.response(other, { type: FrameType.Response, id: rid, flags: ResponseFlag.DONE, payload: null });
      router.response(caller, { type: FrameType.Response, id: rid, flags: ResponseFlag.DONE, payload: null });
      router.response(p, { type: FrameType.Response, id: rid + 1, flags: ResponseFlag.DONE, payload: null });
      expect(caller.session.socket.take()).toEqual([]);
      expect(router.dropped).toBe(3);
      expect(book.size).toBe(1);
    });
  });

  // CANCEL goes on to the provider under the relay's id; the deadline fails the call at both ends.
  describe('cancel and deadline', () => {
    it('forwards a CANCEL to the provider and ends the call', () => {
      const p = provider('p');
      router.request(caller, request(5));
      const rid = deliveredTo(p).id;
      router.cancel(caller, 5);
      expect(p.session.socket.take()).toEqual([cancel(rid)]);
      expect(caller.session.socket.take()).toEqual([]);
      expect(book.size).toBe(0);
      expect(router.dropped).toBe(0);

      router.response(p, { type: FrameType.Response, id: rid, flags: ResponseFlag.DONE, payload: null });
      jest.advanceTimersByTime(TIMEOUT);
      expect(caller.session.socket.take()).toEqual([]);
      expect(p.session.socket.take()).toEqual([]);
      expect(router.dropped).toBe(1);
    });

    it('counts a CANCEL for nothing in flight as dropped', () => {
      const p = provider('p');
      router.cancel(caller, 5);
      expect(router.dropped).toBe(1);
      expect(p.session.socket.take()).toEqual([]);
      expect(caller.session.socket.take()).toEqual([]);
    });

    it('cancels a pending WAIT, unanswered', () => {
      waits.wait(caller, 5, 'sum', TIMEOUT);
      router.cancel(caller, 5);
      expect(router.dropped).toBe(0);
      expect(waits.has(caller, 5)).toBe(false);
      jest.advanceTimersByTime(TIMEOUT);
      expect(caller.session.socket.take()).toEqual([]);
    });

    it('fails the call with TIMEOUT at its deadline and cancels it at the provider', () => {
      const p = provider('p');
      router.request(caller, request(5));
      const rid = deliveredTo(p).id;
      jest.advanceTimersByTime(TIMEOUT - 1);
      expect(caller.session.socket.take()).toEqual([]);
      expect(p.session.socket.take()).toEqual([]);

      jest.advanceTimersByTime(1);
      expect(caller.session.socket.take()).toEqual([error(5, RelayErrorCode.TIMEOUT, RelayErrorMessages.timeout('sum', TIMEOUT))]);
      expect(p.session.socket.take()).toEqual([cancel(rid)]);
      expect(book.size).toBe(0);

      router.response(p, { type: FrameType.Response, id: rid, flags: ResponseFlag.DONE, payload: null });
      expect(caller.session.socket.take()).toEqual([]);
      expect(router.dropped).toBe(1);
    });
  });

  // A node that goes fails what it was serving (PROVIDER_DISCONNECTED) and cancels what it asked; without notify all settles quietly.
  describe('nodeGone', () => {
    it('fails the calls in flight at a provider that is gone', () => {
      const [p, q] = [provider('p'), provider('q')];
      const other = fakeNode(world, { nodeId: 'other' });
      router.request(caller, request(1, { peer: 'p' }));
      router.request(other, request(7, { peer: 'p' }));
      router.request(caller, request(2, { peer: 'q' }));
      p.session.socket.take();
      q.session.socket.take();

      router.nodeGone(p, true);
      const disconnected = RelayErrorMessages.providerDisconnected('sum');
      expect(caller.session.socket.take()).toEqual([error(1, RelayErrorCode.PROVIDER_DISCONNECTED, disconnected)]);
      expect(other.session.socket.take()).toEqual([error(7, RelayErrorCode.PROVIDER_DISCONNECTED, disconnected)]);
      expect(router.inFlightAt(p)).toBe(0);
      expect(book.size).toBe(1);
      expect(book.asked(caller, 2)).toBeDefined();

      jest.advanceTimersByTime(TIMEOUT - 1);
      expect(caller.session.socket.take()).toEqual([]);
      expect(p.session.socket.take()).toEqual([]);
    });

    it('cancels at their providers the calls of a caller that is gone', () => {
      const [p, q] = [provider('p'), provider('q')];
      const other = fakeNode(world, { nodeId: 'other' });
      router.request(caller, request(1, { peer: 'p' }));
      router.request(caller, request(2, { peer: 'q' }));
      router.request(other, request(1, { peer: 'p' }));
      const [rp] = p.session.socket.take().map(f => (f as RequestFrame).id);
      const rq = deliveredTo(q).id;

      router.nodeGone(caller, true);
      expect(p.session.socket.take()).toEqual([cancel(rp)]);
      expect(q.session.socket.take()).toEqual([cancel(rq)]);
      expect(book.askedCount(caller)).toBe(0);
      expect(book.size).toBe(1);
      expect(other.session.socket.take()).toEqual([]);
    });

    it('settles quietly without notify', () => {
      const p = provider('p');
      const other = fakeNode(world, { nodeId: 'other' });
      router.request(other, request(1));
      router.request(caller, request(2));
      p.session.socket.take();
      router.nodeGone(p, false);
      router.nodeGone(caller, false);
      expect(book.size).toBe(0);
      jest.advanceTimersByTime(TIMEOUT);
      expect(other.session.socket.take()).toEqual([]);
      expect(caller.session.socket.take()).toEqual([]);
      expect(p.session.socket.take()).toEqual([]);
    });
  });

  // In the startup grace a request nothing serves waits for a provider, keeping its own deadline; after it, it fails at once.
  describe('startup grace', () => {
    const GRACE = 10_000;

    beforeEach(() => {
      lifecycle.started(GRACE);
    });

    it('holds a request until a provider arrives, then delivers it with what is left of its deadline', () => {
      router.request(caller, request(1));
      expect(caller.session.socket.take()).toEqual([]);
      expect(waits.counts.held).toBe(1);
      expect(book.size).toBe(0);

      jest.advanceTimersByTime(1000);
      const p = provider('p');
      router.providersArrived(world, ['sum']);
      const delivered = deliveredTo(p);
      expect(delivered).toMatchObject({ pattern: 'sum', payload: PAYLOAD, timeoutMs: TIMEOUT - 1000, peer: 'caller' });
      expect(delivered.id).toBe(book.asked(caller, 1)!.rid);
      expect(waits.counts.held).toBe(0);

      router.response(p, { type: FrameType.Response, id: delivered.id, flags: ResponseFlag.DONE, payload: null });
      expect(caller.session.socket.take()).toEqual([response(1, ResponseFlag.DONE)]);
    });

    it('delivers a request released at once with its own timeout', () => {
      router.request(caller, request(1));
      const p = provider('p');
      router.providersArrived(world, ['sum']);
      expect(deliveredTo(p).timeoutMs).toBe(TIMEOUT);
    });

    it('keeps the original deadline of a request it held', () => {
      router.request(caller, request(1));
      jest.advanceTimersByTime(1000);
      const p = provider('p');
      router.providersArrived(world, ['sum']);
      const rid = deliveredTo(p).id;
      jest.advanceTimersByTime(TIMEOUT - 1000 - 1);
      expect(caller.session.socket.take()).toEqual([]);
      jest.advanceTimersByTime(1);
      expect(caller.session.socket.take()).toMatchObject([{ type: FrameType.Error, id: 1, code: RelayErrorCode.TIMEOUT }]);
      expect(p.session.socket.take()).toEqual([cancel(rid)]);
    });

    it('fails a held request with MICROSERVICE_OFFLINE at its deadline', () => {
      router.request(caller, request(1));
      jest.advanceTimersByTime(TIMEOUT);
      expect(caller.session.socket.take()).toEqual([
        error(1, RelayErrorCode.MICROSERVICE_OFFLINE, RelayErrorMessages.microserviceOffline('sum', null)),
      ]);
      expect(waits.counts.held).toBe(0);
    });

    it('fails a held request with MICROSERVICE_OFFLINE when the grace ends, and fails the next at once', () => {
      jest.advanceTimersByTime(GRACE - 1000);
      router.request(caller, request(1));
      jest.advanceTimersByTime(999);
      expect(caller.session.socket.take()).toEqual([]);
      jest.advanceTimersByTime(1);
      const offline = error(1, RelayErrorCode.MICROSERVICE_OFFLINE, RelayErrorMessages.microserviceOffline('sum', null));
      expect(caller.session.socket.take()).toEqual([offline]);

      router.request(caller, request(1));
      expect(caller.session.socket.take()).toEqual([offline]);
      expect(waits.counts.held).toBe(0);
    });

    it('holds a request for a named node until that node arrives', () => {
      router.request(caller, request(1, { peer: 'p2' }));
      const p1 = provider('p1');
      router.providersArrived(world, ['sum']);
      expect(p1.session.socket.take()).toEqual([]);
      expect(waits.counts.held).toBe(1);
      const p2 = provider('p2');
      router.providersArrived(world, ['sum']);
      expect(deliveredTo(p2).peer).toBe('caller');
      expect(p1.session.socket.take()).toEqual([]);
    });

    it('fails a held request with FORBIDDEN when the caller may no longer call it', () => {
      router.request(caller, request(1));
      caller.session.identity = { ...OPEN_IDENTITY, permissions: new Permissions({ call: ['other'] }) };
      const p = provider('p');
      router.providersArrived(world, ['sum']);
      expect(p.session.socket.take()).toEqual([]);
      expect(caller.session.socket.take()).toEqual([error(1, RelayErrorCode.FORBIDDEN, RelayErrorMessages.forbidden('call', 'sum'))]);
      expect(book.size).toBe(0);
      expect(waits.counts.held).toBe(0);
    });

    it('refuses with RATE_LIMITED a request past the held bytes of its node', () => {
      build(100, PAYLOAD.byteLength);
      lifecycle.started(GRACE);
      router.request(caller, request(1));
      router.request(caller, request(2));
      expect(caller.session.socket.take()).toEqual([
        error(2, RelayErrorCode.RATE_LIMITED, RelayErrorMessages.tooMuchHeld(PAYLOAD.byteLength)),
      ]);
      expect(waits.counts.held).toBe(1);
    });

    it('drops a held request its caller cancelled, unanswered', () => {
      router.request(caller, request(1));
      router.cancel(caller, 1);
      expect(router.dropped).toBe(0);
      const p = provider('p');
      router.providersArrived(world, ['sum']);
      jest.advanceTimersByTime(GRACE);
      expect(p.session.socket.take()).toEqual([]);
      expect(caller.session.socket.take()).toEqual([]);
    });

    it('routes a request with a provider at once', () => {
      const p = provider('p');
      router.request(caller, request(1));
      expect(deliveredTo(p).id).toBe(book.asked(caller, 1)!.rid);
      expect(waits.counts.held).toBe(0);
    });
  });

  // In the relay's shutdown drain a request nothing routes goes to a provider the drain moved off, or fails with RELAY_UNAVAILABLE.
  describe('draining', () => {
    const unavailable = RelayErrorMessages.relayUnavailable(RelayErrorMessages.goingAway());

    beforeEach(() => {
      lifecycle.beginDrain();
    });

    it('sends a request to a provider the drain moved off', () => {
      const p = provider('p');
      membership.moveOff(p);
      expect(world.providers.count('sum')).toBe(0);
      router.request(caller, request(1));
      const rid = deliveredTo(p).id;
      router.response(p, { type: FrameType.Response, id: rid, flags: ResponseFlag.DONE, payload: null });
      expect(caller.session.socket.take()).toEqual([response(1, ResponseFlag.DONE)]);
    });

    it('sends a request naming a moved-off node to that node', () => {
      const [p1, p2] = [provider('p1'), provider('p2')];
      membership.moveOff(p1);
      membership.moveOff(p2);
      router.request(caller, request(1, { peer: 'p2' }));
      router.request(caller, request(2, { peer: 'p2' }));
      expect(p2.session.socket.take()).toHaveLength(2);
      expect(p1.session.socket.take()).toEqual([]);
    });

    it('fails with RELAY_UNAVAILABLE what no provider, moved off or not, serves', () => {
      const p = provider('p', ['other']);
      membership.moveOff(p);
      router.request(caller, request(1));
      router.request(caller, request(2, { peer: 'p' }));
      router.request(caller, request(3, { peer: 'nobody' }));
      expect(caller.session.socket.take()).toEqual([
        error(1, RelayErrorCode.RELAY_UNAVAILABLE, unavailable),
        error(2, RelayErrorCode.RELAY_UNAVAILABLE, unavailable),
        error(3, RelayErrorCode.RELAY_UNAVAILABLE, unavailable),
      ]);
      expect(book.size).toBe(0);
    });

    it('fails rather than holds in the startup grace', () => {
      lifecycle.started(10_000);
      router.request(caller, request(1));
      expect(caller.session.socket.take()).toEqual([error(1, RelayErrorCode.RELAY_UNAVAILABLE, unavailable)]);
      expect(waits.counts.held).toBe(0);
    });

    it('still routes to providers in routing', () => {
      const p = provider('p');
      router.request(caller, request(1));
      expect(deliveredTo(p).id).toBe(book.asked(caller, 1)!.rid);
    });
  });
});
