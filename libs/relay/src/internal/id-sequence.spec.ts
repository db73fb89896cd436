import { describe, expect, it } from '@jest/globals';
import { IdSequence } from './id-sequence.js';

describe('IdSequence', () => {
  it('counts from 1 and wraps past its bound back to 1', () => {
    const ids = new IdSequence(3);
    expect([1, 2, 3, 4, 5].map(() => ids.next(new Set()))).toEqual([1, 2, 3, 1, 2]);
  });

  it('passes over ids still in use, also across the wrap', () => {
    const inUse = new Set([1, 4]);
    const ids = new IdSequence(5, 3);
    expect([ids.next(inUse), ids.next(inUse), ids.next(inUse)]).toEqual([5, 2, 3]);
  });
});
