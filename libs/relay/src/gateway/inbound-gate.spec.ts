import { jest } from '@jest/globals';
import { EventEmitter } from 'node:events';
import type WebSocket from 'ws';
import { TokenBucket } from '../session/token-bucket.js';
import { InboundGate } from './inbound-gate.js';

/** The part of a ws socket the gate uses: pause, resume, its state and its close event. */
class FakeSocket extends EventEmitter {
  readyState = 1;
  paused = false;
  pauses = 0;
  pause(): void {
    this.paused = true;
    this.pauses++;
  }
  resume(): void {
    this.paused = false;
  }
}

describe('InboundGate', () => {
  beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => jest.useRealTimers());

  /** Frames named `answer…` are exempt, as a server's answers are. */
  function gate(perSecond: number, burst: number, limits = { maxHeldBytes: 1e9, maxHeldFrames: 1e9 }) {
    const socket = new FakeSocket();
    const handled: string[] = [];
    const overflows: Array<[number, number]> = [];
    const g = new InboundGate(
      socket as unknown as WebSocket,
      new TokenBucket(perSecond, burst),
      data => handled.push(data.toString()),
      { ...limits, exempt: data => data.toString().startsWith('answer') },
      (frames, bytes) => overflows.push([frames, bytes]),
    );
    const send = (...names: string[]) => names.forEach(n => g.receive(Buffer.from(n), true));
    return { socket, handled, overflows, g, send };
  }

  it('hands frames on at once while the bucket has tokens, without pausing', () => {
    const { socket, handled, send } = gate(10, 3);
    send('a', 'b', 'c');
    expect(handled).toEqual(['a', 'b', 'c']);
    expect(socket.pauses).toBe(0);
  });

  it('over the rate, pauses the socket and holds frames undecoded; releases them in order as tokens come back, then resumes', () => {
    const { socket, handled, g, send } = gate(10, 2);
    send('a', 'b', 'c', 'd', 'e');
    expect(handled).toEqual(['a', 'b']);
    expect(socket.paused).toBe(true);
    expect(g.paused).toBe(true);
    jest.advanceTimersByTime(100); // one token
    expect(handled).toEqual(['a', 'b', 'c']);
    expect(socket.paused).toBe(true);
    jest.advanceTimersByTime(200); // two more: the last held frames go, and reading resumes
    expect(handled).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(socket.paused).toBe(false);
    expect(g.paused).toBe(false);
  });

  it('frames that arrive while paused (the rest of a socket read) queue behind the held ones', () => {
    const { handled, send } = gate(10, 1);
    send('a', 'b');
    send('c');
    jest.advanceTimersByTime(200);
    expect(handled).toEqual(['a', 'b', 'c']);
  });

  it('gives up past maxHeldFrames or maxHeldBytes, reporting what it held, and hands nothing more on', () => {
    const byFrames = gate(10, 1, { maxHeldBytes: 1e9, maxHeldFrames: 3 });
    byFrames.send('a', 'b', 'c', 'd', 'e');
    expect(byFrames.overflows).toEqual([[4, 4]]);
    jest.advanceTimersByTime(10_000);
    expect(byFrames.handled).toEqual(['a']);

    // The rest of that socket read still arrives: it is not handed on.
    byFrames.send('f', 'g');
    jest.advanceTimersByTime(10_000);
    expect(byFrames.handled).toEqual(['a']);

    const byBytes = gate(10, 1, { maxHeldBytes: 10, maxHeldFrames: 1e9 });
    byBytes.send('a', 'bbbbbb', 'cccccc');
    expect(byBytes.overflows).toEqual([[2, 12]]);
  });

  it('a socket closed while paused (by the relay, for another reason) gets nothing more handed on and reads again to finish closing', () => {
    const { socket, handled, send } = gate(10, 1);
    send('a', 'b', 'c');
    expect(socket.paused).toBe(true);
    socket.readyState = 2; // CLOSING
    jest.advanceTimersByTime(100);
    expect(handled).toEqual(['a']);
    expect(socket.paused).toBe(false);
    send('d');
    jest.advanceTimersByTime(1000);
    expect(handled).toEqual(['a']);
  });

  it("exempt frames (a server connection's answers) take no token, and keep their place behind held frames", () => {
    const { socket, handled, send } = gate(10, 1);
    send('a', 'answer1', 'answer2');
    expect(handled).toEqual(['a', 'answer1', 'answer2']);
    expect(socket.pauses).toBe(0);
    send('b', 'answer3', 'c');
    expect(handled).toEqual(['a', 'answer1', 'answer2']);
    jest.advanceTimersByTime(100); // one token: b, then the answer behind it, then c waits for the next
    expect(handled).toEqual(['a', 'answer1', 'answer2', 'b', 'answer3']);
    jest.advanceTimersByTime(100);
    expect(handled).toEqual(['a', 'answer1', 'answer2', 'b', 'answer3', 'c']);
  });

  it('stops when the socket closes: held frames are dropped and no timer fires into a closed connection', () => {
    const { socket, handled, send } = gate(10, 1);
    send('a', 'b', 'c');
    socket.readyState = 3;
    socket.emit('close');
    jest.advanceTimersByTime(10_000);
    expect(handled).toEqual(['a']);
    expect(jest.getTimerCount()).toBe(0);
  });
});
