import type WebSocket from 'ws';

interface Corkable {
  cork(): void;
  uncork(): void;
}

const CORKED = Symbol('wsrelay:corked');
const HELD = Symbol('wsrelay:held');
type Tracked = WebSocket & { _socket?: Corkable; [CORKED]?: boolean; [HELD]?: number };

/** Frames held for one writev at most (see corkForTick). */
const FLUSH_FRAMES = 16;

/**
 * Holds a WebSocket's TCP writes until the end of the current tick, so the
 * frames written in one tick leave in one writev instead of one syscall each;
 * a tick that writes many leaves 16 at a time, so the relay starts on the
 * first while this process still works on the rest. Cheap to call before
 * every send: only the first call in a tick corks.
 */
export function corkForTick(socket: WebSocket): void {
  const s = socket as Tracked;
  const raw = s._socket;
  if (s[CORKED] === true) {
    // Called before each frame is written: 16 written already go now, and this one starts the next batch.
    const held = s[HELD] ?? 0;
    if (held >= FLUSH_FRAMES && raw !== undefined) {
      raw.uncork();
      raw.cork();
      s[HELD] = 1;
    } else {
      s[HELD] = held + 1;
    }
    return;
  }
  if (raw === undefined) return;
  s[CORKED] = true;
  s[HELD] = 1;
  raw.cork();
  process.nextTick(() => {
    s[CORKED] = false;
    raw.uncork();
  });
}
