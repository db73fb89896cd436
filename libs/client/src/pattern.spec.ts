import 'reflect-metadata';
import { describe, expect, it } from '@jest/globals';
import { transformPatternToRoute } from '@nestjs/microservices/utils/transform-pattern.utils.js';
import { normalizePattern } from './pattern.js';

describe('normalizePattern', () => {
  it.each([
    ['greet'],
    [42],
    [{ cmd: 'sum' }],
    [{ role: 'math', cmd: 'sum', version: 2 }],
    [{ b: { z: 1, a: 'x"y' }, a: [1, 'two'] }],
    [{ 'quote"key': true }],
    [{ a: { b: { c: { d: { e: { f: { g: 1 } } } } } } }],
    [Object.fromEntries([...Array(21).keys()].map(i => [`k${i}`, i]))],
  ])('routes %j as Nest does', pattern => {
    expect(normalizePattern(pattern)).toBe(transformPatternToRoute(pattern as never));
  });
});
