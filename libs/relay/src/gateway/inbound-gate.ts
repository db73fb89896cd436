import type WebSocket from 'ws';
import type { TokenBucket } from '../session/token-bucket.js';

/** What the gate hands on: one WebSocket message, as `ws` delivered it. */
export type InboundHandler = (data: Buffer, isBinary: boolean) => void;

/** Why the gate gave up on a connection. */
export type GateOverflow = (frames: number, bytes: number) => void;

/**
 * A connection's frame rate limit, applied before a frame is even decoded.
 * Every frame takes a token; when the bucket is empty the gate stops reading
 * the socket (`ws` pause) instead of refusing, and goes on once tokens are
 * back. So a flooding connection is read at its rate and costs the relay no
 * more than that, its frames are delayed rather than lost (answers included),
 * and nobody else waits. The messages `ws` had already read from the socket
 * when it paused (at most one read's worth) wait here, undecoded; past
 * `maxHeldBytes` or `maxHeldFrames` the connection is given up (`overflow`).
 */
export class InboundGate {
  private held: Array<{ data: Buffer; isBinary: boolean }> | undefined;
  private heldBytes = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly socket: WebSocket,
    private readonly bucket: TokenBucket,
    private readonly handle: InboundHandler,
    private readonly limits: { maxHeldBytes: number; maxHeldFrames: number },
    private readonly overflow: GateOverflow,
  ) {
    socket.once('close', () => this.stop());
  }

  /** Whether reading is paused for the rate limit. */
  get paused(): boolean {
    return this.held !== undefined;
  }

  receive(data: Buffer, isBinary: boolean): void {
    const held = this.held;
    if (held === undefined) {
      if (this.bucket.take()) {
        this.handle(data, isBinary);
        return;
      }
      this.held = [{ data, isBinary }];
      this.heldBytes = data.length;
      this.socket.pause();
      this.schedule();
      return;
    }
    held.push({ data, isBinary });
    this.heldBytes += data.length;
    if (held.length > this.limits.maxHeldFrames || this.heldBytes > this.limits.maxHeldBytes) {
      const frames = held.length;
      const bytes = this.heldBytes;
      this.stop();
      this.overflow(frames, bytes);
    }
  }

  /** The connection closed: nothing more is handed on. */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.held = undefined;
    this.heldBytes = 0;
  }

  private schedule(): void {
    this.timer = setTimeout(() => this.release(), this.bucket.msUntilToken());
  }

  /** Tokens are back: held frames go on in order, as many as they allow; reading resumes once none is left. */
  private release(): void {
    this.timer = undefined;
    const held = this.held;
    if (held === undefined) return;
    let i = 0;
    while (i < held.length && this.held === held && this.bucket.take()) {
      const next = held[i++];
      this.heldBytes -= next.data.length;
      this.handle(next.data, next.isBinary);
    }
    if (this.held !== held) return; // closed or given up while handling
    held.splice(0, i);
    if (held.length > 0) {
      this.schedule();
      return;
    }
    this.held = undefined;
    if (this.socket.readyState === 1) this.socket.resume();
  }
}
