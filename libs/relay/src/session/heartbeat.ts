import { Logger } from '@nestjs/common';
import type WebSocket from 'ws';
import type { Session } from './session.js';
import type { SessionRegistry } from './session-registry.js';

/**
 * Liveness of every connection. Any frame, ping or pong from a node proves
 * it alive, and nodes ping every interval themselves, so the relay pings only
 * a node it has not heard from for a whole interval (one that does not ping:
 * a browser, a raw client) and drops one silent for one and a half. Beats
 * run every half interval: a node that froze right after its last frame is
 * gone within two intervals, and a pinging node costs one ping and one pong
 * per interval.
 */
export class Heartbeat {
  private readonly logger = new Logger(Heartbeat.name);
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly sessions: SessionRegistry,
    private readonly intervalMs: number,
    /** How the log names a connection (its node id once it has one). */
    private readonly name: (session: Session) => string = s => s.sessionId,
  ) {}

  /** Starts beating; `alsoEachBeat` runs with each beat (sweeps of other units' expired records). */
  start(alsoEachBeat: (now: number) => void = () => undefined): void {
    clearInterval(this.timer);
    this.timer = setInterval(() => {
      this.beat();
      alsoEachBeat(Date.now());
    }, this.intervalMs / 2);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** A ping or pong from `socket` (any frame is reported by the adapter itself). */
  readonly heard = (socket: WebSocket): void => {
    const session = this.sessions.of(socket);
    if (session !== undefined) session.heard = true;
  };

  beat(): void {
    for (const session of this.sessions.values()) {
      if (session.heard) {
        session.heard = false;
        session.silentBeats = 0;
        continue;
      }
      const silent = ++session.silentBeats;
      if (silent >= 3) {
        this.logger.warn(`Node ${this.name(session)} missed its heartbeat; disconnecting it.`);
        session.socket.terminate();
      } else if (silent === 2 && session.isOpen) {
        session.socket.ping();
      }
    }
  }
}
