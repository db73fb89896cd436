import { compileSubject, type SubjectMatcher, subjectCovers, subscriptionProblem } from '@wsrelay/protocol';
import type { RelayPermissions } from '../interfaces/relay-options.interface.js';

export type PermissionAction = 'call' | 'serve' | 'publish' | 'subscribe';

/** Entries each action's decision cache holds before it starts over. */
const CACHE_LIMIT = 1024;

class ActionRule {
  private readonly matchers: SubjectMatcher[];
  /** Everything is allowed (`>`). */
  readonly all: boolean;
  private readonly cache = new Map<string, boolean>();

  constructor(readonly subjects: readonly string[]) {
    this.all = subjects.includes('>');
    this.matchers = subjects.map(compileSubject);
  }

  /** Whether a concrete subject (a pattern called, served or emitted) is allowed; cached per subject. */
  allows(subject: string): boolean {
    if (this.all) return true;
    let ok = this.cache.get(subject);
    if (ok === undefined) {
      ok = this.matchers.some(m => m(subject));
      if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
      this.cache.set(subject, ok);
    }
    return ok;
  }

  /** Whether a subscription pattern (maybe with wildcards) is allowed whole. */
  covers(pattern: string): boolean {
    return this.all || this.subjects.some(s => subjectCovers(s, pattern));
  }

  /** Whether some subject a pattern (maybe with wildcards) matches is allowed. */
  overlaps(pattern: string): boolean {
    return this.all || this.subjects.some(s => subjectsOverlap(s, pattern));
  }
}

/**
 * A connection's permissions, compiled once when it authenticates (and again
 * when it refreshes its token): per-frame checks are a cached lookup.
 */
export class Permissions {
  private readonly rules: Record<PermissionAction, ActionRule>;

  constructor(readonly source: RelayPermissions) {
    this.rules = {
      call: new ActionRule(source.call ?? []),
      serve: new ActionRule(source.serve ?? []),
      publish: new ActionRule(source.publish ?? []),
      subscribe: new ActionRule(source.subscribe ?? []),
    };
  }

  allows(action: PermissionAction, subject: string): boolean {
    return action === 'subscribe' ? this.rules.subscribe.covers(subject) : this.rules[action].allows(subject);
  }

  /** May call and emit everything (`>`): DISCOVER hides nothing from it. */
  get callsAndPublishesAll(): boolean {
    return this.rules.call.all && this.rules.publish.all;
  }

  /** Whether the connection may emit at least one subject that a subscription `pattern` receives. */
  mayPublishTo(pattern: string): boolean {
    return this.rules.publish.overlaps(pattern);
  }
}

/** Whether some subject matches both patterns (NATS wildcards: `*` one token, `>` one or more at the end). */
export function subjectsOverlap(a: string, b: string): boolean {
  const x = a.split('.');
  const y = b.split('.');
  for (let i = 0; ; i++) {
    if (x[i] === '>') return y.length > i;
    if (y[i] === '>') return x.length > i;
    if (i === x.length || i === y.length) return x.length === y.length;
    if (x[i] !== '*' && y[i] !== '*' && x[i] !== y[i]) return false;
  }
}

/** Why a permissions object is unusable, or null. */
export function permissionsProblem(p: unknown): string | null {
  if (typeof p !== 'object' || p === null || Array.isArray(p)) return 'must be an object of subject lists';
  for (const [key, list] of Object.entries(p)) {
    if (!['call', 'serve', 'publish', 'subscribe'].includes(key)) return `has an unknown action "${key}"`;
    if (!Array.isArray(list) || !list.every(x => typeof x === 'string' && x.length > 0)) {
      return `"${key}" must be an array of non-empty subjects`;
    }
    for (const subject of list as string[]) {
      const problem = subscriptionProblem(subject);
      if (problem) return `"${key}": ${problem}`;
    }
  }
  return null;
}
