import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { fakeNode } from '../../spec-support/fakes.js';
import { RemoteNode, RemoteRelay } from '../cluster/remote.js';
import { type World, Worlds } from '../routing/world.js';
import { IdSequence } from '../internal/id-sequence.js';
import { MAX_RID, type PendingRequest, RequestBook } from './request-book.js';

/** What `book()` is given for a request after its parties: the pattern, its deadline and when its timer fires. */
const r = (timerMs = 1000) => ['sum', 1000, timerMs] as const;

describe('RequestBook', () => {
  let world: World;
  let settled: number;
  let book: RequestBook;

  beforeEach(() => {
    jest.useFakeTimers();
    world = new Worlds().ensure('');
    settled = 0;
    book = new RequestBook(() => settled++);
  });

  afterEach(() => {
    jest.useRealTimers();
  });

  // Booking puts a request on both its ends: the caller's id on the caller's side, a fresh rid on the provider party's side.
  describe('book', () => {
    it('books a request under the caller id and under a relay id at the provider party', () => {
      const caller = fakeNode(world, { nodeId: 'caller' });
      const provider = fakeNode(world, { nodeId: 'p', patterns: ['sum'] });
      const pending = book.book(caller, 7, provider, provider, 'sum', 500, 600);

      expect(pending).toMatchObject({ callerRequestId: 7, caller, provider, party: provider, pattern: 'sum', timeoutMs: 500 });
      expect(pending.timer).toBeDefined();
      expect(book.asked(caller, 7)).toBe(pending);
      expect(book.delivered(provider, pending.rid)).toBe(pending);
      expect(book.asked(provider, 7)).toBeUndefined();
      expect(book.delivered(caller, pending.rid)).toBeUndefined();
      expect(book.size).toBe(1);
      expect(book.askedCount(caller)).toBe(1);
      expect(book.deliveredCount(provider)).toBe(1);
      expect(book.askedCount(provider)).toBe(0);
      expect(book.deliveredCount(caller)).toBe(0);
    });

    it('books a remote provider on its relay (the party), keeping the node as provider', () => {
      const caller = fakeNode(world, { nodeId: 'caller' });
      const relay = new RemoteRelay('other');
      const remote = new RemoteNode(relay, {
        tenant: '',
        nodeId: 'far',
        service: null,
        patterns: ['sum'],
        events: [],
        queue: null,
        subject: null,
        since: 1,
      });
      const pending = book.book(caller, 1, remote, relay, ...r());
      expect(book.delivered(relay, pending.rid)).toBe(pending);
      expect(pending.provider).toBe(remote);
      expect(book.deliveredCount(relay)).toBe(1);
    });

    it('gives each delivery a fresh rid, whatever the caller ids', () => {
      const [a, b] = [fakeNode(world, { nodeId: 'a' }), fakeNode(world, { nodeId: 'b' })];
      const provider = fakeNode(world, { nodeId: 'p', patterns: ['sum'] });
      const rids = [book.book(a, 1, provider, provider, ...r()), book.book(b, 1, provider, provider, ...r())].map(p => p.rid);
      rids.push(book.book(a, 2, provider, provider, ...r()).rid);
      expect(new Set(rids).size).toBe(3);
      expect(rids.every(rid => rid >= 1 && rid <= MAX_RID)).toBe(true);
      expect(book.asked(a, 1)).not.toBe(book.asked(b, 1));
      expect(book.size).toBe(3);
    });

    it('counts a request once when a node calls itself', () => {
      const node = fakeNode(world, { nodeId: 'self', patterns: ['sum'] });
      const pending = book.book(node, 3, node, node, ...r());
      expect(book.size).toBe(1);
      expect(book.askedCount(node)).toBe(1);
      expect(book.deliveredCount(node)).toBe(1);
      expect(book.settle(pending)).toBe(true);
      expect(book.size).toBe(0);
    });

    it('wraps rids past their bound to 1, passing over a rid still in flight at the party', () => {
      const caller = fakeNode(world, { nodeId: 'caller' });
      const provider = fakeNode(world, { nodeId: 'p', patterns: ['sum'] });
      book = new RequestBook(undefined, new IdSequence(3));
      const longLived = book.book(caller, 1, provider, provider, ...r());
      book.settle(book.book(caller, 2, provider, provider, ...r()));
      expect(book.book(caller, 3, provider, provider, ...r()).rid).toBe(3);
      const wrapped = book.book(caller, 4, provider, provider, ...r());
      expect([longLived.rid, wrapped.rid]).toEqual([1, 2]);
      expect(book.delivered(provider, 1)).toBe(longLived);
      expect(book.delivered(provider, 2)).toBe(wrapped);
    });

    it('reuses a wrapped rid at a party where it is not in flight', () => {
      const caller = fakeNode(world, { nodeId: 'caller' });
      const [p1, p2] = [fakeNode(world, { nodeId: 'p1', patterns: ['sum'] }), fakeNode(world, { nodeId: 'p2', patterns: ['sum'] })];
      book = new RequestBook(undefined, new IdSequence(3));
      for (const id of [1, 2, 3]) book.book(caller, id, p1, p1, ...r());
      expect(book.book(caller, 4, p2, p2, ...r()).rid).toBe(1);
    });

    it('uses the whole 32-bit range by default', () => {
      expect(MAX_RID).toBe(0xffff_ffff);
    });
  });

  // The timer runs the expiry (expireWith) at timerMs unless the request settles first; the book itself settles nothing then.
  describe('expiry', () => {
    it('runs the expiry at timerMs, with the timer cleared and the request still booked', () => {
      const caller = fakeNode(world, { nodeId: 'caller' });
      const provider = fakeNode(world, { nodeId: 'p', patterns: ['sum'] });
      const expired: Array<{ pending: PendingRequest; timer: unknown; booked: boolean }> = [];
      book.expireWith(p => expired.push({ pending: p, timer: p.timer, booked: book.asked(caller, 1) === p }));
      const pending = book.book(caller, 1, provider, provider, 'sum', 100, 250);
      jest.advanceTimersByTime(249);
      expect(expired).toEqual([]);
      jest.advanceTimersByTime(1);
      expect(expired).toEqual([{ pending, timer: undefined, booked: true }]);
      expect(book.size).toBe(1);
      expect(settled).toBe(0);
    });

    it('does not run the expiry once the request settled', () => {
      const caller = fakeNode(world, { nodeId: 'caller' });
      const provider = fakeNode(world, { nodeId: 'p', patterns: ['sum'] });
      const onExpire = jest.fn();
      book.expireWith(onExpire);
      const pending = book.book(caller, 1, provider, provider, ...r(100));
      book.settle(pending);
      jest.advanceTimersByTime(1000);
      expect(onExpire).not.toHaveBeenCalled();
    });
  });

  // Settling takes a request off both ends once, and tells the owner (the relay's drain waits for none to be left).
  describe('settle', () => {
    it('removes a request from both ends and calls onSettled once', () => {
      const caller = fakeNode(world, { nodeId: 'caller' });
      const provider = fakeNode(world, { nodeId: 'p', patterns: ['sum'] });
      const pending = book.book(caller, 1, provider, provider, ...r());
      book.book(caller, 2, provider, provider, ...r());

      expect(book.settle(pending)).toBe(true);
      expect(settled).toBe(1);
      expect(book.asked(caller, 1)).toBeUndefined();
      expect(book.delivered(provider, pending.rid)).toBeUndefined();
      expect(book.size).toBe(1);
      expect(book.askedCount(caller)).toBe(1);
      expect(book.deliveredCount(provider)).toBe(1);

      expect(book.settle(pending)).toBe(false);
      expect(settled).toBe(1);
      expect(book.size).toBe(1);
    });

    it('does not settle a newer request that reuses the caller id of a settled one', () => {
      const caller = fakeNode(world, { nodeId: 'caller' });
      const provider = fakeNode(world, { nodeId: 'p', patterns: ['sum'] });
      const old = book.book(caller, 9, provider, provider, ...r());
      book.settle(old);
      const fresh = book.book(caller, 9, provider, provider, ...r());
      expect(book.settle(old)).toBe(false);
      expect(book.asked(caller, 9)).toBe(fresh);
      expect(book.delivered(provider, fresh.rid)).toBe(fresh);
      expect(book.size).toBe(1);
      expect(settled).toBe(1);
    });
  });

  // Snapshots let a caller settle while it walks them; forget drops only books that are empty.
  describe('snapshots and forget', () => {
    it('lists what a caller asked and what a party was given, as snapshots', () => {
      const [a, b] = [fakeNode(world, { nodeId: 'a' }), fakeNode(world, { nodeId: 'b' })];
      const [p1, p2] = [fakeNode(world, { nodeId: 'p1', patterns: ['sum'] }), fakeNode(world, { nodeId: 'p2', patterns: ['sum'] })];
      const a1 = book.book(a, 1, p1, p1, ...r());
      const a2 = book.book(a, 2, p2, p2, ...r());
      const b1 = book.book(b, 1, p1, p1, ...r());

      expect(book.askedBy(a)).toEqual([a1, a2]);
      expect(book.askedBy(b)).toEqual([b1]);
      expect(book.deliveredTo(p1)).toEqual([a1, b1]);
      expect(book.deliveredTo(p2)).toEqual([a2]);
      expect(book.askedBy(p1)).toEqual([]);

      const snapshot = book.deliveredTo(p1);
      for (const pending of snapshot) book.settle(pending);
      expect(snapshot).toHaveLength(2);
      expect(book.deliveredTo(p1)).toEqual([]);
      expect(book.askedBy(a)).toEqual([a2]);
      expect(book.size).toBe(1);
    });

    it('keeps a party that still has requests in flight when it is forgotten', () => {
      const caller = fakeNode(world, { nodeId: 'caller' });
      const provider = fakeNode(world, { nodeId: 'p', patterns: ['sum'] });
      const pending = book.book(caller, 1, provider, provider, ...r());
      book.forget(caller);
      book.forget(provider);
      expect(book.asked(caller, 1)).toBe(pending);
      expect(book.delivered(provider, pending.rid)).toBe(pending);
      expect(book.settle(pending)).toBe(true);
    });

    it('drops the empty books of a forgotten party', () => {
      const caller = fakeNode(world, { nodeId: 'caller' });
      const provider = fakeNode(world, { nodeId: 'p', patterns: ['sum'] });
      book.settle(book.book(caller, 1, provider, provider, ...r()));
      expect(book.parties).toBe(2);
      book.forget(caller);
      book.forget(provider);
      expect(book.parties).toBe(0);
      expect(book.askedCount(caller)).toBe(0);
      expect(book.deliveredCount(provider)).toBe(0);
    });
  });
});
