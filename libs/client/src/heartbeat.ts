/** Half intervals of silence after which the client pings the relay itself (two intervals). */
const PING_AFTER = 4;
/** Half intervals of silence after which the relay is taken for dead (a ping unanswered for half an interval). */
const DEAD_AFTER = 5;

/**
 * The client's side of liveness, with PING frames: a browser can neither
 * send WebSocket pings nor see the relay's (it answers them itself). The
 * client pings once an interval while the relay sends it messages (a client
 * that only reads, such as a subscriber, would otherwise be pinged by the
 * relay, and that ping could wait behind a backlog of frames for longer than
 * the relay waits for its answer), and after two intervals in which nothing
 * came from the relay; half an interval more in silence and the relay is
 * taken for dead. The interval is the shorter of the client's and the relay's.
 */
export class Heartbeat {
  private timer: ReturnType<typeof setInterval> | undefined;
  private heardSinceCheck = false;
  private silentHalves = 0;
  /** A message (other than PONG) came from the relay since the client last pinged it. */
  private messages = false;
  private halvesSincePing = 0;

  /** A frame came from the relay; a PONG proves it alive but is no traffic worth a ping of its own. */
  heard(pong: boolean): void {
    this.heardSinceCheck = true;
    if (!pong) this.messages = true;
  }

  start(intervalMs: number, ping: () => void, dead: (silentMs: number) => void): void {
    this.stop();
    this.heardSinceCheck = false;
    this.silentHalves = 0;
    this.messages = false;
    this.halvesSincePing = 0;
    const halfMs = intervalMs / 2;
    this.timer = setInterval(() => {
      if (++this.halvesSincePing >= 2 && this.messages) {
        this.messages = false;
        this.halvesSincePing = 0;
        ping();
      }
      if (this.heardSinceCheck) {
        this.heardSinceCheck = false;
        this.silentHalves = 0;
        return;
      }
      const silent = ++this.silentHalves;
      if (silent >= DEAD_AFTER) {
        this.stop();
        dead(silent * halfMs);
      } else if (silent === PING_AFTER) {
        this.halvesSincePing = 0;
        ping();
      }
    }, halfMs);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
