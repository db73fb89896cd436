/** Longest delay setTimeout takes (about 24.8 days). */
export const MAX_TIMER_MS = 0x7fff_ffff;

/** A timer for `fn` at time `when` (epoch ms), chained past setTimeout's limit; `onTimer` hears of each timer set. */
export function runAt(when: number, fn: () => void, onTimer: (timer: NodeJS.Timeout) => void): void {
  const delay = when - Date.now();
  onTimer(delay > MAX_TIMER_MS ? setTimeout(() => runAt(when, fn, onTimer), MAX_TIMER_MS) : setTimeout(fn, Math.max(0, delay)));
}
