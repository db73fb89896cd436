import { Budget } from '../internal/budget.js';

/** One cached value: in its region's map and in the cache's clock queue. */
interface Entry<V> {
  readonly key: string;
  readonly value: V;
  readonly cost: number;
  readonly region: Map<string, Entry<V>>;
  /** Looked up since the clock hand last passed it: it is spared one more round. */
  used: boolean;
  /** Out of its region (cleared or evicted): the queue drops it when it comes round. */
  gone: boolean;
}

/** Queue slots read past (or gone) before the queue is compacted. */
const COMPACT_AFTER = 1024;

/**
 * A cache bounded by cost, not by entry count (one route can name thousands
 * of nodes), shared by regions (each tenant's subscription index has one) so
 * that one budget bounds them all. Eviction is CLOCK, an approximation of
 * LRU: a hit only sets a flag (no reordering on the hot path), and when room
 * is needed the hand evicts the oldest entry not used since it last passed,
 * sparing (and requeueing) those that were.
 */
export class RouteCache<V> {
  private queue: Array<Entry<V>> = [];
  private hand = 0;
  private live = 0;

  constructor(readonly budget: Budget) {}

  /** A region of its own (a map of keys), sharing this cache's budget. */
  region(): CacheRegion<V> {
    return new CacheRegion(this);
  }

  /** Entries cached, across regions. */
  get size(): number {
    return this.live;
  }

  /** Slots of the eviction queue, entries gone included (they are dropped as the hand passes or the queue is compacted). */
  get queued(): number {
    return this.queue.length - this.hand;
  }

  /** Caches an entry if it can make room for it (false when it costs more than the whole budget). */
  admit(region: Map<string, Entry<V>>, key: string, value: V, cost: number): boolean {
    if (cost > this.budget.limit) {
      this.budget.refused++;
      return false;
    }
    const old = region.get(key);
    if (old !== undefined) this.drop(old);
    while (!this.budget.fits(cost)) if (!this.evictOne()) return false;
    const entry: Entry<V> = { key, value, cost, region, used: false, gone: false };
    this.budget.add(cost);
    this.queue.push(entry);
    this.live++;
    region.set(key, entry);
    return true;
  }

  /** Drops every entry of a region (what it caches is stale). */
  clear(region: Map<string, Entry<V>>): void {
    for (const entry of region.values()) this.drop(entry);
    region.clear();
    if (this.queue.length - this.hand > 2 * this.live + COMPACT_AFTER) this.compact();
  }

  /** Moves the hand to the next entry to evict and evicts it; false when nothing is left. */
  private evictOne(): boolean {
    while (this.hand < this.queue.length) {
      const entry = this.queue[this.hand++];
      if (entry.gone) continue;
      if (entry.used) {
        entry.used = false;
        this.queue.push(entry);
        continue;
      }
      this.drop(entry);
      this.budget.refused++;
      if (this.hand > COMPACT_AFTER && this.hand * 2 > this.queue.length) this.compact();
      return true;
    }
    return false;
  }

  private drop(entry: Entry<V>): void {
    if (entry.gone) return;
    entry.gone = true;
    if (entry.region.get(entry.key) === entry) entry.region.delete(entry.key);
    this.budget.give(entry.cost);
    this.live--;
  }

  private compact(): void {
    this.queue = this.queue.slice(this.hand).filter(e => !e.gone);
    this.hand = 0;
  }
}

/** One region of a RouteCache: its own keys, the cache's budget. */
export class CacheRegion<V> {
  private readonly entries = new Map<string, Entry<V>>();

  constructor(private readonly cache: RouteCache<V>) {}

  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    entry.used = true;
    return entry.value;
  }

  /** Caches `value` under `key` at `cost`, making room by evicting; false when it cannot be cached. */
  set(key: string, value: V, cost: number): boolean {
    return this.cache.admit(this.entries, key, value, cost);
  }

  clear(): void {
    this.cache.clear(this.entries);
  }

  get size(): number {
    return this.entries.size;
  }
}

/** What a standalone index (a unit spec's, no relay around it) may cache. */
export const STANDALONE_ROUTE_CACHE_BYTES = 32 * 1024 * 1024;

/** A cache of its own for an index made without one. */
export function standaloneRouteCache<V>(): RouteCache<V> {
  return new RouteCache<V>(new Budget(STANDALONE_ROUTE_CACHE_BYTES));
}
