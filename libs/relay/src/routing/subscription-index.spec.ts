import type WebSocket from 'ws';
import { OPEN_IDENTITY } from '../auth/relay-auth.service.js';
import { Session } from '../session.js';
import { World } from './world.js';
import { SubscriptionIndex } from './subscription-index.js';

function session(events: string[], queue: string | null = null): Session {
  const s = new Session({} as WebSocket, OPEN_IDENTITY, new World(''));
  s.nodeId = Math.random().toString(36);
  s.events = events;
  s.queue = queue;
  return s;
}

describe('SubscriptionIndex', () => {
  it('gives each plain subscriber one copy however many of its patterns match', () => {
    const index = new SubscriptionIndex();
    const a = session(['x.*', 'x.>', 'x.y']);
    index.add(a);
    expect(index.recipients('x.y')).toEqual([a]);
  });

  it('rotates within a queue group and forgets removed members', () => {
    const index = new SubscriptionIndex();
    const [q1, q2] = [session(['jobs'], 'g'), session(['jobs'], 'g')];
    const plain = session(['jobs']);
    [q1, q2, plain].forEach(s => index.add(s));
    const picks = [1, 2, 3, 4].map(() => index.recipients('jobs'));
    expect(picks.map(p => p.length)).toEqual([2, 2, 2, 2]);
    expect(picks.every(p => p.includes(plain))).toBe(true);
    expect(picks.map(p => p.find(s => s !== plain))).toEqual([q1, q2, q1, q2]);
    index.remove(q1);
    expect(index.recipients('jobs')).toEqual([plain, q2]);
    expect(index.subscribes(q2, 'jobs')).toBe(true);
    expect(index.subscribes(q1, 'jobs')).toBe(false);
  });
});
