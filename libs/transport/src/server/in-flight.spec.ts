import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { RelayError, RelayErrorCode } from '@wsrelay/protocol';
import { Subscription } from 'rxjs';
import type WebSocket from 'ws';
import { WsRelayContext, type WsRelayContextArgs } from '../ctx-host/ws-relay.context.js';
import { HandlerWork } from './handler-work.js';
import { InFlight } from './in-flight.js';

describe('InFlight: the signal of a request being handled', () => {
  beforeEach(() => {
    jest.useFakeTimers();
  });

  afterEach(() => {
    jest.useRealTimers();
  });

  it('costs no timer until its signal is asked for, and one until it settles', () => {
    const call = new InFlight('orders.get', 1000);
    expect(jest.getTimerCount()).toBe(0);
    const signal = call.signal;
    expect(call.signal).toBe(signal);
    expect(jest.getTimerCount()).toBe(1);
    call.settle();
    expect(jest.getTimerCount()).toBe(0);
  });

  it('aborts at the deadline with TIMEOUT naming the pattern and the timeout', () => {
    const call = new InFlight('orders.get', 1000);
    const signal = call.signal;
    jest.advanceTimersByTime(999);
    expect(signal.aborted).toBe(false);
    jest.advanceTimersByTime(1);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBeInstanceOf(RelayError);
    expect(signal.reason).toMatchObject({ code: RelayErrorCode.TIMEOUT, status: 504, message: expect.stringContaining('1000 ms') });
    expect(signal.reason).toMatchObject({ message: expect.stringContaining('"orders.get"') });
  });

  it('never aborts once settled, not even past its deadline or on a late cancel', () => {
    const call = new InFlight('orders.get', 1000);
    const signal = call.signal;
    call.settle();
    jest.advanceTimersByTime(5000);
    call.callerCancelled();
    call.connectionLost();
    expect(signal.aborted).toBe(false);
    // Asked for only after it settled: no timer, never aborted.
    const late = new InFlight('orders.get', 1000);
    late.settle();
    expect(late.signal.aborted).toBe(false);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('a CANCEL well before the deadline is the caller leaving (CLOSED); one near it, the deadline (TIMEOUT)', () => {
    const early = new InFlight('a', 1000);
    const earlySignal = early.signal;
    jest.advanceTimersByTime(400);
    early.callerCancelled();
    expect(earlySignal.reason).toMatchObject({ code: RelayErrorCode.CLOSED, status: 499 });
    expect(jest.getTimerCount()).toBe(0);

    // The relay timed the call from before it got here: its CANCEL may come a little early.
    const late = new InFlight('b', 1000);
    const lateSignal = late.signal;
    jest.advanceTimersByTime(990);
    late.callerCancelled();
    expect(lateSignal.reason).toMatchObject({ code: RelayErrorCode.TIMEOUT });
  });

  it('stopped before its signal was asked for: the signal comes already aborted, with the reason', () => {
    const call = new InFlight('a', 1000);
    call.callerCancelled();
    expect(call.cancelled).toBe(true);
    expect(call.signal.aborted).toBe(true);
    expect(call.signal.reason).toMatchObject({ code: RelayErrorCode.CLOSED });
    expect(jest.getTimerCount()).toBe(0);
  });

  it('aborts before it unsubscribes the stream (a teardown sees the signal aborted), and only once', () => {
    const call = new InFlight('a', 1000);
    const seen: boolean[] = [];
    const teardown = new Subscription(() => seen.push(call.signal.aborted));
    call.subscription = { unsubscribe: () => teardown.unsubscribe(), grant: () => undefined };
    call.connectionLost();
    call.callerCancelled();
    expect(seen).toEqual([true]);
    expect(call.signal.reason).toMatchObject({ code: RelayErrorCode.PROVIDER_DISCONNECTED, status: 502 });
  });
});

describe('HandlerWork: cancelling books', () => {
  const session = {} as WebSocket;
  const other = {} as WebSocket;

  it('CANCEL aborts that request only and takes it out of the books', () => {
    const work = new HandlerWork();
    const a = work.start(1, session, 'a', 30_000);
    const b = work.start(2, session, 'b', 30_000);
    work.cancel(1, session);
    expect(a.signal.reason).toMatchObject({ code: RelayErrorCode.CLOSED });
    expect(b.signal.aborted).toBe(false);
    work.settle(2, session);
    expect(work.idle).toBe(true);
  });

  it('a lost session aborts its requests with PROVIDER_DISCONNECTED, not those of another session', () => {
    const work = new HandlerWork();
    const lost = work.start(1, session, 'a', 30_000);
    const kept = work.start(1, other, 'a', 30_000);
    work.cancelAll(session);
    expect(lost.signal.reason).toMatchObject({ code: RelayErrorCode.PROVIDER_DISCONNECTED });
    expect(kept.signal.aborted).toBe(false);
    expect(work.idle).toBe(false);
    work.settle(1, other);
    expect(work.idle).toBe(true);
  });

  it('a request answered before its CANCEL arrived is not aborted by it', () => {
    const work = new HandlerWork();
    const call = work.start(7, session, 'a', 30_000);
    const signal = call.signal;
    work.settle(7, session);
    work.cancel(7, session);
    work.cancelAll();
    expect(signal.aborted).toBe(false);
    expect(call.cancelled).toBe(false);
  });
});

describe('WsRelayContext.signal', () => {
  const args: WsRelayContextArgs = ['a', 1, null, {}, undefined, null, undefined, 1];

  it("is its call's signal", () => {
    const call = new InFlight('a', 30_000);
    const ctx = new WsRelayContext(args, call);
    call.connectionLost();
    expect(ctx.signal).toBe(call.signal);
    expect(ctx.signal.aborted).toBe(true);
  });

  it('without a call (an event), is one signal that is not aborted', () => {
    const ctx = new WsRelayContext(args);
    expect(ctx.signal).toBe(ctx.signal);
    expect(ctx.signal.aborted).toBe(false);
  });
});
