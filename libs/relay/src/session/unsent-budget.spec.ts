import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { CloseCode, FrameType, RelayErrorMessages } from '@wsrelay/protocol';
import { codec, fakeSession } from '../../spec-support/fakes.js';
import { OPEN_IDENTITY } from '../auth/relay-auth.service.js';
import { Budget } from '../internal/budget.js';
import { UnsentBudget } from './unsent-budget.js';

const PING = codec.encode({ type: FrameType.Ping });
/** Each session: slow past 100 unsent bytes, closed past 1000; the relay: 2500 for all. */
const LIMIT = 2500;

describe('UnsentBudget', () => {
  let budget: Budget;
  let unsent: UnsentBudget;
  let clock: number;

  beforeEach(() => {
    jest.useFakeTimers();
    clock = 1000;
    budget = new Budget(LIMIT);
    unsent = new UnsentBudget(budget, () => clock);
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  function session() {
    return fakeSession(OPEN_IDENTITY, { slowBytes: 100, budgetBytes: 1000, watch: unsent });
  }

  /** A write that leaves `s` with `buffered` bytes unsent. */
  function write(s: ReturnType<typeof session>, buffered: number): void {
    s.socket.bufferedAmount = buffered;
    s.send(PING);
  }

  it('counts nothing for writes that leave a session under its slow threshold', () => {
    const s = session();
    write(s, 100);
    expect(budget.used).toBe(0);
    expect(unsent.stalledSince(s)).toBeUndefined();
  });

  it('counts a backed-up session at each write, from when it first stalled', () => {
    const s = session();
    write(s, 500);
    clock = 2000;
    write(s, 800);
    expect(budget.used).toBe(800);
    expect(unsent.stalledSince(s)).toBe(1000);
    expect(unsent.stalledCount).toBe(1);
  });

  it('over the budget, closes stalled sessions oldest-stalled first (SLOW_CONSUMER) until under it, the others untouched', () => {
    const [first, second, third] = [session(), session(), session()];
    for (const [i, s] of [first, second, third].entries()) {
      clock = 1000 + i;
      write(s, 200);
    }
    write(third, 900);
    write(second, 900);
    expect(budget.used).toBe(2000);
    // 2700: over. `first` stalled first: it goes, though the write that went over was its own and others hold as much.
    write(first, 900);
    expect(first.socket.closed).toEqual({ code: CloseCode.SLOW_CONSUMER, reason: RelayErrorMessages.relayUnsentOver(900, LIMIT) });
    expect(first.overBudget).toBe(true);
    expect(budget.used).toBe(1800);
    expect([second.socket.closed, third.socket.closed]).toEqual([undefined, undefined]);
    expect(budget.status()).toEqual({ used: 1800, limit: LIMIT, refused: 1 });
  });

  it('forgets a session closed for its own budget, and one that is gone', () => {
    const [a, b] = [session(), session()];
    write(a, 900);
    write(b, 900);
    write(a, 1001); // over its own budget: closed, its bytes leave the count
    expect(a.socket.closed?.code).toBe(CloseCode.SLOW_CONSUMER);
    expect(budget.used).toBe(900);
    unsent.forget(b);
    expect(budget.used).toBe(0);
    expect(unsent.stalledCount).toBe(0);
  });

  it('sweeps: the exact count of every session, and a session that read again is no longer stalled', () => {
    const [reader, staller] = [session(), session()];
    write(reader, 600);
    clock = 2000;
    write(staller, 600);
    reader.socket.bufferedAmount = 50;
    staller.socket.bufferedAmount = 700;
    clock = 3000;
    unsent.sweep([reader, staller]);
    expect(budget.used).toBe(750);
    expect(unsent.stalledSince(reader)).toBeUndefined();
    expect(unsent.stalledSince(staller)).toBe(2000);
    // It stalls again: from now, behind the other.
    write(reader, 900);
    expect(unsent.stalledSince(reader)).toBe(3000);
  });

  it('sweeps: over the budget without a write (a lower limit), closes the oldest-stalled', () => {
    const [a, b, c] = [session(), session(), session()];
    for (const s of [b, a, c]) {
      write(s, 800);
      clock++;
    }
    for (const s of [a, b, c]) s.socket.bufferedAmount = 950; // grew with nothing more written by the relay
    expect(budget.used).toBe(2400);
    unsent.sweep([a, b, c]);
    expect(b.socket.closed).toEqual({ code: CloseCode.SLOW_CONSUMER, reason: RelayErrorMessages.relayUnsentOver(950, LIMIT) });
    expect([a.overBudget, c.overBudget]).toEqual([false, false]);
    expect(budget.used).toBe(1900);
  });

  describe('connections under the slow threshold', () => {
    /** A budget of 250 for all: over it with connections that each hold under 100 (their slow threshold). */
    const SMALL = 250;

    beforeEach(() => {
      budget = new Budget(SMALL);
      unsent = new UnsentBudget(budget, () => clock);
    });

    /** A sweep at `at` with each session's unsent bytes as given. */
    function sweepAt(at: number, unsentBytes: Array<[ReturnType<typeof session>, number]>): void {
      clock = at;
      for (const [s, bytes] of unsentBytes) s.socket.bufferedAmount = bytes;
      unsent.sweep(unsentBytes.map(([s]) => s));
    }

    it('one that reads, however slowly, is not stalled though its backlog does not shrink; one that takes nothing is', () => {
      const [reader, stuck] = [session(), session()];
      sweepAt(1000, [
        [reader, 90],
        [stuck, 90],
      ]);
      // Both still hold 90 unsent, but 500 more bytes were written to the reader, and it took them.
      reader.written += 500;
      sweepAt(2000, [
        [reader, 90],
        [stuck, 90],
      ]);
      expect(unsent.stalledSince(reader)).toBeUndefined();
      expect(unsent.stalledSince(stuck)).toBe(1000);
    });

    it('stall once their unsent bytes made no progress since the last sweep, and over the budget go oldest-stalled first, then the largest', () => {
      const [early, big, small, mover, idle] = [session(), session(), session(), session(), session()];
      sweepAt(1000, [
        [early, 90],
        [big, 0],
        [small, 0],
        [mover, 0],
        [idle, 0],
      ]);
      expect(unsent.stalledCount).toBe(0);
      // 345 over 250: `early` made no progress since the last sweep (it grew), the others were not seen before.
      sweepAt(2000, [
        [early, 95],
        [big, 100],
        [small, 60],
        [mover, 90],
        [idle, 0],
      ]);
      expect(early.socket.closed).toEqual({ code: CloseCode.SLOW_CONSUMER, reason: RelayErrorMessages.relayUnsentOver(95, SMALL) });
      expect(budget.status()).toEqual({ used: 250, limit: SMALL, refused: 1 });
      // Under it: `big` and `small` stall (since the last sweep), `mover` sent some: it does not.
      sweepAt(3000, [
        [big, 100],
        [small, 60],
        [mover, 40],
        [idle, 0],
      ]);
      expect([unsent.stalledSince(big), unsent.stalledSince(small), unsent.stalledSince(mover)]).toEqual([2000, 2000, undefined]);
      expect([big.overBudget, small.overBudget, mover.overBudget]).toEqual([false, false, false]);
      // 260: `big` and `small` stalled first; of the two, the larger goes, and that is enough.
      sweepAt(4000, [
        [big, 100],
        [small, 80],
        [mover, 80],
        [idle, 0],
      ]);
      expect(big.socket.closed?.code).toBe(CloseCode.SLOW_CONSUMER);
      expect([small.overBudget, mover.overBudget, idle.overBudget]).toEqual([false, false, false]);
      expect([unsent.stalledSince(small), unsent.stalledSince(mover)]).toEqual([2000, 3000]);
      expect(budget.status()).toEqual({ used: 160, limit: SMALL, refused: 2 });
    });

    it('that made no progress go before a writer that just backed up, when its write takes the relay over the budget', () => {
      const [stuck, writer] = [session(), session()];
      sweepAt(1000, [
        [stuck, 90],
        [writer, 0],
      ]);
      sweepAt(2000, [
        [stuck, 90],
        [writer, 0],
      ]);
      clock = 2500;
      write(writer, 200);
      expect(stuck.socket.closed?.code).toBe(CloseCode.SLOW_CONSUMER);
      expect(writer.overBudget).toBe(false);
      expect(budget.used).toBe(200);
    });
  });

  describe('closed slow consumers in their grace', () => {
    it('the first gets its grace however much it keeps; the next, past half the budget, is cut', () => {
      const [big, next] = [session(), session()];
      big.socket.bufferedAmount = 2000;
      next.socket.bufferedAmount = 10;
      big.closeAsSlowConsumer('big');
      next.closeAsSlowConsumer('next');
      expect([big.socket.terminated, next.socket.terminated]).toEqual([false, true]);
    });

    it('keep what they did not read for the grace while all of them keep at most half the budget; past that one is cut at once', () => {
      const [a, b, c] = [session(), session(), session()];
      for (const [s, bytes] of [
        [a, 700],
        [b, 500],
        [c, 600],
      ] as const) {
        s.socket.bufferedAmount = bytes;
      }
      a.closeAsSlowConsumer('a');
      b.closeAsSlowConsumer('b');
      // 700 + 500 of the 1250 allowed (half of 2500) are kept; c's 600 more would pass it: cut now, no grace.
      c.closeAsSlowConsumer('c');
      expect([a.socket.terminated, b.socket.terminated, c.socket.terminated]).toEqual([false, false, true]);
      expect(c.socket.closed).toMatchObject({ code: CloseCode.SLOW_CONSUMER });
      // Once a's grace is over (it is gone), its bytes make room again.
      jest.advanceTimersByTime(5000);
      expect(a.socket.terminated).toBe(true);
      a.socket.emitClose();
      const d = session();
      d.socket.bufferedAmount = 600;
      d.closeAsSlowConsumer('d');
      expect(d.socket.terminated).toBe(false);
    });
  });
});
