import { Budget } from '../internal/budget.js';
import type { Routable } from './routable.js';
import { type EventRoute, ROUTE_NODE_BYTES, ROUTE_OVERHEAD_BYTES, routeCost, SubscriptionIndex } from './subscription-index.js';
import { RouteCache } from './route-cache.js';

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
  // 1,500 queue members on `x.>` and 10,000 distinct subjects grew the route cache by ~600 MiB: each route copied the group.
  it('routes to a group share its member list: a wide group costs a route no more than a single node does, and the cache stays in budget', () => {
    const budget = new Budget(100 * (ROUTE_OVERHEAD_BYTES + 64));
    const routes = new RouteCache<EventRoute<Routable>>(budget);
    const [wide, other] = [new SubscriptionIndex(routes), new SubscriptionIndex(routes)];
    const members = Array.from({ length: 1500 }, () => node(['x.>'], 'workers'));
    members.forEach(m => wide.add(m));
    const single = node(['y.*']);
    other.add(single);
    expect(other.recipients('y.1')).toEqual([single]);
    let most = 0;
    const got = new Map<Routable, number>();
    for (let i = 0; i < 3000; i++) {
      const [pick] = wide.recipients(`x.subject.${i}`);
      got.set(pick, (got.get(pick) ?? 0) + 1);
      most = Math.max(most, budget.used);
    }
    expect(most).toBeLessThanOrEqual(budget.limit);
    // About a hundred routes at a time, each the size of a one-node route.
    expect(routes.size).toBeGreaterThan(90);
    expect(routes.size).toBeLessThanOrEqual(Math.floor(budget.limit / ROUTE_OVERHEAD_BYTES));
    const route = (routes as unknown as { queue: Array<{ key: string; cost: number }> }).queue.at(-1);
    expect(route?.cost).toBeLessThan(ROUTE_OVERHEAD_BYTES + 64);
    // Round-robin over every member all along, evictions or not.
    expect(got.size).toBe(1500);
    expect(new Set(got.values())).toEqual(new Set([2]));
    expect(other.recipients('y.1')).toEqual([single]);
  });

  it('a node whose subscriptions overlap gets one copy; overlapping lists are merged for the route (and cost it)', () => {
    const index = new SubscriptionIndex();
    const both = node(['x.>', 'x.*']);
    const other = node(['x.*']);
    [both, other].forEach(n => index.add(n));
    expect(index.recipients('x.a')).toEqual([both, other]);
    expect(index.recipients('x.a.b')).toEqual([both]);
    expect(index.subscribes(other, 'x.a')).toBe(true);
    expect(index.subscribes(other, 'x.a.b')).toBe(false);
    index.remove(both);
    expect(index.recipients('x.a')).toEqual([other]);
    expect(index.counts.subscriptions).toBe(1);
    const merged = { plain: [both, other], groups: [], buckets: [], owned: 2 };
    expect(routeCost('x.a', merged)).toBe(ROUTE_OVERHEAD_BYTES + 2 * 3 + 2 * ROUTE_NODE_BYTES);
  });

  it('keeps subscriptions apart whatever their queue names and patterns hold (no two share a bucket by accident)', () => {
    const index = new SubscriptionIndex();
    const tricky = node(['y\norders.>'], 'x');
    const victim = node(['orders.>'], 'x\ny');
    const plain = node(['orders.>']);
    const emptyQueue = node(['orders.>'], '');
    [tricky, victim, plain, emptyQueue].forEach(n => index.add(n));
    expect(index.recipients('orders.new')).toEqual([plain, victim, emptyQueue]);
    expect(index.subscribes(tricky, 'orders.new')).toBe(false);
    expect(index.groupMembers('orders.new', 'x\ny')).toEqual([victim]);
  });

  it("keeps passive clients' queue groups apart from servers' of the same name", () => {
    const index = new SubscriptionIndex();
    const [s1, s2] = [node(['jobs'], 'g'), node(['jobs'], 'g')];
    const [p1, p2] = [
      { ...node(['jobs'], 'g'), passive: true },
      { ...node(['jobs'], 'g'), passive: true },
    ];
    [s1, p1, s2, p2].forEach(n => index.add(n));
    // One server and one passive client each time: a browser never takes a service's turn.
    expect([1, 2, 3, 4].map(() => index.recipients('jobs'))).toEqual([
      [s1, p1],
      [s2, p2],
      [s1, p1],
      [s2, p2],
    ]);
    expect(index.groupMembers('jobs', 'g')).toEqual([s1, s2]);
    expect(index.counts).toEqual({ subscriptions: 4, queueGroups: 2 });
    [p1, p2].forEach(n => index.remove(n));
    expect(index.counts).toEqual({ subscriptions: 2, queueGroups: 1 });
    expect(index.recipients('jobs')).toEqual([s1]);
  });
});
