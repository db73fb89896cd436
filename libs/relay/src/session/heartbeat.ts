import { Logger } from '@nestjs/common';
import type WebSocket from 'ws';
import { BEAT_SLICES } from './beat-slices.js';
import type { Session } from './session.js';
import type { SessionRegistry } from './session-registry.js';

/**
 * Liveness of every connection. Any frame, ping or pong from a node proves it
 * alive. The relay pings a node it has not heard from for a whole interval
 * and drops one silent for one and a half; nodes answer (ws does) and ping
 * the relay themselves only when it has been silent for two intervals. So an
 * idle connection costs the relay one ping and one pong every one and a half
 * intervals, sent in batches (a slice at a time) rather than each answered on
 * its own wake-up, and a busy one costs nothing.
 *
 * Beats come every half interval, each in BEAT_SLICES slices: a node that
 * froze right after its last frame is gone within two intervals.
 */
export class Heartbeat {
  private readonly logger = new Logger(Heartbeat.name);
  private timer: NodeJS.Timeout | undefined;
  /** The slice the next tick looks at: slice 0 ends each beat. */
  private slice = 1;

  constructor(
    private readonly sessions: SessionRegistry,
    private readonly intervalMs: number,
    /** How the log names a connection (its node id once it has one). */
    private readonly name: (session: Session) => string = s => s.sessionId,
  ) {}

  /** Starts beating; `alsoEachBeat` runs once a beat (sweeps of other units' expired records). */
  start(alsoEachBeat: (now: number) => void = () => undefined): void {
    clearInterval(this.timer);
    this.slice = 1;
    this.timer = setInterval(
      () => {
        const slice = this.slice;
        this.slice = (slice + 1) % BEAT_SLICES;
        this.beat(slice);
        if (slice === 0) alsoEachBeat(Date.now());
      },
      Math.max(1, Math.floor(this.intervalMs / 2 / BEAT_SLICES)),
    );
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

  /** One beat for the connections of `slice`, or for all of them. */
  beat(slice?: number): void {
    for (const session of slice === undefined ? this.sessions.values() : this.sessions.inSlice(slice)) {
      if (session.heard) {
        session.heard = false;
        session.silentBeats = 0;
        continue;
      }
      const silent = ++session.silentBeats;
      if (silent >= 3) {
        this.logger.warn(`Node ${this.name(session)} missed its heartbeat; disconnecting it.`);
        session.socket.terminate();
      } else if (silent === 2) {
        session.ping();
      }
    }
  }
}
