import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { FrameType, RelayErrorCode, RelayErrorMessages, type RequestFrame } from '@wsrelay/protocol';
import { fakeNode, replies } from '../../spec-support/fakes.js';
import { Budget } from '../internal/budget.js';
import { type World, Worlds } from '../routing/world.js';
import { type PendingWait, WAIT_OVERHEAD_BYTES, Waits } from './waits.js';

/** Bytes of held payload a node may keep at the relay. */
const MAX_HELD = 10;
/** The WAIT timeout and the held request deadline used throughout. */
const TIMEOUT = 1000;

function request(id: number, pattern = 'sum', bytes = 4, peer: string | null = null): RequestFrame {
  return { type: FrameType.Request, id, pattern, payload: new Uint8Array(bytes), timeoutMs: TIMEOUT, peer, ext: null, claims: null };
}

function error(id: number, code: RelayErrorCode, message: string) {
  return { type: FrameType.Error, id, code, message };
}

describe('Waits', () => {
  let worlds: Worlds;
  let world: World;
  let waits: Waits;
  let caller: ReturnType<typeof fakeNode>;

  /** A provider of `patterns`, in routing. */
  function provider(nodeId: string, patterns = ['sum'], into = world) {
    const node = fakeNode(into, { nodeId, patterns });
    into.route(node);
    return node;
  }

  /** Holds `frame` until its deadline (TIMEOUT from now) or the end of a grace `graceMs` from now. */
  function hold(frame: RequestFrame, graceMs = 5000, node = caller) {
    waits.hold(node, frame, Date.now() + frame.timeoutMs, Date.now() + graceMs);
  }

  /** Releases `pattern` in `into`: the held requests handed out to be routed, in order. */
  function released(into: World, pattern: string): PendingWait[] {
    const routed: PendingWait[] = [];
    expect(waits.release(into, pattern, wait => routed.push(wait))).toBeGreaterThanOrEqual(routed.length);
    return routed;
  }

  beforeEach(() => {
    jest.useFakeTimers();
    worlds = new Worlds();
    world = worlds.ensure('');
    waits = new Waits(replies, MAX_HELD);
    caller = fakeNode(world, { nodeId: 'caller' });
  });

  afterEach(() => {
    jest.useRealTimers();
  });

  // WAIT: an ACK with how many providers are online, now or once one comes; TIMEOUT when none does in time.
  describe('wait', () => {
    it('ACKs at once with the number of providers online, booking nothing', () => {
      provider('p1');
      provider('p2');
      waits.wait(caller, 3, 'sum', TIMEOUT);
      expect(caller.session.socket.take()).toEqual([{ type: FrameType.Ack, id: 3, recipients: 2 }]);
      expect(waits.has(caller, 3)).toBe(false);
      expect(waits.count(caller)).toBe(0);
      expect(waits.counts).toEqual({ waits: 0, held: 0, patterns: 0 });
    });

    it('waits for a provider and fails with TIMEOUT after timeoutMs', () => {
      waits.wait(caller, 3, 'sum', TIMEOUT);
      expect(caller.session.socket.take()).toEqual([]);
      expect(waits.has(caller, 3)).toBe(true);
      expect(waits.count(caller)).toBe(1);
      expect(waits.counts).toEqual({ waits: 1, held: 0, patterns: 1 });

      jest.advanceTimersByTime(TIMEOUT - 1);
      expect(caller.session.socket.take()).toEqual([]);
      jest.advanceTimersByTime(1);
      expect(caller.session.socket.take()).toEqual([error(3, RelayErrorCode.TIMEOUT, RelayErrorMessages.waitTimeout('sum', TIMEOUT))]);
      expect(waits.has(caller, 3)).toBe(false);
      expect(waits.counts).toEqual({ waits: 0, held: 0, patterns: 0 });
    });

    it('is answered by release with how many providers came, and times out no more', () => {
      waits.wait(caller, 3, 'sum', TIMEOUT);
      waits.wait(caller, 4, 'other', TIMEOUT);
      provider('p1');
      provider('p2');
      expect(released(world, 'sum')).toEqual([]);
      expect(caller.session.socket.take()).toEqual([{ type: FrameType.Ack, id: 3, recipients: 2 }]);
      expect(waits.has(caller, 3)).toBe(false);
      expect(waits.has(caller, 4)).toBe(true);
      expect(waits.counts).toEqual({ waits: 1, held: 0, patterns: 1 });

      jest.advanceTimersByTime(TIMEOUT);
      expect(caller.session.socket.take()).toEqual([error(4, RelayErrorCode.TIMEOUT, RelayErrorMessages.waitTimeout('other', TIMEOUT))]);
    });

    it('is not released by providers of another tenant', () => {
      const elsewhere = worlds.ensure('t2');
      waits.wait(caller, 3, 'sum', TIMEOUT);
      provider('p', ['sum'], elsewhere);
      expect(released(elsewhere, 'sum')).toEqual([]);
      expect(caller.session.socket.take()).toEqual([]);
      expect(waits.has(caller, 3)).toBe(true);
    });

    it('goes unanswered when cancelled', () => {
      waits.wait(caller, 3, 'sum', TIMEOUT);
      expect(waits.cancel(caller, 3)).toBe(true);
      expect(waits.cancel(caller, 3)).toBe(false);
      expect(waits.cancel(caller, 99)).toBe(false);
      expect(waits.has(caller, 3)).toBe(false);
      expect(waits.counts).toEqual({ waits: 0, held: 0, patterns: 0 });
      provider('p');
      expect(released(world, 'sum')).toEqual([]);
      jest.advanceTimersByTime(TIMEOUT);
      expect(caller.session.socket.take()).toEqual([]);
    });
  });

  // A request held in the startup grace: out when a provider comes, MICROSERVICE_OFFLINE at the grace's end or its deadline.
  describe('hold', () => {
    it('holds a request, then hands it back out of the books when its provider comes', () => {
      const frame = request(5);
      const expiresAt = Date.now() + TIMEOUT;
      waits.hold(caller, frame, expiresAt, Date.now() + 5000);
      expect(waits.has(caller, 5)).toBe(true);
      expect(waits.count(caller)).toBe(1);
      expect(waits.counts).toEqual({ waits: 0, held: 1, patterns: 1 });

      provider('p');
      const routed = released(world, 'sum');
      expect(routed).toHaveLength(1);
      expect(routed[0]).toMatchObject({ id: 5, node: caller, pattern: 'sum', request: { frame, expiresAt } });
      expect(caller.session.socket.take()).toEqual([]);
      expect(waits.has(caller, 5)).toBe(false);
      expect(waits.counts).toEqual({ waits: 0, held: 0, patterns: 0 });
      jest.advanceTimersByTime(5000);
      expect(caller.session.socket.take()).toEqual([]);
    });

    it('fails with MICROSERVICE_OFFLINE when the grace ends first', () => {
      hold(request(5), 300);
      jest.advanceTimersByTime(299);
      expect(caller.session.socket.take()).toEqual([]);
      jest.advanceTimersByTime(1);
      expect(caller.session.socket.take()).toEqual([
        error(5, RelayErrorCode.MICROSERVICE_OFFLINE, RelayErrorMessages.microserviceOffline('sum', null)),
      ]);
      expect(waits.counts).toEqual({ waits: 0, held: 0, patterns: 0 });
    });

    it('fails with MICROSERVICE_OFFLINE naming the peer at its own deadline when that comes first', () => {
      hold(request(5, 'sum', 4, 'p'), 5000);
      jest.advanceTimersByTime(TIMEOUT - 1);
      expect(caller.session.socket.take()).toEqual([]);
      jest.advanceTimersByTime(1);
      expect(caller.session.socket.take()).toEqual([
        error(5, RelayErrorCode.MICROSERVICE_OFFLINE, RelayErrorMessages.microserviceOffline('sum', 'p')),
      ]);
      expect(waits.has(caller, 5)).toBe(false);
    });

    it('keeps a request for a named node held until that node serves the pattern', () => {
      hold(request(5, 'sum', 4, 'p2'));
      provider('p1');
      expect(released(world, 'sum')).toEqual([]);
      expect(waits.has(caller, 5)).toBe(true);
      provider('p2', ['other']);
      expect(released(world, 'sum')).toEqual([]);
      world.unroute(world.nodes.get('p2')!);
      provider('p2');
      expect(released(world, 'sum').map(w => w.id)).toEqual([5]);
      expect(waits.has(caller, 5)).toBe(false);
    });

    it('answers the WAITs and hands out the held requests of one pattern together, in the order they came', () => {
      waits.wait(caller, 1, 'sum', TIMEOUT);
      hold(request(2));
      waits.wait(caller, 3, 'sum', TIMEOUT);
      hold(request(4));
      provider('p');
      // What the caller had been sent when each held request went to be routed.
      const seen: Array<[number, unknown[]]> = [];
      const count = waits.release(world, 'sum', wait => seen.push([wait.id, caller.session.socket.take()]));
      expect(count).toBe(4);
      expect(seen).toEqual([
        [2, [{ type: FrameType.Ack, id: 1, recipients: 1 }]],
        [4, [{ type: FrameType.Ack, id: 3, recipients: 1 }]],
      ]);
      expect(caller.session.socket.take()).toEqual([]);
      expect(waits.counts).toEqual({ waits: 0, held: 0, patterns: 0 });
    });

    it('goes unanswered when cancelled', () => {
      hold(request(5));
      expect(waits.cancel(caller, 5)).toBe(true);
      expect(waits.counts).toEqual({ waits: 0, held: 0, patterns: 0 });
      jest.advanceTimersByTime(5000);
      expect(caller.session.socket.take()).toEqual([]);
    });
  });

  // Held payloads count per node against maxHeldBytes: past it a request is refused with RATE_LIMITED, not held.
  describe('held bytes', () => {
    it('holds up to maxHeldBytes and refuses what would go past it', () => {
      hold(request(1, 'sum', 6));
      hold(request(2, 'sum', 4));
      expect(caller.session.socket.take()).toEqual([]);
      hold(request(3, 'sum', 1));
      expect(caller.session.socket.take()).toEqual([error(3, RelayErrorCode.RATE_LIMITED, RelayErrorMessages.tooMuchHeld(MAX_HELD))]);
      expect(waits.has(caller, 3)).toBe(false);
      expect(waits.counts.held).toBe(2);
    });

    it('counts each node on its own', () => {
      const other = fakeNode(world, { nodeId: 'other' });
      hold(request(1, 'sum', MAX_HELD));
      hold(request(1, 'sum', MAX_HELD), 5000, other);
      expect(other.session.socket.take()).toEqual([]);
      expect(waits.counts.held).toBe(2);
    });

    const ends: Array<[string, () => void]> = [
      ['cancelled', () => waits.cancel(caller, 1)],
      [
        'released',
        () => {
          provider('p');
          released(world, 'sum');
        },
      ],
      ['timed out', () => jest.advanceTimersByTime(TIMEOUT)],
      ['failed', () => waits.failHeld(RelayErrorCode.RELAY_UNAVAILABLE, 'bye')],
      ['forgotten', () => waits.forget(caller)],
    ];
    it.each(ends)('frees the bytes of a request %s', (_how, end) => {
      hold(request(1, 'sum', MAX_HELD));
      end();
      caller.session.socket.take();
      hold(request(2, 'sum', MAX_HELD));
      expect(caller.session.socket.take()).toEqual([]);
      expect(waits.has(caller, 2)).toBe(true);
    });
  });

  // The relay's drain fails every held request; a gone node's waits go unanswered.
  describe('failHeld and forget', () => {
    it('fails every held request with the code given, leaving WAITs', () => {
      const other = fakeNode(world, { nodeId: 'other' });
      waits.wait(caller, 1, 'sum', TIMEOUT);
      hold(request(2));
      hold(request(3, 'other'), 5000, other);
      waits.failHeld(RelayErrorCode.RELAY_UNAVAILABLE, 'going away');
      expect(caller.session.socket.take()).toEqual([error(2, RelayErrorCode.RELAY_UNAVAILABLE, 'going away')]);
      expect(other.session.socket.take()).toEqual([error(3, RelayErrorCode.RELAY_UNAVAILABLE, 'going away')]);
      expect(waits.counts).toEqual({ waits: 1, held: 0, patterns: 1 });
      expect(waits.has(caller, 1)).toBe(true);
      jest.advanceTimersByTime(5000);
      expect(caller.session.socket.take()).toEqual([error(1, RelayErrorCode.TIMEOUT, RelayErrorMessages.waitTimeout('sum', TIMEOUT))]);
      expect(other.session.socket.take()).toEqual([]);
    });

    it('forgets a node: its WAITs and held requests go, unanswered, and others stay', () => {
      const other = fakeNode(world, { nodeId: 'other' });
      waits.wait(caller, 1, 'sum', TIMEOUT);
      hold(request(2, 'other'));
      waits.wait(other, 1, 'sum', TIMEOUT);
      waits.forget(caller);
      expect(waits.count(caller)).toBe(0);
      expect(waits.has(caller, 1)).toBe(false);
      expect(waits.counts).toEqual({ waits: 1, held: 0, patterns: 1 });
      provider('p', ['sum', 'other']);
      expect(released(world, 'other')).toEqual([]);
      expect(released(world, 'sum')).toEqual([]);
      jest.advanceTimersByTime(5000);
      expect(caller.session.socket.take()).toEqual([]);
      expect(other.session.socket.take()).toEqual([{ type: FrameType.Ack, id: 1, recipients: 1 }]);
    });

    it('counts the patterns waited for across tenants', () => {
      const elsewhere = fakeNode(worlds.ensure('t2'), { nodeId: 'x' });
      waits.wait(caller, 1, 'a', TIMEOUT);
      waits.wait(caller, 2, 'a', TIMEOUT);
      hold(request(3, 'b'));
      waits.wait(elsewhere, 1, 'a', TIMEOUT);
      expect(waits.counts).toEqual({ waits: 3, held: 1, patterns: 3 });
    });
  });
  // What all connections' waits keep together: bounded relay-wide, refused with RATE_LIMITED past it; a WAIT lasts at most maxWaitTimeoutMs.
  describe('relay-wide budgets', () => {
    let waitBytes: Budget;
    let heldBytes: Budget;
    const pattern = 'p'.repeat(100);
    const cost = WAIT_OVERHEAD_BYTES + pattern.length;
    /** What a held request(id) keeps: overhead, pattern 'sum', 4 bytes of payload. */
    const heldCost = WAIT_OVERHEAD_BYTES + 3 + 4;

    beforeEach(() => {
      // Room for 8 of each; one connection's share (a quarter): 2.
      waitBytes = new Budget(8 * cost);
      heldBytes = new Budget(8 * heldCost);
      waits = new Waits(replies, 1000, { waitBytes, heldBytes, maxWaitTimeoutMs: TIMEOUT });
    });

    /** `n` more nodes besides the caller. */
    const others = (n: number) => Array.from({ length: n }, (_, i) => fakeNode(world, { nodeId: `other-${i}` }));

    it('lets one connection keep at most its share (a quarter) of the WAIT budget: past it RATE_LIMITED naming its share', () => {
      for (let id = 1; id <= 3; id++) waits.wait(caller, id, pattern, TIMEOUT);
      const share = RelayErrorMessages.connectionBudgetShare('pending WAITs', 'waitBytes', 2 * cost);
      expect(caller.session.socket.take()).toEqual([error(3, RelayErrorCode.RATE_LIMITED, share)]);
      expect([waits.has(caller, 2), waits.has(caller, 3)]).toEqual([true, false]);
      expect(waitBytes.status()).toEqual({ used: 2 * cost, limit: 8 * cost, refused: 1 });
      // Another connection's WAIT is booked while the first is at its share.
      const [other] = others(1);
      waits.wait(other, 1, pattern, TIMEOUT);
      expect(waits.has(other, 1)).toBe(true);
      // The first gets room again once one of its own ends.
      expect(waits.cancel(caller, 1)).toBe(true);
      waits.wait(caller, 4, pattern, TIMEOUT);
      expect(waits.has(caller, 4)).toBe(true);
      waits.forget(caller);
      waits.wait(caller, 5, pattern, TIMEOUT);
      expect(waits.has(caller, 5)).toBe(true);
      expect(waitBytes.used).toBe(2 * cost);
    });

    it('refuses the WAIT that would go over the budget, of any connection, with RATE_LIMITED, and takes one again once another ends', () => {
      const [a, b, c, d] = others(4);
      for (const node of [caller, a, b, c]) for (let id = 1; id <= 2; id++) waits.wait(node, id, pattern, TIMEOUT);
      waits.wait(d, 1, pattern, TIMEOUT);
      const full = RelayErrorMessages.relayBudgetFull('pending WAITs', 'waitBytes', 8 * cost);
      expect(d.session.socket.take()).toEqual([error(1, RelayErrorCode.RATE_LIMITED, full)]);
      expect(waits.has(d, 1)).toBe(false);
      expect(waitBytes.status()).toEqual({ used: 8 * cost, limit: 8 * cost, refused: 1 });
      // An ACK at once keeps nothing: not refused.
      provider('p1', ['online']);
      waits.wait(d, 3, 'online', TIMEOUT);
      expect(d.session.socket.take()).toEqual([{ type: FrameType.Ack, id: 3, recipients: 1 }]);
      expect(waits.cancel(caller, 1)).toBe(true);
      waits.wait(d, 4, pattern, TIMEOUT);
      expect(waits.has(d, 4)).toBe(true);
      for (const node of [caller, a, b, c, d]) waits.forget(node);
      expect(waitBytes.used).toBe(0);
    });

    it('gives back what an answered or timed-out WAIT kept', () => {
      waits.wait(caller, 1, pattern, TIMEOUT);
      waits.wait(caller, 2, 'sum', TIMEOUT);
      provider('p');
      released(world, 'sum');
      expect(waitBytes.used).toBe(cost);
      jest.advanceTimersByTime(TIMEOUT);
      expect(waitBytes.used).toBe(0);
    });

    it('cuts a longer WAIT to maxWaitTimeoutMs, and its TIMEOUT says so', () => {
      waits.wait(caller, 1, 'sum', 24 * 24 * 3600_000);
      jest.advanceTimersByTime(TIMEOUT - 1);
      expect(caller.session.socket.take()).toEqual([]);
      jest.advanceTimersByTime(1);
      const [timeout] = caller.session.socket.take();
      expect(timeout).toEqual(error(1, RelayErrorCode.TIMEOUT, RelayErrorMessages.waitCapped('sum', TIMEOUT)));
      expect((timeout as { message: string }).message).toMatch(/maxWaitTimeoutMs/);
    });

    it('refuses the held request past the connection share or the held budget with RATE_LIMITED, and gives back what it kept', () => {
      const [a, b, c, d] = others(4);
      for (let id = 1; id <= 3; id++) hold(request(id));
      const share = RelayErrorMessages.connectionBudgetShare('calls held in its startup grace', 'heldBytes', 2 * heldCost);
      expect(caller.session.socket.take()).toEqual([error(3, RelayErrorCode.RATE_LIMITED, share)]);
      for (const node of [a, b, c]) for (let id = 1; id <= 2; id++) hold(request(id), 5000, node);
      hold(request(1), 5000, d);
      const full = RelayErrorMessages.relayBudgetFull('calls held in its startup grace', 'heldBytes', heldBytes.limit);
      expect(d.session.socket.take()).toEqual([error(1, RelayErrorCode.RATE_LIMITED, full)]);
      expect(waitBytes.used).toBe(0);
      provider('p');
      expect(released(world, 'sum')).toHaveLength(8);
      expect(heldBytes.status()).toEqual({ used: 0, limit: heldBytes.limit, refused: 2 });
      // Its share is free again.
      hold(request(4));
      hold(request(5));
      expect([waits.has(caller, 4), waits.has(caller, 5)]).toEqual([true, true]);
    });
  });
});
