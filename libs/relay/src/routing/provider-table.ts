import type { Routable } from './routable.js';

/** Providers of one RPC pattern, taken in turn. */
class ProviderRing<T extends Routable> {
  readonly sessions: T[] = [];
  private next = 0;

  /** The next provider in turn, passing over one that is backed up (not reading) while another is not. */
  pick(): T | undefined {
    const n = this.sessions.length;
    if (n === 0) return undefined;
    const at = this.next >= n ? 0 : this.next;
    const first = this.sessions[at];
    this.next = at + 1;
    if (!first.slow || n === 1) return first;
    for (let i = 1; i < n; i++) {
      const s = this.sessions[(at + i) % n];
      if (s.slow) continue;
      this.next = ((at + i) % n) + 1;
      return s;
    }
    // Every one is backed up: still in turn, so no single one takes them all.
    return first;
  }
}

/** RPC pattern → the nodes that serve it, round-robin. */
export class ProviderTable<T extends Routable = Routable> {
  private readonly rings = new Map<string, ProviderRing<T>>();

  add(session: T): void {
    for (const pattern of session.patterns) {
      let ring = this.rings.get(pattern);
      if (ring === undefined) this.rings.set(pattern, (ring = new ProviderRing<T>()));
      ring.sessions.push(session);
    }
  }

  remove(session: T): void {
    for (const pattern of session.patterns) {
      const ring = this.rings.get(pattern);
      if (ring === undefined) continue;
      const i = ring.sessions.indexOf(session);
      if (i !== -1) ring.sessions.splice(i, 1);
      if (ring.sessions.length === 0) this.rings.delete(pattern);
    }
  }

  pick(pattern: string): T | undefined {
    return this.rings.get(pattern)?.pick();
  }

  count(pattern: string): number {
    return this.rings.get(pattern)?.sessions.length ?? 0;
  }

  /** Patterns with at least one provider (for diagnostics). */
  get patternCount(): number {
    return this.rings.size;
  }
}
