import { describe, expect, it } from '@jest/globals';
import { RelayErrorMessages } from '@wsrelay/protocol';
import { Budget, budgetRefusalMessage } from './budget.js';

describe('Budget', () => {
  it('takes what fits, refuses (and counts) what would go over, and makes room again when given back', () => {
    const budget = new Budget(100);
    expect(budget.take(60)).toBe(true);
    expect(budget.take(40)).toBe(true);
    expect(budget.fits(1)).toBe(false);
    expect(budget.take(1)).toBe(false);
    expect(budget.status()).toEqual({ used: 100, limit: 100, refused: 1 });
    budget.give(40);
    expect(budget.fits(40)).toBe(true);
    expect(budget.take(41)).toBe(false);
    expect(budget.take(40)).toBe(true);
    expect(budget.status()).toEqual({ used: 100, limit: 100, refused: 2 });
  });

  it('counts what it cannot refuse past its limit (bytes already written), and a limit of 0 takes nothing', () => {
    const budget = new Budget(10);
    budget.add(25);
    expect(budget.used).toBe(25);
    expect(budget.take(0)).toBe(false);
    budget.add(-25);
    expect(budget.used).toBe(0);
    const none = new Budget(0);
    expect(none.take(0)).toBe(true);
    expect(none.take(1)).toBe(false);
  });

  it('lets one connection take at most its share (a quarter) of it, then the limit holds for all', () => {
    const budget = new Budget(100);
    expect(budget.perConnection).toBe(25);
    expect(budget.takeFor(0, 20)).toBeUndefined();
    expect(budget.takeFor(20, 5)).toBeUndefined();
    expect(budget.takeFor(25, 1)).toBe('share');
    expect(budget.takeFor(0, 26)).toBe('share');
    for (let i = 0; i < 3; i++) expect(budget.takeFor(0, 25)).toBeUndefined();
    expect(budget.takeFor(0, 1)).toBe('full');
    expect(budget.status()).toEqual({ used: 100, limit: 100, refused: 3 });
    expect(budgetRefusalMessage('share', budget, 'pending WAITs', 'waitBytes')).toBe(
      RelayErrorMessages.connectionBudgetShare('pending WAITs', 'waitBytes', 25),
    );
    expect(budgetRefusalMessage('full', budget, 'pending WAITs', 'waitBytes')).toBe(
      RelayErrorMessages.relayBudgetFull('pending WAITs', 'waitBytes', 100),
    );
    expect(new Budget(Infinity).perConnection).toBe(Infinity);
  });
});
