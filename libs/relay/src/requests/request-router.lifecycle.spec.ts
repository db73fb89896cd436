/**
 * RequestRouter through the relay's lifecycle: a request nothing serves is held in the startup
 * grace, and in the shutdown drain goes to a provider the drain moved off or fails. How a request
 * is routed otherwise: request-router.routing.spec.ts.
 */
import { beforeEach, describe, expect, it, jest } from '@jest/globals';
import { FrameType, RelayErrorCode, RelayErrorMessages, ResponseFlag } from '@wsrelay/protocol';
import { cancel, deliveredTo, error, PAYLOAD, request, response, routerFixture, TIMEOUT } from '../../spec-support/request-router-setup.js';
import { OPEN_IDENTITY } from '../auth/relay-auth.service.js';
import { Permissions } from '../auth/permissions.js';

describe('RequestRouter', () => {
  /** A fresh router for each test, with fake timers (see routerFixture). */
  const t = routerFixture();

  // In the startup grace a request nothing serves waits for a provider, keeping its own deadline; after it, it fails at once.
  describe('startup grace', () => {
    const GRACE = 10_000;

    beforeEach(() => {
      t.lifecycle.started(GRACE);
    });

    it('holds a request until a provider arrives, then delivers it with what is left of its deadline', () => {
      t.router.request(t.caller, request(1));
      expect(t.caller.session.socket.take()).toEqual([]);
      expect(t.waits.counts.held).toBe(1);
      expect(t.book.size).toBe(0);

      jest.advanceTimersByTime(1000);
      const p = t.provider('p');
      t.router.providersArrived(t.world, ['sum']);
      const delivered = deliveredTo(p);
      expect(delivered).toMatchObject({ pattern: 'sum', payload: PAYLOAD, timeoutMs: TIMEOUT - 1000, peer: 'caller' });
      expect(delivered.id).toBe(t.book.asked(t.caller, 1)!.rid);
      expect(t.waits.counts.held).toBe(0);

      t.router.response(p, { type: FrameType.Response, id: delivered.id, flags: ResponseFlag.DONE, payload: null });
      expect(t.caller.session.socket.take()).toEqual([response(1, ResponseFlag.DONE)]);
    });

    it('delivers a request released at once with its own timeout', () => {
      t.router.request(t.caller, request(1));
      const p = t.provider('p');
      t.router.providersArrived(t.world, ['sum']);
      expect(deliveredTo(p).timeoutMs).toBe(TIMEOUT);
    });

    it('keeps the original deadline of a request it held', () => {
      t.router.request(t.caller, request(1));
      jest.advanceTimersByTime(1000);
      const p = t.provider('p');
      t.router.providersArrived(t.world, ['sum']);
      const rid = deliveredTo(p).id;
      jest.advanceTimersByTime(TIMEOUT - 1000 - 1);
      expect(t.caller.session.socket.take()).toEqual([]);
      jest.advanceTimersByTime(1);
      expect(t.caller.session.socket.take()).toMatchObject([{ type: FrameType.Error, id: 1, code: RelayErrorCode.TIMEOUT }]);
      expect(p.session.socket.take()).toEqual([cancel(rid)]);
    });

    it('fails a held request with MICROSERVICE_OFFLINE at its deadline', () => {
      t.router.request(t.caller, request(1));
      jest.advanceTimersByTime(TIMEOUT);
      expect(t.caller.session.socket.take()).toEqual([
        error(1, RelayErrorCode.MICROSERVICE_OFFLINE, RelayErrorMessages.microserviceOffline('sum', null)),
      ]);
      expect(t.waits.counts.held).toBe(0);
    });

    it('fails a held request with MICROSERVICE_OFFLINE when the grace ends, and fails the next at once', () => {
      jest.advanceTimersByTime(GRACE - 1000);
      t.router.request(t.caller, request(1));
      jest.advanceTimersByTime(999);
      expect(t.caller.session.socket.take()).toEqual([]);
      jest.advanceTimersByTime(1);
      const offline = error(1, RelayErrorCode.MICROSERVICE_OFFLINE, RelayErrorMessages.microserviceOffline('sum', null));
      expect(t.caller.session.socket.take()).toEqual([offline]);

      t.router.request(t.caller, request(1));
      expect(t.caller.session.socket.take()).toEqual([offline]);
      expect(t.waits.counts.held).toBe(0);
    });

    it('holds a request for a named node until that node arrives', () => {
      t.router.request(t.caller, request(1, { peer: 'p2' }));
      const p1 = t.provider('p1');
      t.router.providersArrived(t.world, ['sum']);
      expect(p1.session.socket.take()).toEqual([]);
      expect(t.waits.counts.held).toBe(1);
      const p2 = t.provider('p2');
      t.router.providersArrived(t.world, ['sum']);
      expect(deliveredTo(p2).peer).toBe('caller');
      expect(p1.session.socket.take()).toEqual([]);
    });

    it('fails a held request with FORBIDDEN when the caller may no longer call it', () => {
      t.router.request(t.caller, request(1));
      t.caller.session.identity = { ...OPEN_IDENTITY, permissions: new Permissions({ call: ['other'] }) };
      const p = t.provider('p');
      t.router.providersArrived(t.world, ['sum']);
      expect(p.session.socket.take()).toEqual([]);
      expect(t.caller.session.socket.take()).toEqual([error(1, RelayErrorCode.FORBIDDEN, RelayErrorMessages.forbidden('call', 'sum'))]);
      expect(t.book.size).toBe(0);
      expect(t.waits.counts.held).toBe(0);
    });

    it('refuses with RATE_LIMITED a request past the held bytes of its node', () => {
      t.build(100, PAYLOAD.byteLength);
      t.lifecycle.started(GRACE);
      t.router.request(t.caller, request(1));
      t.router.request(t.caller, request(2));
      expect(t.caller.session.socket.take()).toEqual([
        error(2, RelayErrorCode.RATE_LIMITED, RelayErrorMessages.tooMuchHeld(PAYLOAD.byteLength)),
      ]);
      expect(t.waits.counts.held).toBe(1);
    });

    it('drops a held request its caller cancelled, unanswered', () => {
      t.router.request(t.caller, request(1));
      t.router.cancel(t.caller, 1);
      expect(t.router.dropped).toBe(0);
      const p = t.provider('p');
      t.router.providersArrived(t.world, ['sum']);
      jest.advanceTimersByTime(GRACE);
      expect(p.session.socket.take()).toEqual([]);
      expect(t.caller.session.socket.take()).toEqual([]);
    });

    it('routes a request with a provider at once', () => {
      const p = t.provider('p');
      t.router.request(t.caller, request(1));
      expect(deliveredTo(p).id).toBe(t.book.asked(t.caller, 1)!.rid);
      expect(t.waits.counts.held).toBe(0);
    });
  });

  // In the relay's shutdown drain a request nothing routes goes to a provider the drain moved off, or fails with RELAY_UNAVAILABLE.
  describe('draining', () => {
    const unavailable = RelayErrorMessages.relayUnavailable(RelayErrorMessages.goingAway());

    beforeEach(() => {
      t.lifecycle.beginDrain();
    });

    it('sends a request to a provider the drain moved off', () => {
      const p = t.provider('p');
      t.membership.moveOff(p);
      expect(t.world.providers.count('sum')).toBe(0);
      t.router.request(t.caller, request(1));
      const rid = deliveredTo(p).id;
      t.router.response(p, { type: FrameType.Response, id: rid, flags: ResponseFlag.DONE, payload: null });
      expect(t.caller.session.socket.take()).toEqual([response(1, ResponseFlag.DONE)]);
    });

    it('sends a request naming a moved-off node to that node', () => {
      const [p1, p2] = [t.provider('p1'), t.provider('p2')];
      t.membership.moveOff(p1);
      t.membership.moveOff(p2);
      t.router.request(t.caller, request(1, { peer: 'p2' }));
      t.router.request(t.caller, request(2, { peer: 'p2' }));
      expect(p2.session.socket.take()).toHaveLength(2);
      expect(p1.session.socket.take()).toEqual([]);
    });

    it('fails with RELAY_UNAVAILABLE what no provider, moved off or not, serves', () => {
      const p = t.provider('p', ['other']);
      t.membership.moveOff(p);
      t.router.request(t.caller, request(1));
      t.router.request(t.caller, request(2, { peer: 'p' }));
      t.router.request(t.caller, request(3, { peer: 'nobody' }));
      expect(t.caller.session.socket.take()).toEqual([
        error(1, RelayErrorCode.RELAY_UNAVAILABLE, unavailable),
        error(2, RelayErrorCode.RELAY_UNAVAILABLE, unavailable),
        error(3, RelayErrorCode.RELAY_UNAVAILABLE, unavailable),
      ]);
      expect(t.book.size).toBe(0);
    });

    it('fails rather than holds in the startup grace', () => {
      t.lifecycle.started(10_000);
      t.router.request(t.caller, request(1));
      expect(t.caller.session.socket.take()).toEqual([error(1, RelayErrorCode.RELAY_UNAVAILABLE, unavailable)]);
      expect(t.waits.counts.held).toBe(0);
    });

    it('still routes to providers in routing', () => {
      const p = t.provider('p');
      t.router.request(t.caller, request(1));
      expect(deliveredTo(p).id).toBe(t.book.asked(t.caller, 1)!.rid);
    });
  });
});
