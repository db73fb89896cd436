import type { RelayClientReconnectOptions } from './options.js';

/** Delay before retry number `attempt` (0-based): exponential, capped, with jitter (as the Nest transport's). */
export function backoffDelay(attempt: number, o: Required<RelayClientReconnectOptions>, random: () => number = Math.random): number {
  const base = Math.min(o.maxDelayMs, o.initialDelayMs * o.multiplier ** attempt);
  return Math.round(base * (1 - o.jitter * random()));
}
