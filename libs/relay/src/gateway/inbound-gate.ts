import type WebSocket from 'ws';
import type { TokenBucket } from '../session/token-bucket.js';

/** What the gate hands on: one WebSocket message, as `ws` delivered it. */
export type InboundHandler = (data: Buffer, isBinary: boolean) => void;

/** Why the gate gave up on a connection. */
export type GateOverflow = (frames: number, bytes: number) => void;

/** What a gate needs to know of its connection. */
export interface GateSettings {
  /** Messages that take no token (a server connection's answers), judged from their first bytes. */
  exempt(data: Buffer): boolean;
  maxHeldBytes: number;
  maxHeldFrames: number;
}

/**
 * A connection's frame rate limit, applied before a frame is even decoded.
 * Every frame takes a token (but those `exempt` says answer work the relay
 * gave); when the bucket is empty the gate stops reading the socket (`ws`
 * pause) instead of refusing, and goes on once tokens are back. So a
 * flooding connection is read at its rate and costs the relay no more than
 * that, its frames are delayed rather than lost, in order, and nobody else
 * waits. The messages `ws` had already read from the socket when it paused
 * (at most one read's worth) wait here, undecoded; past `maxHeldBytes` or
 * `maxHeldFrames` the connection is given up (`overflow`). Once the socket
 * is closing, nothing more is handed on, and the socket reads again so that
 * its close completes.
 */
export class InboundGate {
  private held: Array<{ data: Buffer; isBinary: boolean }> | undefined;
  private heldBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly socket: WebSocket,
    private readonly bucket: TokenBucket,
    private readonly handle: InboundHandler,
    private readonly settings: GateSettings,
    private readonly overflow: GateOverflow,
  ) {
    socket.once('close', () => this.stop());
  }

  /** Whether reading is paused for the rate limit. */
  get paused(): boolean {
    return this.held !== undefined;
  }

  receive(data: Buffer, isBinary: boolean): void {
    if (this.closed) return;
    const held = this.held;
    if (held === undefined) {
      if (this.settings.exempt(data) || this.bucket.take()) {
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
    if (held.length > this.settings.maxHeldFrames || this.heldBytes > this.settings.maxHeldBytes) {
      const frames = held.length;
      const bytes = this.heldBytes;
      this.stop();
      this.overflow(frames, bytes);
    }
  }

  /** Nothing more is handed on (the connection closed, or is given up); what is held is dropped. */
  stop(): void {
    this.closed = true;
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
    if (this.socket.readyState !== 1) {
      // Closing (the relay closed it meanwhile): what it sent is not acted on, and it must read to finish closing.
      this.stop();
      this.socket.resume();
      return;
    }
    let i = 0;
    while (i < held.length && this.held === held && (this.settings.exempt(held[i].data) || this.bucket.take())) {
      const next = held[i++];
      this.heldBytes -= next.data.length;
      this.handle(next.data, next.isBinary);
    }
    if (this.held !== held) return; // given up while handling
    held.splice(0, i);
    if (held.length > 0) {
      this.schedule();
      return;
    }
    this.held = undefined;
    if (this.socket.readyState === 1) this.socket.resume();
  }
}
