/** A message pattern: a string, or an object as Nest's `@MessagePattern({ cmd: 'sum' })` names one. */
export type RelayPattern = string | number | Record<string, unknown>;

/** Most levels of a nested object pattern, and most keys at each (past them, Nest's own placeholders). */
const MAX_DEPTH = 5;
const MAX_KEYS = 20;

const escape = (s: string) => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"');

/**
 * The pattern as it travels: a string as is, an object normalized as Nest
 * normalizes it (keys sorted, JSON-like), so that `{ cmd: 'sum' }` reaches
 * the handler of `@MessagePattern({ cmd: 'sum' })`.
 */
export function normalizePattern(pattern: unknown, depth = 0): string {
  if (typeof pattern === 'string' || typeof pattern === 'number') return `${pattern}`;
  if (pattern === null || typeof pattern !== 'object') return pattern as string;
  if (depth > MAX_DEPTH) return '[MAX_DEPTH_REACHED]';
  const keys = Object.keys(pattern);
  if (keys.length > MAX_KEYS) return '[TOO_MANY_KEYS]';
  const parts = keys
    .sort((a, b) => a.localeCompare(b))
    .map(key => {
      const value = (pattern as Record<string, unknown>)[key];
      const route = normalizePattern(value, depth + 1);
      return `"${escape(key)}":${typeof value === 'string' ? `"${escape(route)}"` : route}`;
    });
  return `{${parts.join(',')}}`;
}
