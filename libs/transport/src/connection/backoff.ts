import type { WsRelayReconnectOptions } from '../interfaces/ws-relay-options.interface.js';

/** Delay before retry number `attempt` (0-based): exponential, capped, with jitter. */
export function backoffDelay(attempt: number, o: Required<WsRelayReconnectOptions>, random: () => number = Math.random): number {
  const base = Math.min(o.maxDelayMs, o.initialDelayMs * o.multiplier ** attempt);
  return Math.round(base * (1 - o.jitter * random()));
}
