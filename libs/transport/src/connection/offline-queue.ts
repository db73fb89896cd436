import { RelayError, RelayErrorCode, RelayErrorMessages } from '@wsrelay/protocol';

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * Calls waiting for a session: each waits up to `timeoutMs`, at most `max`
 * at once (more fail at once with RELAY_UNAVAILABLE).
 */
export class OfflineQueue {
  private waiters: Waiter[] = [];

  constructor(
    private readonly max: number,
    private readonly timeoutMs: number,
    /** Why no session came, for the error of a waiter that times out. */
    private readonly lastError: () => Error | undefined,
  ) {}

  get size(): number {
    return this.waiters.length;
  }

  wait(): Promise<void> {
    if (this.waiters.length >= this.max) {
      const detail = `${this.waiters.length} calls are already waiting for a connection (maxOfflineQueue)`;
      return Promise.reject(new RelayError(RelayErrorCode.RELAY_UNAVAILABLE, RelayErrorMessages.relayUnavailable(detail)));
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter(w => w !== waiter);
          const last = this.lastError();
          const detail = `none within ${this.timeoutMs} ms${last ? ` (last error: ${last.message})` : ''}`;
          reject(new RelayError(RelayErrorCode.RELAY_UNAVAILABLE, RelayErrorMessages.relayUnavailable(detail)));
        }, this.timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  /** A session is up: every waiter goes on. */
  release(): void {
    for (const w of this.take()) w.resolve();
  }

  /** No session will come (closed, or refused for good): every waiter fails with `err`. */
  fail(err: Error): void {
    for (const w of this.take()) w.reject(err);
  }

  private take(): Waiter[] {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) clearTimeout(w.timer);
    return waiters;
  }
}
