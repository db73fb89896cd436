/**
 * The event route cache by hand (not part of `npm run bench`):
 *
 *   node --expose-gc --import @swc-node/register/esm-register bench/route-cache.ts
 *
 * Prints ns per routed subject for cache hits, misses (a route built from
 * the subscriptions) and a working set larger than the budget (CLOCK
 * evictions), for a few queue-group widths; and the heap a cached route
 * really takes against what the budget counts for it (routeCost), which is
 * how ROUTE_OVERHEAD_BYTES and ROUTE_NODE_BYTES were chosen.
 */
import { Budget } from '../libs/relay/src/internal/budget.js';
import type { Routable } from '../libs/relay/src/routing/routable.js';
import { RouteCache } from '../libs/relay/src/routing/route-cache.js';
import { type EventRoute, SubscriptionIndex } from '../libs/relay/src/routing/subscription-index.js';

const gc = (globalThis as { gc?: () => void }).gc;

function member(i: number, events: string[], queue: string | null): Routable {
  return { nodeId: `n${i}`, service: null, patterns: [], serves: new Set(), events, queue, isOpen: true, slow: false };
}

/** An index of `width` queue members on `x.>` and 10 plain subscribers of `x.*`, on a cache of `budgetBytes`. */
function index(width: number, budgetBytes: number) {
  const budget = new Budget(budgetBytes);
  const routes = new RouteCache<EventRoute<Routable>>(budget);
  const idx = new SubscriptionIndex(routes);
  for (let i = 0; i < width; i++) idx.add(member(i, ['x.>'], 'workers'));
  for (let i = 0; i < 10; i++) idx.add(member(width + i, ['x.*'], null));
  return { idx, budget, routes };
}

/** ns per `recipients()` over `subjects`, cycled `rounds` times (after one warm-up round). */
function time(idx: SubscriptionIndex, subjects: string[], rounds: number): number {
  for (const s of subjects) idx.recipients(s);
  const start = process.hrtime.bigint();
  for (let r = 0; r < rounds; r++) for (const s of subjects) idx.recipients(s);
  return Number(process.hrtime.bigint() - start) / (rounds * subjects.length);
}

function heap(): number {
  gc?.();
  return process.memoryUsage().heapUsed;
}

const subjects = (n: number, prefix = 'x.s') => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

function speed(): void {
  console.log('width   hits ns   misses ns   over budget ns (working set 4x the budget)');
  for (const width of [1, 10, 100, 1500]) {
    const hit = index(width, 1 << 30);
    const hits = time(hit.idx, subjects(100), 2000);
    // Misses: a budget too small to keep anything, so every subject is routed from the subscriptions.
    const miss = index(width, 0);
    const misses = time(miss.idx, subjects(200), width >= 1000 ? 5 : 50);
    // A working set four times what the budget holds: CLOCK evicts as it goes.
    const probe = index(width, 1 << 30);
    probe.idx.recipients('x.probe');
    const perRoute = probe.budget.used;
    const over = index(width, perRoute * 250);
    const evicting = time(over.idx, subjects(1000), width >= 1000 ? 2 : 20);
    console.log(
      `${String(width).padStart(5)} ${hits.toFixed(0).padStart(9)} ${misses.toFixed(0).padStart(11)} ${evicting.toFixed(0).padStart(16)}`,
    );
  }
}

function memory(): void {
  if (gc === undefined) {
    console.log('(run with --expose-gc for the memory table)');
    return;
  }
  console.log('\nwidth  routes  heap per route  counted per route  heap / counted');
  for (const [width, n] of [
    [1, 20_000],
    [100, 2000],
    [1500, 300],
  ]) {
    const { idx, budget, routes } = index(width, 1 << 30);
    const before = heap();
    for (const s of subjects(n, 'x.mem.')) idx.recipients(s);
    const grown = heap() - before;
    const real = grown / routes.size;
    const counted = budget.used / routes.size;
    console.log(
      `${String(width).padStart(5)} ${String(routes.size).padStart(7)} ${real.toFixed(0).padStart(15)} ${counted.toFixed(0).padStart(18)} ${(real / counted).toFixed(2).padStart(15)}`,
    );
  }
}

speed();
memory();
