import { FrameType, RelayErrorCode, RelayErrorMessages } from '@wsrelay/protocol';
import type { RelayLifecycle } from '../lifecycle/relay-lifecycle.js';
import type { RelayObserver } from '../observe/relay-observer.js';
import type { Waits } from '../requests/waits.js';
import type { Membership } from '../routing/membership.js';
import type { Replies } from '../session/replies.js';
import type { SessionRegistry } from '../session/session-registry.js';

/** How the drain goes: how long it may take, what it waits for, who hears of it. */
export interface DrainSettings {
  /** How long what is in flight may take to complete; 0: not waited for. */
  drainTimeoutMs: number;
  /** Requests and handler-acked event copies in flight through this relay. */
  inFlight: () => number;
  observer?: Pick<RelayObserver, 'drainStarted' | 'drainEnded'>;
}

/**
 * The relay's shutdown drain: new connections are refused, every node is
 * told to move (GOAWAY) and leaves routing here and in the cluster, what is
 * in flight completes (up to `drainTimeoutMs`).
 */
export class ShutdownDrain {
  /** Set while draining: resolves the drain once nothing is in flight. */
  private drained: (() => void) | undefined;
  private checking = false;

  constructor(
    private readonly lifecycle: RelayLifecycle,
    private readonly sessions: SessionRegistry,
    private readonly membership: Membership,
    private readonly waits: Waits,
    private readonly replies: Replies,
    private readonly settings: DrainSettings,
  ) {}

  private inFlight(): number {
    return this.settings.inFlight();
  }

  /** Drains once; resolves when nothing is in flight any more, or after `drainTimeoutMs`. */
  async run(): Promise<void> {
    if (!this.lifecycle.accepting) return;
    this.lifecycle.beginDrain();
    const startedAt = Date.now();
    const drainMs = this.settings.drainTimeoutMs;
    const done = new Promise<void>(resolve => (this.drained = resolve));
    const reason = RelayErrorMessages.goingAway();
    const goAway = this.replies.codec.encode({ type: FrameType.GoAway, reason, drainMs });
    for (const session of this.sessions.values()) {
      const node = this.membership.nodeOf(session);
      if (node !== undefined) this.membership.moveOff(node);
      session.send(goAway);
    }
    this.settings.observer?.drainStarted({ inFlight: this.inFlight(), nodes: this.membership.size, drainTimeoutMs: drainMs });
    // Requests held in the startup grace: no provider will say HELLO here any more.
    this.waits.failHeld(RelayErrorCode.RELAY_UNAVAILABLE, RelayErrorMessages.relayUnavailable(reason));
    if (this.inFlight() > 0 && drainMs > 0) {
      const timer = setTimeout(() => this.drained?.(), drainMs);
      await done;
      clearTimeout(timer);
    }
    this.settings.observer?.drainEnded({ tookMs: Date.now() - startedAt, left: this.inFlight() });
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
