import type WebSocket from 'ws';

/** Half intervals of silence after which a node pings the relay itself (two intervals). */
const PING_AFTER = 4;
/** Half intervals of silence after which the relay is taken for dead (a ping unanswered for half an interval). */
const DEAD_AFTER = 5;

/**
 * A node's side of liveness. The relay pings a node it has not heard from for
 * an interval, and ws answers, so an idle node sends nothing of its own. It
 * pings the relay once an interval while the relay sends it messages (a node
 * that only reads, such as a subscriber, would otherwise be pinged, and the
 * relay's ping could wait behind a backlog of frames for longer than the
 * relay waits for its answer), and after two intervals in which nothing at
 * all came from the relay (a relay that does not ping, or one that is gone);
 * it takes the relay for dead when half an interval more passes in silence.
 * The interval is the shorter of the node's own and the relay's.
 */
export class NodeHeartbeat {
  private timer: NodeJS.Timeout | undefined;
  private heardSinceCheck = false;
  private silentHalves = 0;
  /** A message came from the relay since this node last pinged it. */
  private messages = false;
  private halvesSincePing = 0;

  /** A ping or pong came from the relay. */
  heard(): void {
    this.heardSinceCheck = true;
  }

  /** A message came from the relay. */
  heardMessage(): void {
    this.heardSinceCheck = true;
    this.messages = true;
  }

  start(socket: WebSocket, intervalMs: number, onSilent: (silentMs: number) => void): void {
    this.stop();
    // Counted from the WELCOME that started the session.
    this.heardSinceCheck = false;
    this.silentHalves = 0;
    this.messages = false;
    this.halvesSincePing = 0;
    const halfMs = intervalMs / 2;
    this.timer = setInterval(() => {
      if (++this.halvesSincePing >= 2 && this.messages) {
        this.messages = false;
        this.halvesSincePing = 0;
        socket.ping();
      }
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
        this.halvesSincePing = 0;
        socket.ping();
      }
    }, halfMs);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
