/**
 * RequestRouter through the relay's lifecycle: a request nothing serves is held in the startup
 * grace, and in the shutdown drain goes to a provider the drain moved off or fails. How a request
 * is routed otherwise: request-router.routing.spec.ts.
 */
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { FrameType, RelayErrorCode, RelayErrorMessages, ResponseFlag } from '@wsrelay/protocol';
import {
  buildRouter,
  cancel,
  deliveredTo,
  error,
  type Node,
  PAYLOAD,
  providerIn,
  request,
  response,
  TIMEOUT,
} from '../../spec-support/request-router-setup.js';
import { OPEN_IDENTITY } from '../auth/relay-auth.service.js';
import { Permissions } from '../auth/permissions.js';
import type { RelayLifecycle } from '../lifecycle/relay-lifecycle.js';
import type { Membership } from '../routing/membership.js';
import type { World } from '../routing/world.js';
import type { RequestBook } from './request-book.js';
import type { RequestRouter } from './request-router.js';
import type { Waits } from './waits.js';

describe('RequestRouter', () => {
  let world: World;
  let membership: Membership;
  let lifecycle: RelayLifecycle;
  let book: RequestBook;
  let waits: Waits;
  let router: RequestRouter;
  let caller: Node;

  /** A fresh router: `maxInFlight` per connection (requests and waits), `maxHeldBytes` of held payload per node. */
  function build(maxInFlight?: number, maxHeldBytes?: number): void {
    ({ world, membership, lifecycle, book, waits, router, caller } = buildRouter(maxInFlight, maxHeldBytes));
  }

  /** A provider of `patterns`, in routing. */
  function provider(nodeId: string, patterns?: string[]): Node {
    return providerIn(world, nodeId, patterns);
  }

  beforeEach(() => {
    jest.useFakeTimers();
    build();
  });

  afterEach(() => {
    jest.useRealTimers();
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
