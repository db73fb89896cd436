import { compileSubject, type SubjectMatcher } from '@wsrelay/protocol';
import type { Routable } from './routable.js';
import { type CacheRegion, type RouteCache, standaloneRouteCache } from './route-cache.js';

/**
 * The nodes that subscribed with one pattern in one queue group (or none):
 * the pattern is matched once for all of them, and routes share their list.
 */
interface Bucket<T> {
  readonly match: SubjectMatcher;
  /** Its queue group's key (groupKey), null for plain subscribers. */
  readonly group: string | null;
  /** Replaced, never changed, when a node joins or leaves: a route keeps the list it was built with. */
  members: readonly T[];
  readonly set: Set<T>;
}

/** Who receives one subject: every plain subscriber, and one member of each queue group. */
export interface EventRoute<T> {
  plain: readonly T[];
  /** `group`: the queue group's key (groupKey). */
  groups: Array<{ group: string; members: readonly T[] }>;
  /** The subscriptions that match it. */
  buckets: ReadonlyArray<Bucket<T>>;
  /** Nodes in lists made for this route alone (where subscriptions overlap); lists shared with the index cost it nothing. */
  owned: number;
}

/** The relay's event route cache, shared by every tenant's index. */
export type EventRoutes = RouteCache<EventRoute<Routable>>;

/**
 * What a cached route keeps, estimated: the record, its key and map entry,
 * a slot per matching subscription, and per node in a list of its own (a
 * route shares the member list of a subscription it matches alone) a slot
 * (measured by bench/route-cache.ts).
 */
export const ROUTE_OVERHEAD_BYTES = 720;
export const ROUTE_BUCKET_BYTES = 16;
export const ROUTE_NODE_BYTES = 40;

/** A route's estimated bytes in the cache. */
export function routeCost(subject: string, route: EventRoute<unknown>): number {
  return ROUTE_OVERHEAD_BYTES + 2 * subject.length + ROUTE_BUCKET_BYTES * route.buckets.length + ROUTE_NODE_BYTES * route.owned;
}

/**
 * A queue group's key: passive clients' groups are kept apart from servers'
 * of the same name, so a browser never takes a share of a service's events
 * (nor a handler-acked copy it cannot answer). The first character tells
 * them apart whatever the queue name holds.
 */
function groupKey(queue: string, passive: boolean): string {
  return (passive ? 'p' : 's') + queue;
}

/**
 * Event subscriptions with NATS-style wildcards. Nodes that subscribe with
 * the same pattern in the same queue group share one subscription (matched
 * once for all of them, however many), so building a route costs one match
 * per distinct subscription, and a route to a group of thousands shares the
 * group's list instead of copying it. Routes are cached until the set of
 * subscriptions changes, so routing a frequent subject costs one map lookup.
 * The cache is bounded by what its routes cost, in a budget that every
 * tenant's index shares: routes used least recently make room.
 */
export class SubscriptionIndex<T extends Routable = Routable> {
  /** By pattern and queue group. */
  private readonly buckets = new Map<string, Bucket<T>>();
  private readonly cache: CacheRegion<EventRoute<T>>;
  /** Round-robin position of each queue group (by groupKey); survives cache rebuilds. */
  private readonly turns = new Map<string, number>();

  constructor(routes: RouteCache<EventRoute<T>> = standaloneRouteCache()) {
    this.cache = routes.region();
  }

  add(session: T): void {
    if (session.events.length === 0) return;
    const group = groupOf(session);
    for (const pattern of session.events) {
      // Unambiguous whatever a queue name or pattern holds: the group is length-prefixed.
      const key = group === null ? `-${pattern}` : `+${group.length}:${group}${pattern}`;
      let bucket = this.buckets.get(key);
      if (bucket === undefined) {
        this.buckets.set(key, (bucket = { match: compileSubject(pattern), group, members: [], set: new Set() }));
      }
      if (bucket.set.has(session)) continue;
      bucket.set.add(session);
      bucket.members = [...bucket.members, session];
    }
    this.cache.clear();
  }

  remove(session: T): void {
    if (session.events.length === 0) return;
    for (const [key, bucket] of this.buckets) {
      if (!bucket.set.delete(session)) continue;
      if (bucket.set.size === 0) this.buckets.delete(key);
      else bucket.members = bucket.members.filter(m => m !== session);
    }
    const group = groupOf(session);
    // A group's turn lives as long as the group: queue names come from peers, so kept turns would grow without bound.
    if (group !== null && ![...this.buckets.values()].some(b => b.group === group)) this.turns.delete(group);
    this.cache.clear();
  }

  /** Drops the cached routes (they are rebuilt when asked for). */
  clearCache(): void {
    this.cache.clear();
  }

  /** The nodes one event on `subject` goes to; in a queue group, the next member in turn that is not backed up. */
  recipients(subject: string): readonly T[] {
    const route = this.route(subject);
    if (route.groups.length === 0) return route.plain;
    const out = route.plain.slice();
    for (const { group, members } of route.groups) {
      const n = members.length;
      let turn = this.turns.get(group) ?? 0;
      let pick = members[turn % n];
      // Past a member that is backed up, or whose socket closed before it was dropped, to one that can take it.
      for (let i = 0; i < n && (pick.slow || !pick.isOpen); i++) pick = members[++turn % n];
      if (pick.slow || !pick.isOpen) pick = members[(turn = this.turns.get(group) ?? 0) % n];
      out.push(pick);
      this.turns.set(group, (turn + 1) % n);
    }
    return out;
  }

  /** The members of servers' queue group `queue` that receive `subject` (where a handler-acked copy may move). */
  groupMembers(subject: string, queue: string): readonly T[] {
    const group = groupKey(queue, false);
    return this.route(subject).groups.find(g => g.group === group)?.members ?? [];
  }

  /** Whether `session` subscribes to `subject` (queue groups aside). */
  subscribes(session: T, subject: string): boolean {
    return this.route(subject).buckets.some(b => b.set.has(session));
  }

  private route(subject: string): EventRoute<T> {
    const cached = this.cache.get(subject);
    if (cached !== undefined) return cached;
    const buckets: Array<Bucket<T>> = [];
    for (const bucket of this.buckets.values()) if (bucket.match(subject)) buckets.push(bucket);
    const byGroup = new Map<string | null, Array<Bucket<T>>>();
    for (const b of buckets) {
      const same = byGroup.get(b.group);
      if (same === undefined) byGroup.set(b.group, [b]);
      else same.push(b);
    }
    const route: EventRoute<T> = { plain: [], groups: [], buckets, owned: 0 };
    for (const [group, same] of byGroup) {
      const members = same.length === 1 ? same[0].members : [...new Set(same.flatMap(b => b.members))];
      if (same.length > 1) route.owned += members.length;
      if (group === null) route.plain = members;
      else route.groups.push({ group, members });
    }
    this.cache.set(subject, route, routeCost(subject, route));
    return route;
  }

  /** Subscriptions, and queue groups with a turn kept (for diagnostics). */
  get counts(): { subscriptions: number; queueGroups: number } {
    let subscriptions = 0;
    for (const b of this.buckets.values()) subscriptions += b.set.size;
    return { subscriptions, queueGroups: this.turns.size };
  }
}

/** The queue group key of a node's subscriptions; null for a plain subscriber. */
function groupOf(session: Routable): string | null {
  return session.queue === null ? null : groupKey(session.queue, session.passive === true);
}
