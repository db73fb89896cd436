/**
 * Where the relay is in its life: in its startup grace (a request nothing
 * serves yet waits for a provider), serving, or draining for shutdown (no new
 * connection or node is taken). Every unit that routes asks here.
 */
export class RelayLifecycle {
  /** Until when (epoch ms) a request nothing serves yet is held rather than failed. */
  private graceUntil = 0;
  private draining = false;

  /** The relay starts: the startup grace runs for `graceMs` from now. */
  started(graceMs: number, now = Date.now()): void {
    this.graceUntil = now + graceMs;
  }

  /** Whether a request nothing serves yet should wait for a provider. */
  inGrace(now = Date.now()): boolean {
    return now < this.graceUntil;
  }

  /** The end of the startup grace (epoch ms). */
  get graceEndsAt(): number {
    return this.graceUntil;
  }

  /** Shutdown has begun. */
  beginDrain(): void {
    this.draining = true;
  }

  /** Whether the relay takes new connections and nodes (not while it drains for shutdown). */
  get accepting(): boolean {
    return !this.draining;
  }
}
