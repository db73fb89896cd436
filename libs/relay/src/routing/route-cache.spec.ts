import { describe, expect, it } from '@jest/globals';
import { Budget } from '../internal/budget.js';
import { RouteCache } from './route-cache.js';

describe('RouteCache', () => {
  it('keeps its entries within the budget by cost, not by count, evicting the oldest entry not used since', () => {
    const budget = new Budget(100);
    const cache = new RouteCache<string>(budget);
    const region = cache.region();
    expect(region.set('a', 'A', 40)).toBe(true);
    expect(region.set('b', 'B', 40)).toBe(true);
    expect(region.get('a')).toBe('A'); // a is used: b goes first
    expect(region.set('c', 'C', 40)).toBe(true);
    expect([region.get('a'), region.get('b'), region.get('c')]).toEqual(['A', undefined, 'C']);
    expect(budget.status()).toEqual({ used: 80, limit: 100, refused: 1 });
    // One big entry takes the room of several small ones.
    expect(region.set('big', 'BIG', 100)).toBe(true);
    expect([region.get('a'), region.get('c'), region.get('big')]).toEqual([undefined, undefined, 'BIG']);
    expect(cache.size).toBe(1);
    expect(budget.used).toBe(100);
  });

  it('does not cache an entry that costs more than the whole budget, and keeps what it had', () => {
    const budget = new Budget(100);
    const region = new RouteCache<string>(budget).region();
    region.set('a', 'A', 10);
    expect(region.set('huge', 'H', 101)).toBe(false);
    expect([region.get('a'), region.get('huge')]).toEqual(['A', undefined]);
    expect(budget.used).toBe(10);
  });

  it('shares one budget between regions: one region filling it evicts the other, and each region clears only its own', () => {
    const budget = new Budget(100);
    const cache = new RouteCache<string>(budget);
    const [tenantA, tenantB] = [cache.region(), cache.region()];
    tenantA.set('x', 'A-x', 50);
    tenantB.set('x', 'B-x', 30);
    expect([tenantA.get('x'), tenantB.get('x')]).toEqual(['A-x', 'B-x']);
    for (let i = 0; i < 5; i++) tenantB.set(`s${i}`, `B-${i}`, 30);
    expect(budget.used).toBeLessThanOrEqual(100);
    expect(tenantA.get('x')).toBeUndefined();
    tenantB.clear();
    expect(budget.used).toBe(0);
    expect(cache.size).toBe(0);
    tenantA.set('y', 'A-y', 100);
    expect(tenantA.get('y')).toBe('A-y');
  });

  it('replaces an entry set again under the same key without counting it twice', () => {
    const budget = new Budget(100);
    const region = new RouteCache<string>(budget).region();
    region.set('a', 'old', 60);
    region.set('a', 'new', 70);
    expect(region.get('a')).toBe('new');
    expect(budget.used).toBe(70);
  });

  it('stays bounded, in budget and in its queue, under churn of many subjects and clears', () => {
    const budget = new Budget(10_000);
    const cache = new RouteCache<number>(budget);
    const region = cache.region();
    let most = 0;
    for (let i = 0; i < 200_000; i++) {
      region.set(`subject.${i}`, i, 10 + (i % 7));
      if (i % 3 === 0) region.get(`subject.${i - 1}`);
      if (i % 50_000 === 0) region.clear();
      most = Math.max(most, budget.used);
    }
    expect(most).toBeLessThanOrEqual(10_000);
    expect(budget.used).toBeGreaterThan(10_000 - 20);
    expect(region.size).toBe(cache.size);
    expect(cache.queued).toBeLessThan(4 * cache.size + 2048);
  });
});
