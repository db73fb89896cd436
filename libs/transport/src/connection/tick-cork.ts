import type WebSocket from 'ws';

interface Corkable {
  cork(): void;
  uncork(): void;
}

const CORKED = Symbol('wsrelay:corked');
type Tracked = WebSocket & { _socket?: Corkable; [CORKED]?: boolean };

/**
 * Holds a WebSocket's TCP writes until the end of the current tick, so every
 * frame written in one tick leaves in one writev instead of one syscall each.
 * Cheap to call before every send: only the first call in a tick does work.
 */
export function corkForTick(socket: WebSocket): void {
  const s = socket as Tracked;
  if (s[CORKED] === true) return;
  const raw = s._socket;
  if (raw === undefined) return;
  s[CORKED] = true;
  raw.cork();
  process.nextTick(() => {
    s[CORKED] = false;
    raw.uncork();
  });
}
