import { compileSubject, type SubjectMatcher } from '@wsrelay/protocol';
import type { Routable } from './routable.js';

interface Subscription<T> {
  session: T;
  match: SubjectMatcher;
}

/** Who receives one subject: every plain subscriber, and one member of each queue group. */
interface Route<T> {
  plain: T[];
  groups: Array<{ queue: string; members: T[] }>;
  /** Every node above, plain or in a group. */
  all: Set<T>;
}

const MAX_CACHED_SUBJECTS = 10_000;

/**
 * Event subscriptions with NATS-style wildcards. Matching is done once per
 * subject and cached until the set of subscriptions changes, so routing a
 * frequent subject costs one map lookup.
 */
export class SubscriptionIndex<T extends Routable = Routable> {
  private subscriptions: Array<Subscription<T>> = [];
  private readonly cache = new Map<string, Route<T>>();
  /** Round-robin position of each queue group; survives cache rebuilds. */
  private readonly turns = new Map<string, number>();

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

  private route(subject: string): Route<T> {
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
    if (this.cache.size >= MAX_CACHED_SUBJECTS) this.cache.clear();
    this.cache.set(subject, route);
    return route;
  }

  /** Subscriptions, and queue groups with a turn kept (for diagnostics). */
  get counts(): { subscriptions: number; queueGroups: number } {
    return { subscriptions: this.subscriptions.length, queueGroups: this.turns.size };
  }
}
