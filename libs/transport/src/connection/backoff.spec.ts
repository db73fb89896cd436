import { backoffDelay } from './backoff.js';

describe('backoffDelay', () => {
  const o = { initialDelayMs: 100, maxDelayMs: 1000, multiplier: 2, jitter: 0.5 };

  it('grows exponentially up to the cap without jitter', () => {
    const noJitter = { ...o, jitter: 0 };
    expect([0, 1, 2, 3, 4, 10].map(a => backoffDelay(a, noJitter))).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  it('takes up to `jitter` of each delay off at random', () => {
    expect(backoffDelay(2, o, () => 0)).toBe(400);
    expect(backoffDelay(2, o, () => 1)).toBe(200);
    expect(backoffDelay(20, o, () => 0.5)).toBe(750);
  });
});
