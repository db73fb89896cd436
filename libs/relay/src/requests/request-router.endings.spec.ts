/**
 * RequestRouter, how a call ends: the provider's RESPONSEs, a CANCEL, the deadline, and either end
 * of the call going away. How a request is routed: request-router.routing.spec.ts.
 */
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { FrameType, RelayErrorCode, RelayErrorMessages, type RequestFrame, ResponseFlag } from '@wsrelay/protocol';
import { fakeNode } from '../../spec-support/fakes.js';
import {
  buildRouter,
  cancel,
  deliveredTo,
  error,
  type Node,
  providerIn,
  request,
  response,
  TIMEOUT,
} from '../../spec-support/request-router-setup.js';
import type { World } from '../routing/world.js';
import type { RequestBook } from './request-book.js';
import type { RequestRouter } from './request-router.js';
import type { Waits } from './waits.js';

describe('RequestRouter', () => {
  let world: World;
  let book: RequestBook;
  let waits: Waits;
  let router: RequestRouter;
  let caller: Node;

  /** A fresh router: `maxInFlight` per connection (requests and waits), `maxHeldBytes` of held payload per node. */
  function build(maxInFlight?: number, maxHeldBytes?: number): void {
    ({ world, book, waits, router, caller } = buildRouter(maxInFlight, maxHeldBytes));
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
});
