import type WebSocket from 'ws';
import { type Session } from './session.js';
import { BEAT_SLICES } from './beat-slices.js';

/** The open connections, and the session of each socket. */
export class SessionRegistry {
  private readonly sessions = new Set<Session>();
  private readonly bySocket = new WeakMap<WebSocket, Session>();
  /** The sessions of each heartbeat slice (see Heartbeat). */
  private readonly slices = Array.from({ length: BEAT_SLICES }, () => new Set<Session>());

  get size(): number {
    return this.sessions.size;
  }

  add(session: Session): void {
    this.sessions.add(session);
    this.slices[session.beatSlice].add(session);
    this.bySocket.set(session.socket, session);
  }

  /** Forgets a session; false when it was not (or no longer) here. */
  delete(session: Session): boolean {
    this.slices[session.beatSlice].delete(session);
    return this.sessions.delete(session);
  }

  has(session: Session): boolean {
    return this.sessions.has(session);
  }

  /** The session of a socket, while the relay knows it (also after it is forgotten, for the frames still in flight). */
  of(socket: WebSocket): Session | undefined {
    return this.bySocket.get(socket);
  }

  values(): IterableIterator<Session> {
    return this.sessions.values();
  }

  /** The sessions the heartbeat looks at in `slice`. */
  inSlice(slice: number): IterableIterator<Session> {
    return this.slices[slice].values();
  }
}
