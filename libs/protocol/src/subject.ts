import { quote } from './errors.js';

/**
 * NATS-style subjects for event patterns: tokens split by `.`, `*` matches
 * exactly one token, `>` (last token only) matches one or more remaining tokens.
 */
export type SubjectMatcher = (subject: string) => boolean;

const SINGLE = '*';
const REST = '>';

export function hasWildcards(pattern: string): boolean {
  return pattern.split('.').some(t => t === SINGLE || t === REST);
}

/** Why a subscription pattern is unusable, or null when it is fine. */
export function subscriptionProblem(pattern: string): string | null {
  if (!hasWildcards(pattern)) return null;
  const tokens = pattern.split('.');
  if (tokens.some(t => t.length === 0)) return `event pattern ${quote(pattern)} has an empty token`;
  const rest = tokens.indexOf(REST);
  if (rest !== -1 && rest !== tokens.length - 1) {
    return `event pattern ${quote(pattern)} has ">" before its last token`;
  }
  return null;
}

/** Compiles a pattern once into a matcher (exact comparison when it has no wildcards). */
export function compileSubject(pattern: string): SubjectMatcher {
  if (!hasWildcards(pattern)) return subject => subject === pattern;
  const tokens = pattern.split('.');
  const tail = tokens[tokens.length - 1] === REST;
  const fixed = tail ? tokens.length - 1 : tokens.length;
  return subject => {
    const parts = subject.split('.');
    if (tail ? parts.length <= fixed : parts.length !== fixed) return false;
    for (let i = 0; i < fixed; i++) {
      if (tokens[i] !== SINGLE && tokens[i] !== parts[i]) return false;
    }
    return true;
  };
}

export function subjectMatches(pattern: string, subject: string): boolean {
  return compileSubject(pattern)(subject);
}

/**
 * Whether every subject `pattern` can match is also matched by `allowed`
 * (NATS's rule for subscribe permissions): `orders.>` covers `orders.*.new`,
 * `orders.*` covers `orders.eu` but not `orders.>`.
 */
export function subjectCovers(allowed: string, pattern: string): boolean {
  const a = allowed.split('.');
  const p = pattern.split('.');
  for (let i = 0; i < a.length; i++) {
    if (a[i] === REST) return i === a.length - 1 && p.length > i;
    if (i >= p.length) return false;
    if (p[i] === REST) return false;
    if (a[i] === SINGLE) continue;
    if (a[i] !== p[i]) return false;
  }
  return p.length === a.length;
}
