/**
 * RequestRouter, how a call ends: the provider's RESPONSEs, a CANCEL, the deadline, and either end
 * of the call going away. How a request is routed: request-router.routing.spec.ts.
 */
import { beforeEach, describe, expect, it, jest } from '@jest/globals';
import { FrameType, RelayErrorCode, RelayErrorMessages, type RequestFrame, ResponseFlag } from '@wsrelay/protocol';
import { fakeNode } from '../../spec-support/fakes.js';
import {
  cancel,
  deliveredTo,
  error,
  type Node,
  request,
  response,
  routerFixture,
  TIMEOUT,
} from '../../spec-support/request-router-setup.js';

describe('RequestRouter', () => {
  /** A fresh router for each test, with fake timers (see routerFixture). */
  const t = routerFixture();

  // RESPONSEs go back to the caller under its own id; DONE or ERROR ends the call; only the provider may answer.
  describe('responses', () => {
    let p: Node;
    let rid: number;

    beforeEach(() => {
      p = t.provider('p');
      t.router.request(t.caller, request(5));
      rid = deliveredTo(p).id;
    });

    it('relays values and the completion to the caller, settling on DONE', () => {
      const value = new Uint8Array([4, 2]);
      t.router.response(p, { type: FrameType.Response, id: rid, flags: 0, payload: value });
      expect(t.caller.session.socket.take()).toEqual([response(5, 0, value)]);
      expect(t.book.size).toBe(1);

      t.router.response(p, { type: FrameType.Response, id: rid, flags: ResponseFlag.DONE, payload: null });
      expect(t.caller.session.socket.take()).toEqual([response(5, ResponseFlag.DONE)]);
      expect(t.book.size).toBe(0);
      expect(t.router.inFlightAt(p)).toBe(0);
      expect(t.router.dropped).toBe(0);

      t.router.response(p, { type: FrameType.Response, id: rid, flags: 0, payload: value });
      expect(t.caller.session.socket.take()).toEqual([]);
      expect(t.router.dropped).toBe(1);
      jest.advanceTimersByTime(TIMEOUT);
      expect(t.caller.session.socket.take()).toEqual([]);
      expect(p.session.socket.take()).toEqual([]);
    });

    it('settles on an ERROR response', () => {
      const failure = new Uint8Array([1]);
      t.router.response(p, { type: FrameType.Response, id: rid, flags: ResponseFlag.ERROR | ResponseFlag.DONE, payload: failure });
      expect(t.caller.session.socket.take()).toEqual([response(5, ResponseFlag.ERROR | ResponseFlag.DONE, failure)]);
      expect(t.book.size).toBe(0);
    });

    it('settles on the ERROR flag alone', () => {
      t.router.response(p, { type: FrameType.Response, id: rid, flags: ResponseFlag.ERROR, payload: null });
      expect(t.caller.session.socket.take()).toEqual([response(5, ResponseFlag.ERROR)]);
      expect(t.book.size).toBe(0);
    });

    it('drops a RESPONSE from a node the request was not routed to, or for an unknown id', () => {
      const other = t.provider('other');
      t.router.response(other, { type: FrameType.Response, id: rid, flags: ResponseFlag.DONE, payload: null });
      t.router.response(t.caller, { type: FrameType.Response, id: rid, flags: ResponseFlag.DONE, payload: null });
      t.router.response(p, { type: FrameType.Response, id: rid + 1, flags: ResponseFlag.DONE, payload: null });
      expect(t.caller.session.socket.take()).toEqual([]);
      expect(t.router.dropped).toBe(3);
      expect(t.book.size).toBe(1);
    });
  });

  // CANCEL goes on to the provider under the relay's id; the deadline fails the call at both ends.
  describe('cancel and deadline', () => {
    it('forwards a CANCEL to the provider and ends the call', () => {
      const p = t.provider('p');
      t.router.request(t.caller, request(5));
      const rid = deliveredTo(p).id;
      t.router.cancel(t.caller, 5);
      expect(p.session.socket.take()).toEqual([cancel(rid)]);
      expect(t.caller.session.socket.take()).toEqual([]);
      expect(t.book.size).toBe(0);
      expect(t.router.dropped).toBe(0);

      t.router.response(p, { type: FrameType.Response, id: rid, flags: ResponseFlag.DONE, payload: null });
      jest.advanceTimersByTime(TIMEOUT);
      expect(t.caller.session.socket.take()).toEqual([]);
      expect(p.session.socket.take()).toEqual([]);
      expect(t.router.dropped).toBe(1);
    });

    it('counts a CANCEL for nothing in flight as dropped', () => {
      const p = t.provider('p');
      t.router.cancel(t.caller, 5);
      expect(t.router.dropped).toBe(1);
      expect(p.session.socket.take()).toEqual([]);
      expect(t.caller.session.socket.take()).toEqual([]);
    });

    it('cancels a pending WAIT, unanswered', () => {
      t.waits.wait(t.caller, 5, 'sum', TIMEOUT);
      t.router.cancel(t.caller, 5);
      expect(t.router.dropped).toBe(0);
      expect(t.waits.has(t.caller, 5)).toBe(false);
      jest.advanceTimersByTime(TIMEOUT);
      expect(t.caller.session.socket.take()).toEqual([]);
    });

    it('fails the call with TIMEOUT at its deadline and cancels it at the provider', () => {
      const p = t.provider('p');
      t.router.request(t.caller, request(5));
      const rid = deliveredTo(p).id;
      jest.advanceTimersByTime(TIMEOUT - 1);
      expect(t.caller.session.socket.take()).toEqual([]);
      expect(p.session.socket.take()).toEqual([]);

      jest.advanceTimersByTime(1);
      expect(t.caller.session.socket.take()).toEqual([error(5, RelayErrorCode.TIMEOUT, RelayErrorMessages.timeout('sum', TIMEOUT))]);
      expect(p.session.socket.take()).toEqual([cancel(rid)]);
      expect(t.book.size).toBe(0);

      t.router.response(p, { type: FrameType.Response, id: rid, flags: ResponseFlag.DONE, payload: null });
      expect(t.caller.session.socket.take()).toEqual([]);
      expect(t.router.dropped).toBe(1);
    });
  });

  // A node that goes fails what it was serving (PROVIDER_DISCONNECTED) and cancels what it asked; without notify all settles quietly.
  describe('nodeGone', () => {
    it('fails the calls in flight at a provider that is gone', () => {
      const [p, q] = [t.provider('p'), t.provider('q')];
      const other = fakeNode(t.world, { nodeId: 'other' });
      t.router.request(t.caller, request(1, { peer: 'p' }));
      t.router.request(other, request(7, { peer: 'p' }));
      t.router.request(t.caller, request(2, { peer: 'q' }));
      p.session.socket.take();
      q.session.socket.take();

      t.router.nodeGone(p, true);
      const disconnected = RelayErrorMessages.providerDisconnected('sum');
      expect(t.caller.session.socket.take()).toEqual([error(1, RelayErrorCode.PROVIDER_DISCONNECTED, disconnected)]);
      expect(other.session.socket.take()).toEqual([error(7, RelayErrorCode.PROVIDER_DISCONNECTED, disconnected)]);
      expect(t.router.inFlightAt(p)).toBe(0);
      expect(t.book.size).toBe(1);
      expect(t.book.asked(t.caller, 2)).toBeDefined();

      jest.advanceTimersByTime(TIMEOUT - 1);
      expect(t.caller.session.socket.take()).toEqual([]);
      expect(p.session.socket.take()).toEqual([]);
    });

    it('cancels at their providers the calls of a caller that is gone', () => {
      const [p, q] = [t.provider('p'), t.provider('q')];
      const other = fakeNode(t.world, { nodeId: 'other' });
      t.router.request(t.caller, request(1, { peer: 'p' }));
      t.router.request(t.caller, request(2, { peer: 'q' }));
      t.router.request(other, request(1, { peer: 'p' }));
      const [rp] = p.session.socket.take().map(f => (f as RequestFrame).id);
      const rq = deliveredTo(q).id;

      t.router.nodeGone(t.caller, true);
      expect(p.session.socket.take()).toEqual([cancel(rp)]);
      expect(q.session.socket.take()).toEqual([cancel(rq)]);
      expect(t.book.askedCount(t.caller)).toBe(0);
      expect(t.book.size).toBe(1);
      expect(other.session.socket.take()).toEqual([]);
    });

    it('settles quietly without notify', () => {
      const p = t.provider('p');
      const other = fakeNode(t.world, { nodeId: 'other' });
      t.router.request(other, request(1));
      t.router.request(t.caller, request(2));
      p.session.socket.take();
      t.router.nodeGone(p, false);
      t.router.nodeGone(t.caller, false);
      expect(t.book.size).toBe(0);
      jest.advanceTimersByTime(TIMEOUT);
      expect(other.session.socket.take()).toEqual([]);
      expect(t.caller.session.socket.take()).toEqual([]);
      expect(p.session.socket.take()).toEqual([]);
    });
  });
});
