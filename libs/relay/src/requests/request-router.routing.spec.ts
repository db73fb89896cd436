/**
 * RequestRouter, how a REQUEST is routed: to one provider (in turn, or the node it names) under the
 * relay's id, failed when nothing serves it, and admitted only with an id not in flight and within
 * the caller's in-flight limit. How calls end: request-router.endings.spec.ts; the startup grace and
 * the shutdown drain: request-router.lifecycle.spec.ts.
 */
import { describe, expect, it } from '@jest/globals';
import { FrameType, RelayErrorCode, RelayErrorMessages, ResponseFlag } from '@wsrelay/protocol';
import { fakeNode } from '../../spec-support/fakes.js';
import { deliveredTo, error, PAYLOAD, request, routerFixture, thrown, TIMEOUT } from '../../spec-support/request-router-setup.js';
import { type ConnectionIdentity, OPEN_IDENTITY } from '../auth/relay-auth.service.js';
import { RemoteNode, RemoteRelay } from '../cluster/remote.js';

describe('RequestRouter', () => {
  /** A fresh router for each test, with fake timers (see routerFixture). */
  const t = routerFixture();

  // A REQUEST goes to one provider (round-robin, or the node it names) under the relay's id; nothing serving it fails it.
  describe('routing', () => {
    it("delivers a REQUEST under the relay's id, with the caller's node id and its verified claims", () => {
      const claims = new Uint8Array([9, 9]);
      const identity: ConnectionIdentity = { ...OPEN_IDENTITY, encodedClaims: claims };
      t.caller = fakeNode(t.world, { nodeId: 'caller' }, identity);
      const p = t.provider('p');
      const ext = new Uint8Array([7]);
      t.router.request(t.caller, request(1, { ext, claims: new Uint8Array([6]) }));

      const pending = t.book.asked(t.caller, 1)!;
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
      expect(t.caller.session.socket.take()).toEqual([]);
      expect(t.book.size).toBe(1);
      expect(t.router.inFlightAt(p)).toBe(1);
    });

    it('takes the providers of a pattern in turn', () => {
      const [p1, p2] = [t.provider('p1'), t.provider('p2')];
      for (let id = 1; id <= 4; id++) t.router.request(t.caller, request(id));
      expect(p1.session.socket.take().map(f => f.type)).toEqual([FrameType.Request, FrameType.Request]);
      expect(p2.session.socket.take().map(f => f.type)).toEqual([FrameType.Request, FrameType.Request]);
      expect(t.book.deliveredTo(p1).map(r => r.callerRequestId)).toEqual([1, 3]);
      expect(t.book.deliveredTo(p2).map(r => r.callerRequestId)).toEqual([2, 4]);
    });

    it('sends a request that names a node to that node only', () => {
      const [p1, p2] = [t.provider('p1'), t.provider('p2')];
      for (let id = 1; id <= 3; id++) t.router.request(t.caller, request(id, { peer: 'p2' }));
      expect(p1.session.socket.take()).toEqual([]);
      expect(p2.session.socket.take()).toHaveLength(3);
      expect(t.router.inFlightAt(p2)).toBe(3);
    });

    it('fails a request nothing serves with MICROSERVICE_OFFLINE', () => {
      t.provider('p', ['other']);
      t.router.request(t.caller, request(1));
      expect(t.caller.session.socket.take()).toEqual([
        error(1, RelayErrorCode.MICROSERVICE_OFFLINE, RelayErrorMessages.microserviceOffline('sum', null)),
      ]);
      expect(t.book.size).toBe(0);
    });

    it('fails a request for a node that is not there, or does not serve the pattern, with MICROSERVICE_OFFLINE', () => {
      const p = t.provider('p', ['other']);
      t.provider('q');
      t.router.request(t.caller, request(1, { peer: 'gone' }));
      t.router.request(t.caller, request(2, { peer: 'p' }));
      expect(t.caller.session.socket.take()).toEqual([
        error(1, RelayErrorCode.MICROSERVICE_OFFLINE, RelayErrorMessages.microserviceOffline('sum', 'gone')),
        error(2, RelayErrorCode.MICROSERVICE_OFFLINE, RelayErrorMessages.microserviceOffline('sum', 'p')),
      ]);
      expect(p.session.socket.take()).toEqual([]);
      expect(t.book.size).toBe(0);
    });

    it('fails a request for a node of another relay it cannot reach with PROVIDER_DISCONNECTED', () => {
      const relay = new RemoteRelay('other');
      const info = { tenant: '', nodeId: 'far', service: null, patterns: ['sum'], events: [], queue: null, subject: null, since: 1 };
      t.world.route(new RemoteNode(relay, info));
      t.router.request(t.caller, request(1));
      expect(t.caller.session.socket.take()).toEqual([
        error(1, RelayErrorCode.PROVIDER_DISCONNECTED, RelayErrorMessages.providerDisconnected('sum')),
      ]);
      expect(t.book.size).toBe(0);
      expect(t.book.deliveredCount(relay)).toBe(0);
    });
  });

  // A caller's id names one call at a time (BAD_FRAME), and a caller has a bounded number in flight (RATE_LIMITED).
  describe('admission', () => {
    it('throws BAD_FRAME for an id already in flight, and takes the id again once it settled', () => {
      const p = t.provider('p');
      t.router.request(t.caller, request(1));
      deliveredTo(p);
      const err = thrown(() => t.router.request(t.caller, request(1)));
      expect(err.code).toBe(RelayErrorCode.BAD_FRAME);
      expect(err.message).toBe(RelayErrorMessages.badFrame(RelayErrorMessages.duplicateId(1)));
      expect(p.session.socket.take()).toEqual([]);
      expect(t.book.size).toBe(1);

      t.router.response(p, { type: FrameType.Response, id: t.book.asked(t.caller, 1)!.rid, flags: ResponseFlag.DONE, payload: null });
      t.router.request(t.caller, request(1));
      expect(deliveredTo(p).type).toBe(FrameType.Request);
    });

    it('throws BAD_FRAME for the id of a pending WAIT or of a held request', () => {
      t.lifecycle.started(10_000);
      t.waits.wait(t.caller, 1, 'other', TIMEOUT);
      t.router.request(t.caller, request(2));
      expect(thrown(() => t.router.request(t.caller, request(1))).code).toBe(RelayErrorCode.BAD_FRAME);
      expect(thrown(() => t.router.request(t.caller, request(2))).code).toBe(RelayErrorCode.BAD_FRAME);
      expect(t.waits.counts).toEqual({ waits: 1, held: 1, patterns: 2 });
    });

    it('throws RATE_LIMITED past the in-flight limit, counting held requests and WAITs', () => {
      t.build(3);
      const p = t.provider('p');
      t.lifecycle.started(10_000);
      t.router.request(t.caller, request(1));
      t.router.request(t.caller, request(2, { pattern: 'later' }));
      t.waits.wait(t.caller, 3, 'other', TIMEOUT);
      const err = thrown(() => t.router.request(t.caller, request(4)));
      expect(err.code).toBe(RelayErrorCode.RATE_LIMITED);
      expect(err.message).toBe(RelayErrorMessages.tooManyInFlight(3));
      expect(deliveredTo(p).type).toBe(FrameType.Request);
      expect(t.caller.session.socket.take()).toEqual([]);

      t.router.cancel(t.caller, 2);
      t.router.request(t.caller, request(4));
      expect(deliveredTo(p).type).toBe(FrameType.Request);
    });

    it('does not count a request that failed at once', () => {
      t.build(1);
      t.router.request(t.caller, request(1));
      t.router.request(t.caller, request(2));
      expect(t.caller.session.socket.take().map(f => f.type)).toEqual([FrameType.Error, FrameType.Error]);
    });
  });
});
