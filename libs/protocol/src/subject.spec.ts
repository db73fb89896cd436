import { compileSubject, subjectCovers, subjectMatches, subscriptionProblem } from './subject.js';

describe('subjects', () => {
  it.each([
    ['orders.created', 'orders.created', true],
    ['orders.created', 'orders.updated', false],
    ['orders.*', 'orders.created', true],
    ['orders.*', 'orders', false],
    ['orders.*', 'orders.eu.created', false],
    ['*.created', 'orders.created', true],
    ['orders.>', 'orders.created', true],
    ['orders.>', 'orders.eu.created', true],
    ['orders.>', 'orders', false],
    ['>', 'anything.at.all', true],
    ['*', 'one', true],
    ['*', 'one.two', false],
    ['a.*.c.>', 'a.b.c.d.e', true],
    ['a.*.c.>', 'a.b.x.d', false],
    ['{"cmd":"x"}', '{"cmd":"x"}', true],
  ])('%s matches %s: %s', (pattern, subject, expected) => {
    expect(subjectMatches(pattern, subject)).toBe(expected);
    expect(compileSubject(pattern)(subject)).toBe(expected);
  });

  it('names what is wrong with a subscription pattern', () => {
    expect(subscriptionProblem('a.>.b')).toMatch(/">" before its last token/);
    expect(subscriptionProblem('a..*')).toMatch(/empty token/);
    expect(subscriptionProblem('a.*.b')).toBeNull();
    expect(subscriptionProblem('plain.subject')).toBeNull();
  });
});

describe('subjectCovers (subscribe permissions)', () => {
  it.each([
    ['orders.>', 'orders.*.new', true],
    ['orders.>', 'orders.>', true],
    ['orders.>', 'orders', false],
    ['orders.*', 'orders.eu', true],
    ['orders.*', 'orders.*', true],
    ['orders.*', 'orders.>', false],
    ['orders.eu', 'orders.*', false],
    ['orders.eu', 'orders.eu', true],
    ['>', '*.anything.>', true],
    ['*.new', 'orders.new', true],
    ['*.new', 'orders.old', false],
    ['a.b', 'a.b.c', false],
  ])('%s covers %s: %s', (allowed, pattern, expected) => {
    expect(subjectCovers(allowed, pattern)).toBe(expected);
  });
});
