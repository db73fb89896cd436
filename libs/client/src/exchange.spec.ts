import { describe, expect, it } from '@jest/globals';
import { type Exchange, Exchanges } from './exchange.js';

const exchange = () => ({}) as Exchange;

describe('Exchanges', () => {
  it('books ids from 1 to 2^32-1 and wraps around (0 means no correlation)', () => {
    const ids = new Exchanges(0xffff_fffd);
    const booked = [ids.book(exchange()), ids.book(exchange()), ids.book(exchange())];
    expect(booked).toEqual([0xffff_fffe, 0xffff_ffff, 1]);
    expect(ids.delete(booked[1])).toBe(true);
    expect(ids.get(booked[1])).toBeUndefined();
    expect(ids.get(1)).toBeDefined();
  });
});
