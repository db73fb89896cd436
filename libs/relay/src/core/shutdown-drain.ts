import { Logger } from '@nestjs/common';
import { FrameType, RelayErrorCode, RelayErrorMessages } from '@wsrelay/protocol';
import type { RelayLifecycle } from '../lifecycle/relay-lifecycle.js';
import type { Waits } from '../requests/waits.js';
import type { Membership } from '../routing/membership.js';
import type { Replies } from '../session/replies.js';
import type { SessionRegistry } from '../session/session-registry.js';

/**
 * The relay's shutdown drain: new connections are refused, every node is
 * told to move (GOAWAY) and leaves routing here and in the cluster, what is
 * in flight completes (up to `drainTimeoutMs`).
 */
export class ShutdownDrain {
  private readonly logger = new Logger(ShutdownDrain.name);
  /** Set while draining: resolves the drain once nothing is in flight. */
  private drained: (() => void) | undefined;
  private checking = false;

  constructor(
    private readonly lifecycle: RelayLifecycle,
    private readonly sessions: SessionRegistry,
    private readonly membership: Membership,
    private readonly waits: Waits,
    private readonly replies: Replies,
    private readonly drainTimeoutMs: number,
    /** Requests and handler-acked event copies in flight through this relay. */
    private readonly inFlight: () => number,
  ) {}

  /** Drains once; resolves when nothing is in flight any more, or after `drainTimeoutMs`. */
  async run(): Promise<void> {
    if (!this.lifecycle.accepting) return;
    this.lifecycle.beginDrain();
    const drainMs = this.drainTimeoutMs;
    const done = new Promise<void>(resolve => (this.drained = resolve));
    const reason = RelayErrorMessages.goingAway();
    const goAway = this.replies.codec.encode({ type: FrameType.GoAway, reason, drainMs });
    for (const session of this.sessions.values()) {
      const node = this.membership.nodeOf(session);
      if (node !== undefined) this.membership.moveOff(node);
      session.send(goAway);
    }
    // Requests held in the startup grace: no provider will say HELLO here any more.
    this.waits.failHeld(RelayErrorCode.RELAY_UNAVAILABLE, RelayErrorMessages.relayUnavailable(reason));
    if (this.inFlight() === 0 || drainMs === 0) return;
    this.logger.log(`Draining: ${this.inFlight()} request(s) in flight, waiting up to ${drainMs} ms`);
    const timer = setTimeout(() => this.drained?.(), drainMs);
    await done;
    clearTimeout(timer);
  }

  /** Something in flight settled: while draining, the drain ends once nothing is left (checked once per turn of the event loop). */
  settled(): void {
    if (this.drained === undefined || this.checking) return;
    this.checking = true;
    setImmediate(() => {
      this.checking = false;
      if (this.inFlight() === 0) this.drained?.();
    });
  }
}
