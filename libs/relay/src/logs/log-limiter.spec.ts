import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { LogLimiter } from './log-limiter.js';

describe('LogLimiter', () => {
  let now = 0;
  let reports: Array<[number, number]>;
  let limiter: LogLimiter;

  beforeEach(() => {
    jest.useFakeTimers();
    now = 1_000_000;
    reports = [];
    limiter = new LogLimiter(
      2,
      3,
      (kind, n) => reports.push([kind, n]),
      () => now,
    );
  });

  afterEach(() => {
    jest.useRealTimers();
  });

  it('lets `perWindow` lines of a kind through per second, counts the rest, and reports them once the second is over', () => {
    const allowed = Array.from({ length: 10 }, () => limiter.allow(0));
    expect(allowed.filter(Boolean)).toHaveLength(3);
    expect(reports).toEqual([]);
    now += 1000;
    jest.advanceTimersByTime(1000);
    expect(reports).toEqual([[0, 7]]);
    // A new second.
    expect(limiter.allow(0)).toBe(true);
  });

  it('limits each kind on its own', () => {
    for (let i = 0; i < 5; i++) limiter.allow(0);
    expect(limiter.allow(1)).toBe(true);
  });

  it('a new second that starts before the report ran reports the last one first', () => {
    for (let i = 0; i < 5; i++) limiter.allow(0);
    now += 1500;
    expect(limiter.allow(0)).toBe(true);
    expect(reports).toEqual([[0, 2]]);
    jest.advanceTimersByTime(2000);
    expect(reports).toEqual([[0, 2]]);
  });

  it('flushAll reports what was left out at once', () => {
    for (let i = 0; i < 4; i++) limiter.allow(1);
    limiter.flushAll();
    expect(reports).toEqual([[1, 1]]);
    expect(jest.getTimerCount()).toBe(0);
  });
});
