import type WebSocket from 'ws';

/**
 * A node's side of liveness: it pings every interval (the shorter of its own
 * and the relay's, so the relay, hearing from it, need not ping), and takes
 * the relay for dead after an interval in which nothing at all came from it.
 */
export class NodeHeartbeat {
  private timer: NodeJS.Timeout | undefined;
  private alive = false;

  /** Something came from the relay. */
  heard(): void {
    this.alive = true;
  }

  start(socket: WebSocket, intervalMs: number, onSilent: (intervalMs: number) => void): void {
    this.stop();
    this.alive = true;
    this.timer = setInterval(() => {
      if (!this.alive) {
        onSilent(intervalMs);
        socket.terminate();
        return;
      }
      this.alive = false;
      socket.ping();
    }, intervalMs);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
