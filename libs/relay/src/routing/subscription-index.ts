import { compileSubject, type SubjectMatcher } from '@wsrelay/protocol';
import type { Routable } from './routable.js';
import { type CacheRegion, type RouteCache, standaloneRouteCache } from './route-cache.js';

interface Subscription<T> {
  session: T;
  match: SubjectMatcher;
}

/** Who receives one subject: every plain subscriber, and one member of each queue group. */
export interface EventRoute<T> {
  plain: T[];
  groups: Array<{ queue: string; members: T[] }>;
  /** Every node above, plain or in a group. */
  all: Set<T>;
}

/** The relay's event route cache, shared by every tenant's index. */
export type EventRoutes = RouteCache<EventRoute<Routable>>;

/**
 * What a cached route keeps, estimated: the record, its key and map entry,
 * and per node a slot in its list and in its set (measured by
 * bench/route-cache.ts).
 */
export const ROUTE_OVERHEAD_BYTES = 720;
export const ROUTE_NODE_BYTES = 40;

/** A route's estimated bytes in the cache. */
export function routeCost(subject: string, route: EventRoute<unknown>): number {
  return ROUTE_OVERHEAD_BYTES + 2 * subject.length + ROUTE_NODE_BYTES * route.all.size;
}

/**
 * Event subscriptions with NATS-style wildcards. Matching is done once per
 * subject and cached until the set of subscriptions changes, so routing a
 * frequent subject costs one map lookup. The cache is bounded by what its
 * routes cost (a route to many queue members costs more), in a budget that
 * every tenant's index shares: routes used least recently make room.
 */
export class SubscriptionIndex<T extends Routable = Routable> {
  private subscriptions: Array<Subscription<T>> = [];
  private readonly cache: CacheRegion<EventRoute<T>>;
  /** Round-robin position of each queue group; survives cache rebuilds. */
  private readonly turns = new Map<string, number>();

  constructor(routes: RouteCache<EventRoute<T>> = standaloneRouteCache()) {
    this.cache = routes.region();
  }

  add(session: T): void {
    if (session.events.length === 0) return;
    for (const pattern of session.events) {
      this.subscriptions.push({ session, match: compileSubject(pattern) });
    }
    this.cache.clear();
  }

  remove(session: T): void {
    if (session.events.length === 0) return;
    this.subscriptions = this.subscriptions.filter(s => s.session !== session);
    const queue = session.queue;
    // A group's turn lives as long as the group: queue names come from peers, so kept turns would grow without bound.
    if (queue !== null && !this.subscriptions.some(s => s.session.queue === queue)) this.turns.delete(queue);
    this.cache.clear();
  }

  /** Drops the cached routes (they are rebuilt when asked for). */
  clearCache(): void {
    this.cache.clear();
  }

  /** The nodes one event on `subject` goes to; in a queue group, the next member in turn that is not backed up. */
  recipients(subject: string): T[] {
    const route = this.route(subject);
    if (route.groups.length === 0) return route.plain;
    const out = route.plain.slice();
    for (const { queue, members } of route.groups) {
      const n = members.length;
      let turn = this.turns.get(queue) ?? 0;
      let pick = members[turn % n];
      // Past a member that is backed up, or whose socket closed before it was dropped, to one that can take it.
      for (let i = 0; i < n && (pick.slow || !pick.isOpen); i++) pick = members[++turn % n];
      if (pick.slow || !pick.isOpen) pick = members[(turn = this.turns.get(queue) ?? 0) % n];
      out.push(pick);
      this.turns.set(queue, (turn + 1) % n);
    }
    return out;
  }

  /** The members of queue group `queue` that receive `subject`. */
  groupMembers(subject: string, queue: string): readonly T[] {
    return this.route(subject).groups.find(g => g.queue === queue)?.members ?? [];
  }

  /** Whether `session` subscribes to `subject` (queue groups aside). */
  subscribes(session: T, subject: string): boolean {
    return this.route(subject).all.has(session);
  }

  private route(subject: string): EventRoute<T> {
    let route = this.cache.get(subject);
    if (route !== undefined) return route;
    route = { plain: [], groups: [], all: new Set() };
    const groups = new Map<string, T[]>();
    for (const { session, match } of this.subscriptions) {
      if (route.all.has(session) || !match(subject)) continue;
      route.all.add(session);
      if (session.queue === null) {
        route.plain.push(session);
      } else {
        let members = groups.get(session.queue);
        if (members === undefined) groups.set(session.queue, (members = []));
        members.push(session);
      }
    }
    for (const [queue, members] of groups) route.groups.push({ queue, members });
    this.cache.set(subject, route, routeCost(subject, route));
    return route;
  }

  /** Subscriptions, and queue groups with a turn kept (for diagnostics). */
  get counts(): { subscriptions: number; queueGroups: number } {
    return { subscriptions: this.subscriptions.length, queueGroups: this.turns.size };
  }
}
