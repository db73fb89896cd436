/**
 * What DISCOVER shows a restricted token (issue 13, point 9: it listed every
 * node and pattern of the tenant): a subscription is shown when the token may
 * emit some subject it receives, which needs two wildcard patterns to overlap.
 */
import { describe, expect, it } from '@jest/globals';
import { ALL_PERMISSIONS } from '../relay.constants.js';
import { Permissions, subjectsOverlap } from './permissions.js';

describe('subjectsOverlap', () => {
  it.each([
    ['a.b', 'a.b', true],
    ['a.b', 'a.c', false],
    ['a', 'a.b', false],
    ['a.*', 'a.b', true],
    ['a.*', 'a.b.c', false],
    ['a.>', 'a.b.c', true],
    ['a.>', 'a', false],
    ['a.*', 'a.>', true],
    ['*.b', 'a.*', true],
    ['*.b', 'a.c', false],
    ['>', 'x.y.z', true],
    ['a.*.c', 'a.b.>', true],
    ['a.*.c', 'a.b', false],
  ])('%s and %s: %s', (a, b, expected) => {
    expect(subjectsOverlap(a, b)).toBe(expected);
    expect(subjectsOverlap(b, a)).toBe(expected);
  });
});

describe('Permissions for DISCOVER', () => {
  it('shows a subscription to a token that may emit some subject it receives', () => {
    const p = new Permissions({ publish: ['orders.eu.*'] });
    expect(p.mayPublishTo('orders.>')).toBe(true);
    expect(p.mayPublishTo('orders.us.*')).toBe(false);
    expect(new Permissions({}).mayPublishTo('orders.>')).toBe(false);
  });

  it('hides nothing from a token that may call and emit everything', () => {
    expect(new Permissions(ALL_PERMISSIONS).callsAndPublishesAll).toBe(true);
    expect(new Permissions({ call: ['>'], publish: ['a.>'] }).callsAndPublishesAll).toBe(false);
  });
});
