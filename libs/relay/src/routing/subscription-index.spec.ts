import type { Routable } from './routable.js';
import { SubscriptionIndex } from './subscription-index.js';

/** A routable node with subscriptions, as the index needs it (no session, no socket). */
function node(events: string[], queue: string | null = null, slow = false): Routable {
  return { nodeId: Math.random().toString(36), service: null, patterns: [], serves: new Set(), events, queue, isOpen: true, slow };
}

describe('SubscriptionIndex', () => {
  it('gives each plain subscriber one copy however many of its patterns match', () => {
    const index = new SubscriptionIndex();
    const a = node(['x.*', 'x.>', 'x.y']);
    index.add(a);
    expect(index.recipients('x.y')).toEqual([a]);
  });

  it('rotates within a queue group and forgets removed members', () => {
    const index = new SubscriptionIndex();
    const [q1, q2] = [node(['jobs'], 'g'), node(['jobs'], 'g')];
    const plain = node(['jobs']);
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

  it('passes over a backed-up queue member while another can take the event', () => {
    const index = new SubscriptionIndex();
    const [busy, free] = [node(['jobs'], 'g', true), node(['jobs'], 'g')];
    [busy, free].forEach(s => index.add(s));
    expect([1, 2, 3].map(() => index.recipients('jobs'))).toEqual([[free], [free], [free]]);
  });

  it('matches wildcards once per subject and forgets a group whose last member left', () => {
    const index = new SubscriptionIndex();
    const a = node(['orders.*'], 'g');
    index.add(a);
    expect(index.recipients('orders.created')).toEqual([a]);
    expect(index.recipients('orders.x.y')).toEqual([]);
    expect(index.counts).toEqual({ subscriptions: 1, queueGroups: 1 });
    index.remove(a);
    expect(index.counts).toEqual({ subscriptions: 0, queueGroups: 0 });
    expect(index.recipients('orders.created')).toEqual([]);
  });
});
