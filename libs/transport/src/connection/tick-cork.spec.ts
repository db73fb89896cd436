import { describe, expect, it } from '@jest/globals';
import type WebSocket from 'ws';
import { corkForTick } from './tick-cork.js';

/** A WebSocket whose TCP socket records each writev (what is written between uncorks). */
function socketRecordingWrites() {
  const flushed: number[][] = [];
  let held: number[] = [];
  let corks = 0;
  const raw = {
    cork: () => void corks++,
    uncork: () => {
      corks = Math.max(0, corks - 1);
      if (corks > 0 || held.length === 0) return;
      flushed.push(held);
      held = [];
    },
  };
  const socket = { _socket: raw } as unknown as WebSocket;
  const send = (n: number) => {
    corkForTick(socket);
    held.push(n);
    if (corks === 0) raw.uncork();
  };
  return { send, flushed };
}

const nextTick = () => new Promise(resolve => process.nextTick(resolve));

describe('corkForTick', () => {
  it('holds the frames of one tick for one writev', async () => {
    const { send, flushed } = socketRecordingWrites();
    for (let i = 0; i < 5; i++) send(i);
    expect(flushed).toEqual([]);
    await nextTick();
    expect(flushed).toEqual([[0, 1, 2, 3, 4]]);
  });

  it('a tick that sends many lets them go 16 at a time, in order, and starts counting again the next tick', async () => {
    const { send, flushed } = socketRecordingWrites();
    for (let i = 0; i < 35; i++) send(i);
    expect(flushed.map(w => w.length)).toEqual([16, 16]);
    await nextTick();
    expect(flushed.map(w => w.length)).toEqual([16, 16, 3]);
    expect(flushed.flat()).toEqual(Array.from({ length: 35 }, (_, i) => i));
    for (let i = 0; i < 17; i++) send(i);
    expect(flushed.map(w => w.length)).toEqual([16, 16, 3, 16]);
    await nextTick();
    expect(flushed.map(w => w.length)).toEqual([16, 16, 3, 16, 1]);
  });
});
