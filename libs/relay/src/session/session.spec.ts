import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { CloseCode, FrameType, RelayError, RelayErrorCode, RelayErrorMessages } from '@wsrelay/protocol';
import type WebSocket from 'ws';
import { codec, FakeSocket, fakeSession } from '../../spec-support/fakes.js';
import { OPEN_IDENTITY } from '../auth/relay-auth.service.js';
import { InFlightLimit } from './in-flight-limit.js';
import { Session } from './session.js';
import { TokenBucket } from './token-bucket.js';

const PING = codec.encode({ type: FrameType.Ping });
const PONG = codec.encode({ type: FrameType.Pong });
const BUDGET = { slowBytes: 100, budgetBytes: 1000 };

describe('Session', () => {
  beforeEach(() => {
    jest.useFakeTimers();
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('writes frames while the socket is open', () => {
    const session = fakeSession();
    session.send(PING);
    session.send(PONG);
    expect(session.socket.frames).toEqual([{ type: FrameType.Ping }, { type: FrameType.Pong }]);
    expect(session.isOpen).toBe(true);
  });

  it('writes nothing once the socket is closing or closed', () => {
    const session = fakeSession();
    session.socket.readyState = 2;
    expect(session.isOpen).toBe(false);
    session.send(PING);
    session.socket.readyState = 3;
    session.send(PING);
    expect(session.socket.sent).toHaveLength(0);
  });

  it('takes its tenant from its identity and has an id of its own', () => {
    const session = fakeSession({ ...OPEN_IDENTITY, tenant: 'acme' });
    expect(session.tenant).toBe('acme');
    expect(session.sessionId).not.toBe(fakeSession().sessionId);
  });

  it('is slow past slowBytes unsent', () => {
    const session = fakeSession(OPEN_IDENTITY, BUDGET);
    expect(session.slow).toBe(false);
    session.socket.bufferedAmount = 100;
    expect(session.slow).toBe(false);
    session.socket.bufferedAmount = 101;
    expect(session.slow).toBe(true);
  });

  it('stays open up to its byte budget and closes past it with SLOW_CONSUMER', () => {
    const session = fakeSession(OPEN_IDENTITY, BUDGET);
    session.socket.bufferedAmount = 1000;
    session.send(PING);
    expect(session.socket.closed).toBeUndefined();
    expect(session.overBudget).toBe(false);

    session.socket.bufferedAmount = 1001;
    session.send(PONG);
    // The frame that went over is written; the connection is closed after it.
    expect(session.socket.frames).toEqual([{ type: FrameType.Ping }, { type: FrameType.Pong }]);
    expect(session.overBudget).toBe(true);
    expect(session.socket.closed).toEqual({ code: CloseCode.SLOW_CONSUMER, reason: RelayErrorMessages.slowConsumer(1001, 1000) });
  });

  it('writes no more to a slow consumer, even before its socket reports closing', () => {
    const session = fakeSession(OPEN_IDENTITY, BUDGET);
    session.socket.bufferedAmount = 5000;
    session.send(PING);
    session.socket.readyState = 1;
    session.socket.bufferedAmount = 0;
    session.send(PONG);
    expect(session.socket.sent).toHaveLength(1);
  });

  it('cuts a slow consumer that does not read up to its close frame within 5 s', () => {
    const session = fakeSession(OPEN_IDENTITY, BUDGET);
    session.socket.bufferedAmount = 5000;
    session.send(PING);
    jest.advanceTimersByTime(4999);
    expect(session.socket.terminated).toBe(false);
    jest.advanceTimersByTime(1);
    expect(session.socket.terminated).toBe(true);
  });

  it('is never slow nor over budget without a budget', () => {
    const session = fakeSession();
    session.socket.bufferedAmount = Number.MAX_SAFE_INTEGER;
    session.send(PING);
    expect(session.slow).toBe(false);
    expect(session.socket.closed).toBeUndefined();
  });

  it('corks the TCP socket once per tick and uncorks it after', () => {
    const session = fakeSession();
    const raw = { cork: jest.fn(), uncork: jest.fn() };
    Object.assign(session.socket, { _socket: raw });
    session.send(PING);
    session.send(PONG);
    expect(raw.cork).toHaveBeenCalledTimes(1);
    expect(raw.uncork).not.toHaveBeenCalled();
    jest.runAllTicks();
    expect(raw.uncork).toHaveBeenCalledTimes(1);
    session.send(PING);
    expect(raw.cork).toHaveBeenCalledTimes(2);
    expect(session.socket.sent).toHaveLength(3);
  });
});

describe('TokenBucket', () => {
  const T0 = 1_000_000;

  beforeEach(() => {
    jest.useFakeTimers({ now: T0 });
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  function takes(bucket: TokenBucket, n: number, now: number): boolean[] {
    return Array.from({ length: n }, () => bucket.take(now));
  }

  it('lets a burst through at once, then refuses', () => {
    const bucket = new TokenBucket(10, 3);
    expect(takes(bucket, 4, T0)).toEqual([true, true, true, false]);
  });

  it('refills at the rate, fractions included', () => {
    const bucket = new TokenBucket(10, 3);
    takes(bucket, 3, T0);
    expect(bucket.take(T0 + 99)).toBe(false);
    expect(bucket.take(T0 + 100)).toBe(true);
    expect(bucket.take(T0 + 100)).toBe(false);
    // 50 ms and 50 ms make one token.
    expect(bucket.take(T0 + 150)).toBe(false);
    expect(bucket.take(T0 + 200)).toBe(true);
  });

  it('keeps no more than the burst however long it idled', () => {
    const bucket = new TokenBucket(10, 3);
    takes(bucket, 3, T0);
    expect(takes(bucket, 4, T0 + 3_600_000)).toEqual([true, true, true, false]);
  });

  it('uses the clock when no time is given', () => {
    const bucket = new TokenBucket(1, 1);
    expect(bucket.take()).toBe(true);
    expect(bucket.take()).toBe(false);
    jest.advanceTimersByTime(999);
    expect(bucket.take()).toBe(false);
    jest.advanceTimersByTime(1);
    expect(bucket.take()).toBe(true);
  });
});

describe('InFlightLimit', () => {
  it('sums what each unit counts for a key', () => {
    const limit = new InFlightLimit<string>(10)
      .counts(k => (k === 'a' ? 2 : 0))
      .counts(k => (k === 'a' ? 3 : 1))
      .counts(() => 0);
    expect(limit.of('a')).toBe(5);
    expect(limit.of('b')).toBe(1);
    expect(new InFlightLimit<string>(10).of('a')).toBe(0);
  });

  it('lets a key below the limit start more and refuses it at the limit with RATE_LIMITED', () => {
    let n = 0;
    const limit = new InFlightLimit<string>(3).counts(() => n);
    n = 2;
    expect(() => limit.check('a')).not.toThrow();
    for (n of [3, 4]) {
      let thrown: unknown;
      try {
        limit.check('a');
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(RelayError);
      expect(thrown).toMatchObject({ code: RelayErrorCode.RATE_LIMITED, message: RelayErrorMessages.tooManyInFlight(3) });
    }
  });

  it('counts across units: two halves reach the limit together', () => {
    const limit = new InFlightLimit<string>(4).counts(() => 2).counts(() => 2);
    expect(() => limit.check('a')).toThrow(RelayErrorMessages.tooManyInFlight(4));
  });
});

describe('Session writing to the TCP socket under its WebSocket', () => {
  /** A WebSocket with no extension negotiated, whose TCP socket records each writev (what is written between uncorks). */
  function directSession() {
    const flushed: Uint8Array[][] = [];
    let held: Uint8Array[] = [];
    let corks = 0;
    const raw = {
      write: (bytes: Uint8Array) => {
        held.push(bytes);
        if (corks === 0) raw.uncork();
        return true;
      },
      cork: () => void corks++,
      uncork: () => {
        corks = Math.max(0, corks - 1);
        if (corks > 0 || held.length === 0) return;
        flushed.push(held);
        held = [];
      },
    };
    const socket = Object.assign(new FakeSocket(), { extensions: '', _socket: raw });
    const session = new Session(socket as unknown as WebSocket, OPEN_IDENTITY);
    return { session, socket, writes: () => flushed };
  }

  it('writes each frame as it was encoded, WebSocket header and all, and nothing through ws', async () => {
    const { session, socket, writes } = directSession();
    session.send(PING);
    session.send(PONG);
    await new Promise(resolve => process.nextTick(resolve));
    expect(writes()).toEqual([[PING, PONG]]);
    expect(socket.sent).toEqual([]);
  });

  it('a message in pieces (a large payload left where it was) is written piece by piece, counted once', async () => {
    const { session, writes } = directSession();
    const pieces = codec.encodeMessage({ type: FrameType.Response, id: 1, flags: 1, payload: new Uint8Array(4096) }) as Uint8Array[];
    expect(pieces).toHaveLength(2);
    session.send(pieces);
    session.send(PING);
    await new Promise(resolve => process.nextTick(resolve));
    expect(writes()).toEqual([[...pieces, PING]]);
    expect(session.written).toBe(pieces[0].length + 4096 + PING.length);
  });

  it('through ws (an extension negotiated), a message in pieces goes as one frame', () => {
    const session = fakeSession();
    const pieces = codec.encodeMessage({ type: FrameType.Response, id: 1, flags: 1, payload: new Uint8Array(4096) });
    session.send(pieces);
    expect(session.socket.frames).toEqual([{ type: FrameType.Response, id: 1, flags: 1, payload: new Uint8Array(4096) }]);
  });

  it('a tick that writes many frames sends them 16 at a time, in order; the rest at the end of the tick', async () => {
    const { session, writes } = directSession();
    const frames = Array.from({ length: 40 }, (_, id) => codec.encode({ type: FrameType.Cancel, id: id + 1 }));
    for (const f of frames) session.send(f);
    expect(writes().map(w => w.length)).toEqual([16, 16]);
    await new Promise(resolve => process.nextTick(resolve));
    expect(writes().map(w => w.length)).toEqual([16, 16, 8]);
    expect(writes().flat()).toEqual(frames);
    // The next tick starts a new count.
    for (const f of frames.slice(0, 3)) session.send(f);
    await new Promise(resolve => process.nextTick(resolve));
    expect(writes().map(w => w.length)).toEqual([16, 16, 8, 3]);
  });
});

describe('Session pinging', () => {
  it('writes a PING a real client answers, straight to the TCP socket', async () => {
    const { WebSocket: Client, WebSocketServer } = await import('ws');
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
    await new Promise(resolve => server.once('listening', resolve));
    const accepted = new Promise<WebSocket>(resolve => server.once('connection', resolve));
    const client = new Client(`ws://127.0.0.1:${(server.address() as { port: number }).port}`);
    const relaySide = await accepted;
    const session = new Session(relaySide, OPEN_IDENTITY);
    const send = jest.spyOn(relaySide, 'ping');
    const pinged = new Promise(resolve => client.once('ping', resolve));
    const ponged = new Promise(resolve => relaySide.once('pong', resolve));
    session.ping();
    await Promise.all([pinged, ponged]);
    expect(send).not.toHaveBeenCalled();
    client.close();
    await new Promise(resolve => relaySide.once('close', resolve));
    // Closed: nothing more is written.
    session.ping();
    expect(send).not.toHaveBeenCalled();
    await new Promise(resolve => server.close(resolve));
  });

  it('goes through ws when an extension is negotiated', () => {
    const session = fakeSession();
    session.ping();
    expect(session.socket.pings).toBe(1);
  });
});
