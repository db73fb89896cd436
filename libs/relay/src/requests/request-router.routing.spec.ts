/**
 * RequestRouter, how a REQUEST is routed: to one provider (in turn, or the node it names) under the
 * relay's id, failed when nothing serves it, and admitted only with an id not in flight and within
 * the caller's in-flight limit. How calls end: request-router.endings.spec.ts; the startup grace and
 * the shutdown drain: request-router.lifecycle.spec.ts.
 */
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { FrameType, RelayErrorCode, RelayErrorMessages, ResponseFlag } from '@wsrelay/protocol';
import { fakeNode } from '../../spec-support/fakes.js';
import {
  buildRouter,
  deliveredTo,
  error,
  type Node,
  PAYLOAD,
  providerIn,
  request,
  thrown,
  TIMEOUT,
} from '../../spec-support/request-router-setup.js';
import { type ConnectionIdentity, OPEN_IDENTITY } from '../auth/relay-auth.service.js';
import { RemoteNode, RemoteRelay } from '../cluster/remote.js';
import type { RelayLifecycle } from '../lifecycle/relay-lifecycle.js';
import type { World } from '../routing/world.js';
import type { RequestBook } from './request-book.js';
import type { RequestRouter } from './request-router.js';
import type { Waits } from './waits.js';

describe('RequestRouter', () => {
  let world: World;
  let lifecycle: RelayLifecycle;
  let book: RequestBook;
  let waits: Waits;
  let router: RequestRouter;
  let caller: Node;

  /** A fresh router: `maxInFlight` per connection (requests and waits), `maxHeldBytes` of held payload per node. */
  function build(maxInFlight?: number, maxHeldBytes?: number): void {
    ({ world, lifecycle, book, waits, router, caller } = buildRouter(maxInFlight, maxHeldBytes));
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
});
