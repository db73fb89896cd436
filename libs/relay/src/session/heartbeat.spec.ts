import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { fakeSession } from '../../spec-support/fakes.js';
import { BEAT_SLICES } from './beat-slices.js';
import { Heartbeat } from './heartbeat.js';
import { SessionRegistry } from './session-registry.js';

// A beat (half of it) divides into whole milliseconds per slice.
const INTERVAL_MS = 1600;

describe('Heartbeat', () => {
  let sessions: SessionRegistry;
  let heartbeat: Heartbeat;
  let warn: jest.SpiedFunction<Logger['warn']>;

  beforeEach(() => {
    jest.useFakeTimers();
    warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    sessions = new SessionRegistry();
    heartbeat = new Heartbeat(sessions, INTERVAL_MS);
  });

  afterEach(() => {
    heartbeat.stop();
    jest.restoreAllMocks();
    jest.useRealTimers();
  });

  function connected() {
    const session = fakeSession();
    sessions.add(session);
    return session;
  }

  /** `n` beats; what the socket saw after each: pings so far, and whether it was cut. */
  function beats(n: number, session: ReturnType<typeof connected>): Array<[number, boolean]> {
    return Array.from({ length: n }, () => {
      heartbeat.beat();
      return [session.socket.pings, session.socket.terminated];
    });
  }

  it('resets a session heard since the last beat', () => {
    const session = connected();
    // A new connection counts as heard.
    expect(beats(1, session)).toEqual([[0, false]]);
    expect(session.heard).toBe(false);
    expect(session.silentBeats).toBe(0);
  });

  it('pings a session silent for two beats and cuts it after three', () => {
    const session = connected();
    heartbeat.beat();
    expect(beats(3, session)).toEqual([
      [0, false],
      [1, false],
      [1, true],
    ]);
    expect(session.silentBeats).toBe(3);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0][0]).toContain(session.sessionId);
  });

  it('starts counting again once it hears the session', () => {
    const session = connected();
    heartbeat.beat();
    beats(2, session);
    expect(session.socket.pings).toBe(1);
    heartbeat.heard(session.socket);
    heartbeat.beat();
    expect(session.silentBeats).toBe(0);
    expect(beats(3, session)).toEqual([
      [1, false],
      [2, false],
      [2, true],
    ]);
  });

  it('hears a session through any frame the adapter reports', () => {
    const session = connected();
    heartbeat.beat();
    heartbeat.beat();
    session.heard = true;
    heartbeat.beat();
    expect(session.silentBeats).toBe(0);
    expect(session.socket.pings).toBe(0);
  });

  it('does not ping a socket that is closing, but still cuts it', () => {
    const session = connected();
    heartbeat.beat();
    session.socket.readyState = 2;
    expect(beats(3, session)).toEqual([
      [0, false],
      [0, false],
      [0, true],
    ]);
  });

  it('keeps each session on its own count', () => {
    const [quiet, chatty] = [connected(), connected()];
    heartbeat.beat();
    for (let i = 0; i < 3; i++) {
      heartbeat.heard(chatty.socket);
      heartbeat.beat();
    }
    expect(quiet.socket.terminated).toBe(true);
    expect(chatty.socket.terminated).toBe(false);
    expect(chatty.socket.pings).toBe(0);
  });

  it('ignores a ping or pong from a socket it does not know', () => {
    const stranger = fakeSession();
    expect(() => heartbeat.heard(stranger.socket)).not.toThrow();
    expect(stranger.heard).toBe(true);
  });

  it('names a connection in its log as told', () => {
    heartbeat = new Heartbeat(sessions, INTERVAL_MS, () => 'node-7');
    connected();
    for (let i = 0; i < 4; i++) heartbeat.beat();
    expect(warn).toHaveBeenCalledWith('Node node-7 missed its heartbeat; disconnecting it.');
  });

  it('beats every half interval once started, with what else runs each beat, until stopped', () => {
    const session = connected();
    const also = jest.fn<(now: number) => void>();
    heartbeat.start(also);
    // Started twice: still one beat per half interval.
    heartbeat.start(also);
    jest.advanceTimersByTime(INTERVAL_MS / 2 - 1);
    expect(also).not.toHaveBeenCalled();
    jest.advanceTimersByTime(1);
    expect(also).toHaveBeenCalledTimes(1);
    expect(also).toHaveBeenLastCalledWith(Date.now());
    jest.advanceTimersByTime(INTERVAL_MS);
    expect(also).toHaveBeenCalledTimes(3);
    expect(session.socket.pings).toBe(1);
    heartbeat.stop();
    jest.advanceTimersByTime(INTERVAL_MS * 10);
    expect(also).toHaveBeenCalledTimes(3);
    expect(session.socket.terminated).toBe(false);
  });

  it('spreads each beat over its slices, each connection in one', () => {
    const all = Array.from({ length: BEAT_SLICES * 2 }, connected);
    // Heard when they connected: the first beat only resets them.
    heartbeat.beat();
    heartbeat.start();
    const tick = INTERVAL_MS / 2 / BEAT_SLICES;
    jest.advanceTimersByTime(tick);
    const looked = all.filter(s => s.silentBeats === 1);
    expect(looked).toHaveLength(2);
    expect(looked.every(s => s.beatSlice === looked[0].beatSlice)).toBe(true);
    expect(new Set(all.map(s => s.beatSlice)).size).toBe(BEAT_SLICES);
    jest.advanceTimersByTime(INTERVAL_MS / 2 - tick);
    expect(all.every(s => s.silentBeats === 1)).toBe(true);
    // Pinged after a whole interval of silence, a slice at a time.
    jest.advanceTimersByTime(tick);
    expect(all.filter(s => s.socket.pings === 1)).toEqual(looked);
    jest.advanceTimersByTime(INTERVAL_MS / 2 - tick);
    expect(all.every(s => s.socket.pings === 1)).toBe(true);
  });
});
