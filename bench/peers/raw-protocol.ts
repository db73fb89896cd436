/**
 * The raw-ws peer's protocol: the least a relay needs. Each frame is a
 * MessagePack array `[type, id, subject?, payload?]`; the relay reads the
 * header and forwards the payload bytes untouched. No handshake, versions,
 * deadlines, cancellation, errors or wildcards: this peer shows what the
 * wire, `ws` and MessagePack cost by themselves — the practical limit for our
 * relay design on this machine. No Nest here.
 */
import type WebSocket from 'ws';

export const Raw = {
  /** `[SUB, rpcSubjects[], eventSubjects[]]`: what a provider serves and subscribes to. */
  SUB: 1,
  /** `[REQ, id, subject, payload]`; the relay swaps in its own id towards the provider. */
  REQ: 2,
  /** `[RES, id, payload]` */
  RES: 3,
  /** `[EVT, id, subject, payload]` */
  EVT: 4,
  /** `[ACK, id, recipients]`: the relay wrote the event to every subscriber. */
  ACK: 5,
} as const;

interface Corkable {
  cork(): void;
  uncork(): void;
}

const corked = new WeakSet<WebSocket>();

/** Holds a socket's writes until the end of the tick, so one tick's frames leave in one writev. */
export function corkForTick(ws: WebSocket): void {
  if (corked.has(ws)) return;
  const raw = (ws as unknown as { _socket?: Corkable })._socket;
  if (raw === undefined) return;
  corked.add(ws);
  raw.cork();
  process.nextTick(() => {
    corked.delete(ws);
    raw.uncork();
  });
}
