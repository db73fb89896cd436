import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { backoffDelay } from './backoff.js';
import { Heartbeat } from './heartbeat.js';
import { StateMachine } from './state.js';

describe('Heartbeat', () => {
  beforeEach(() => {
    jest.useFakeTimers();
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('pings after two silent intervals and takes the relay for dead half an interval later', () => {
    const hb = new Heartbeat();
    const ping = jest.fn<() => void>();
    const dead = jest.fn<(ms: number) => void>();
    hb.start(1000, ping, dead);
    jest.advanceTimersByTime(1999);
    expect(ping).not.toHaveBeenCalled();
    jest.advanceTimersByTime(1);
    expect(ping).toHaveBeenCalledTimes(1);
    jest.advanceTimersByTime(500);
    expect(dead).toHaveBeenCalledWith(2500);
    jest.advanceTimersByTime(10_000);
    expect([ping.mock.calls.length, dead.mock.calls.length]).toEqual([1, 1]);
  });

  it('pings once an interval while messages come, and not for PONGs alone', () => {
    const hb = new Heartbeat();
    const ping = jest.fn<() => void>();
    const dead = jest.fn<(ms: number) => void>();
    hb.start(1000, ping, dead);
    for (let t = 0; t < 4; t++) {
      hb.heard(false);
      jest.advanceTimersByTime(500);
    }
    expect(ping).toHaveBeenCalledTimes(2);
    // Only PONGs from now on: alive, and no ping until two intervals pass without any message.
    for (let t = 0; t < 10; t++) {
      hb.heard(true);
      jest.advanceTimersByTime(500);
    }
    expect(ping).toHaveBeenCalledTimes(2);
    expect(dead).not.toHaveBeenCalled();
    hb.stop();
  });
});

describe('backoffDelay', () => {
  const o = { initialDelayMs: 100, maxDelayMs: 1000, multiplier: 2, jitter: 0.5 };

  it('grows exponentially up to the cap, with up to `jitter` of each delay taken off at random', () => {
    expect([0, 1, 2, 3, 4, 10].map(a => backoffDelay(a, { ...o, jitter: 0 }))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect([backoffDelay(2, o, () => 0), backoffDelay(2, o, () => 1)]).toEqual([400, 200]);
  });
});

describe('StateMachine', () => {
  it('moves only along its transitions', () => {
    const m = new StateMachine();
    expect(m.fire('welcomed')).toBe(false);
    expect(['start', 'welcomed', 'lost', 'lost', 'welcomed', 'stopped'].map(i => (m.fire(i as never), m.state))).toEqual([
      'connecting',
      'connected',
      'reconnecting',
      'reconnecting',
      'connected',
      'idle',
    ]);
    expect([m.fire('close'), m.state, m.fire('lost'), m.state]).toEqual([true, 'closed', false, 'closed']);
  });
});
