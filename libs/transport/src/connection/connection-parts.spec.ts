import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { RelayError, RelayErrorCode } from '@wsrelay/protocol';
import type WebSocket from 'ws';
import { NodeHeartbeat } from './node-heartbeat.js';
import { OfflineQueue } from './offline-queue.js';
import { TokenCarrier, WSRELAY_PROTOCOL } from './token-carrier.js';
import { UrlStatus, type WsRelayUrlStatus } from './url-status.js';

describe('TokenCarrier', () => {
  it('puts the token where the relay reads it: header, query or subprotocol', () => {
    expect(new TokenCarrier('t', 'header').carry('ws://r/relay', 't')).toEqual({
      url: 'ws://r/relay',
      headers: { authorization: 'Bearer t' },
    });
    expect(new TokenCarrier('t', 'query').carry('ws://r/relay?x=1', 't')).toEqual({ url: 'ws://r/relay?x=1&token=t' });
    expect(new TokenCarrier('t', 'protocol').carry('ws://r/relay', 't')).toEqual({
      url: 'ws://r/relay',
      protocols: [WSRELAY_PROTOCOL, 'access_token.t'],
    });
    expect(new TokenCarrier(undefined, 'header').carry('ws://r/relay', undefined)).toEqual({ url: 'ws://r/relay' });
  });

  it('gives a fresh token for an in-band refresh, or says in the log why there is none', async () => {
    const said: string[] = [];
    const logger = { warn: (m: string) => said.push(`warn: ${m}`), error: (m: string) => said.push(`error: ${m}`) };
    expect(await new TokenCarrier(() => 'fresh', 'header').refreshed(0, logger)).toBe('fresh');
    expect(await new TokenCarrier('fixed', 'header').refreshed(Date.UTC(2030, 0, 1), logger)).toBeUndefined();
    const failing = new TokenCarrier(() => Promise.reject(new Error('issuer down')), 'header');
    expect(await failing.refreshed(0, logger)).toBeUndefined();
    expect(said).toEqual([
      "warn: The relay's token expires at 2030-01-01T00:00:00.000Z and the token option is a fixed string; the connection will be closed then.",
      'error: Token refresh failed: issuer down',
    ]);
  });

  it('asks a token function again for each attempt, and says whether it can refresh', async () => {
    let n = 0;
    const carrier = new TokenCarrier(() => `token-${++n}`, 'header');
    expect([await carrier.fetch(), await carrier.fetch()]).toEqual(['token-1', 'token-2']);
    expect(carrier.refreshable).toBe(true);
    expect(new TokenCarrier('fixed', 'header').refreshable).toBe(false);
  });
});

describe('OfflineQueue', () => {
  beforeEach(() => {
    jest.useFakeTimers();
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('lets waiters go when a session is up', async () => {
    const q = new OfflineQueue(2, 1000, () => undefined);
    const waiting = Promise.all([q.wait(), q.wait()]);
    expect(q.size).toBe(2);
    q.release();
    await waiting;
    expect(q.size).toBe(0);
  });

  it('refuses more than its bound at once, and times a waiter out naming the last error', async () => {
    const q = new OfflineQueue(1, 1000, () => new Error('connection refused'));
    const first = q.wait();
    await expect(q.wait()).rejects.toMatchObject({ code: RelayErrorCode.RELAY_UNAVAILABLE, message: /already waiting/ });
    jest.advanceTimersByTime(1000);
    await expect(first).rejects.toMatchObject({
      code: RelayErrorCode.RELAY_UNAVAILABLE,
      message: /none within 1000 ms \(last error: connection refused\)/,
    });
    expect(q.size).toBe(0);
  });

  it('fails every waiter with the reason no session will come', async () => {
    const q = new OfflineQueue(5, 1000, () => undefined);
    const waiting = [q.wait(), q.wait()];
    q.fail(new RelayError(RelayErrorCode.PROTOCOL_MISMATCH, 'no common version'));
    for (const w of waiting) await expect(w).rejects.toMatchObject({ code: RelayErrorCode.PROTOCOL_MISMATCH });
  });
});

describe('UrlStatus', () => {
  it('reports each change once, in URL order, and resets every URL', () => {
    const changes: Array<[string, WsRelayUrlStatus]> = [];
    const status = new UrlStatus(['ws://a', 'ws://b'], (url, s) => changes.push([url, s]));
    status.set('ws://a', 'connecting');
    status.set('ws://a', 'connecting');
    status.set('ws://a', 'connected');
    status.reset();
    expect(changes).toEqual([
      ['ws://a', 'connecting'],
      ['ws://a', 'connected'],
      ['ws://a', 'not_connected'],
    ]);
    expect([...status.entries()]).toEqual([
      ['ws://a', 'not_connected'],
      ['ws://b', 'not_connected'],
    ]);
  });
});

describe('NodeHeartbeat', () => {
  beforeEach(() => {
    jest.useFakeTimers();
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  function socket() {
    const s = { pings: 0, terminated: false, ping: () => void s.pings++, terminate: () => void (s.terminated = true) };
    return s;
  }

  it('sends nothing of its own while the relay keeps pinging it', () => {
    const s = socket();
    const heartbeat = new NodeHeartbeat();
    heartbeat.start(s as unknown as WebSocket, 100, () => undefined);
    // The relay pings a node it has not heard from for an interval: one ping every one and a half.
    for (let i = 0; i < 10; i++) {
      jest.advanceTimersByTime(150);
      heartbeat.heard();
    }
    expect([s.pings, s.terminated]).toEqual([0, false]);
    heartbeat.stop();
  });

  it('pings a relay silent for two intervals, and cuts it half an interval later', () => {
    const s = socket();
    const silent: number[] = [];
    const heartbeat = new NodeHeartbeat();
    heartbeat.start(s as unknown as WebSocket, 100, ms => silent.push(ms));
    jest.advanceTimersByTime(199);
    expect(s.pings).toBe(0);
    jest.advanceTimersByTime(1);
    expect([s.pings, s.terminated]).toEqual([1, false]);
    jest.advanceTimersByTime(50);
    expect([s.pings, s.terminated, silent]).toEqual([1, true, [250]]);
    heartbeat.stop();
  });

  it('starts counting again when the relay answers its ping', () => {
    const s = socket();
    const heartbeat = new NodeHeartbeat();
    heartbeat.start(s as unknown as WebSocket, 100, () => undefined);
    jest.advanceTimersByTime(200);
    heartbeat.heard();
    jest.advanceTimersByTime(250);
    expect([s.pings, s.terminated]).toEqual([2, false]);
    jest.advanceTimersByTime(50);
    expect([s.pings, s.terminated]).toEqual([2, true]);
    heartbeat.stop();
  });

  it('pings once an interval while the relay sends it messages, so that a relay it only reads from still hears it', () => {
    const s = socket();
    const heartbeat = new NodeHeartbeat();
    heartbeat.start(s as unknown as WebSocket, 100, () => undefined);
    for (let i = 0; i < 20; i++) {
      jest.advanceTimersByTime(25);
      heartbeat.heardMessage();
    }
    // 500 ms: a ping every 100.
    expect([s.pings, s.terminated]).toEqual([5, false]);
    // The relay's own pings alone (an idle connection) ask for none, past one for the last message.
    for (let i = 0; i < 10; i++) {
      jest.advanceTimersByTime(150);
      heartbeat.heard();
    }
    expect([s.pings, s.terminated]).toEqual([6, false]);
    heartbeat.stop();
  });

  it('stops', () => {
    const s = socket();
    const heartbeat = new NodeHeartbeat();
    heartbeat.start(s as unknown as WebSocket, 100, () => undefined);
    heartbeat.stop();
    jest.advanceTimersByTime(1000);
    expect(s.pings).toBe(0);
  });
});
