import type WebSocket from 'ws';

/** Half intervals of silence after which a node pings the relay itself (two intervals). */
const PING_AFTER = 4;
/** Half intervals of silence after which the relay is taken for dead (a ping unanswered for half an interval). */
const DEAD_AFTER = 5;

/**
 * A node's side of liveness. The relay pings a node it has not heard from for
 * an interval, and ws answers, so an idle node normally sends nothing of its
 * own: it pings only after two intervals in which nothing at all came from
 * the relay (a relay that does not ping, or one that is gone), and takes the
 * relay for dead when half an interval more passes in silence. The interval
 * is the shorter of the node's own and the relay's.
 */
export class NodeHeartbeat {
  private timer: NodeJS.Timeout | undefined;
  private heardSinceCheck = false;
  private silentHalves = 0;

  /** Something came from the relay. */
  heard(): void {
    this.heardSinceCheck = true;
  }

  start(socket: WebSocket, intervalMs: number, onSilent: (silentMs: number) => void): void {
    this.stop();
    // Counted from the WELCOME that started the session.
    this.heardSinceCheck = false;
    this.silentHalves = 0;
    const halfMs = intervalMs / 2;
    this.timer = setInterval(() => {
      if (this.heardSinceCheck) {
        this.heardSinceCheck = false;
        this.silentHalves = 0;
        return;
      }
      const silent = ++this.silentHalves;
      if (silent >= DEAD_AFTER) {
        onSilent(silent * halfMs);
        socket.terminate();
      } else if (silent === PING_AFTER) {
        socket.ping();
      }
    }, halfMs);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
