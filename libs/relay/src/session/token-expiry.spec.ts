import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { CloseCode, FrameType, RelayErrorMessages } from '@wsrelay/protocol';
import { codec, fakeSession } from '../../spec-support/fakes.js';
import { OPEN_IDENTITY } from '../auth/relay-auth.service.js';
import { MAX_TIMER_MS } from '../internal/timers.js';
import { TokenExpiry } from './token-expiry.js';

const T0 = 1_700_000_000_000;
const WARNING_MS = 10_000;
const EXPIRED = { code: CloseCode.UNAUTHORIZED, reason: RelayErrorMessages.tokenExpired() };

function expiringAt(expiresAt: number | null) {
  return fakeSession({ ...OPEN_IDENTITY, expiresAt });
}

describe('TokenExpiry', () => {
  let expiry: TokenExpiry;

  beforeEach(() => {
    jest.useFakeTimers({ now: T0 });
    expiry = new TokenExpiry(codec, WARNING_MS);
  });

  afterEach(() => {
    jest.useRealTimers();
  });

  it('warns warningMs before the expiry, then closes with 4401 at it', () => {
    const expiresAt = T0 + 60_000;
    const session = expiringAt(expiresAt);
    expiry.schedule(session, true);
    expect(expiry.size).toBe(1);
    jest.advanceTimersByTime(60_000 - WARNING_MS - 1);
    expect(session.socket.sent).toHaveLength(0);
    jest.advanceTimersByTime(1);
    expect(session.socket.take()).toEqual([{ type: FrameType.TokenExpiring, expiresAt }]);
    expect(session.socket.closed).toBeUndefined();
    expect(expiry.size).toBe(1);
    jest.advanceTimersByTime(WARNING_MS - 1);
    expect(session.socket.closed).toBeUndefined();
    jest.advanceTimersByTime(1);
    expect(session.socket.closed).toEqual(EXPIRED);
    expect(session.socket.sent).toHaveLength(0);
    expect(expiry.size).toBe(0);
  });

  it('without a warning only closes, at the expiry', () => {
    const session = expiringAt(T0 + 60_000);
    expiry.schedule(session, false);
    jest.advanceTimersByTime(59_999);
    expect(session.socket.closed).toBeUndefined();
    jest.advanceTimersByTime(1);
    expect(session.socket.closed).toEqual(EXPIRED);
    expect(session.socket.sent).toHaveLength(0);
    expect(expiry.size).toBe(0);
  });

  it('warns at once when the expiry is nearer than warningMs', () => {
    const expiresAt = T0 + 3000;
    const session = expiringAt(expiresAt);
    expiry.schedule(session, true);
    expect(session.socket.take()).toEqual([{ type: FrameType.TokenExpiring, expiresAt }]);
    jest.advanceTimersByTime(2999);
    expect(session.socket.closed).toBeUndefined();
    jest.advanceTimersByTime(1);
    expect(session.socket.closed).toEqual(EXPIRED);
  });

  it.each([true, false])('closes a token already expired on the next turn (warn: %s)', warn => {
    const session = expiringAt(T0 - 1);
    expiry.schedule(session, warn);
    expect(session.socket.closed).toBeUndefined();
    jest.advanceTimersByTime(0);
    expect(session.socket.closed).toEqual(EXPIRED);
  });

  it('schedules nothing for a token that does not expire', () => {
    const session = expiringAt(null);
    expiry.schedule(session, true);
    expect(expiry.size).toBe(0);
    jest.advanceTimersByTime(MAX_TIMER_MS);
    expect(session.socket.sent).toHaveLength(0);
    expect(session.socket.closed).toBeUndefined();
  });

  it('clears before the warning: nothing follows', () => {
    const session = expiringAt(T0 + 60_000);
    expiry.schedule(session, true);
    expiry.clear(session);
    expect(expiry.size).toBe(0);
    jest.advanceTimersByTime(120_000);
    expect(session.socket.sent).toHaveLength(0);
    expect(session.socket.closed).toBeUndefined();
  });

  it('clears after the warning: the close does not follow', () => {
    const session = expiringAt(T0 + 60_000);
    expiry.schedule(session, true);
    jest.advanceTimersByTime(55_000);
    expect(session.socket.take()).toHaveLength(1);
    expiry.clear(session);
    jest.advanceTimersByTime(60_000);
    expect(session.socket.closed).toBeUndefined();
  });

  it('schedules anew for a refreshed token, forgetting the old times', () => {
    const session = expiringAt(T0 + 60_000);
    expiry.schedule(session, true);
    jest.advanceTimersByTime(55_000);
    session.socket.take();
    const expiresAt = T0 + 120_000;
    session.identity = { ...session.identity, expiresAt };
    expiry.schedule(session, true);
    expect(expiry.size).toBe(1);
    jest.advanceTimersByTime(5000);
    expect(session.socket.closed).toBeUndefined();
    expect(session.socket.sent).toHaveLength(0);
    jest.advanceTimersByTime(120_000 - WARNING_MS - 60_000);
    expect(session.socket.take()).toEqual([{ type: FrameType.TokenExpiring, expiresAt }]);
    jest.advanceTimersByTime(WARNING_MS);
    expect(session.socket.closed).toEqual(EXPIRED);
  });

  it('keeps sessions apart', () => {
    const [early, late] = [expiringAt(T0 + 1000), expiringAt(T0 + 2000)];
    expiry.schedule(early, false);
    expiry.schedule(late, false);
    expect(expiry.size).toBe(2);
    jest.advanceTimersByTime(1000);
    expect(early.socket.closed).toEqual(EXPIRED);
    expect(late.socket.closed).toBeUndefined();
    expect(expiry.size).toBe(1);
  });

  it('closes a token valid past the longest timer at its expiry, not before, and can still clear it', () => {
    const expiresAt = T0 + MAX_TIMER_MS * 2 + 5000;
    const session = expiringAt(expiresAt);
    expiry.schedule(session, false);
    jest.advanceTimersByTime(MAX_TIMER_MS * 2 + 4999);
    expect(session.socket.closed).toBeUndefined();
    jest.advanceTimersByTime(1);
    expect(session.socket.closed).toEqual(EXPIRED);

    const other = expiringAt(expiresAt + MAX_TIMER_MS * 2);
    expiry.schedule(other, true);
    jest.advanceTimersByTime(MAX_TIMER_MS + 1);
    expiry.clear(other);
    jest.advanceTimersByTime(MAX_TIMER_MS * 4);
    expect(other.socket.sent).toHaveLength(0);
    expect(other.socket.closed).toBeUndefined();
  });
});
