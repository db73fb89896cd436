import { type Frame, FRAME_NAMES, FrameType, RelayError, RelayErrorCode, RelayErrorMessages } from '@wsrelay/protocol';
import { REFUSED_EVENT, Refusal } from './refused.js';

/** Frames a connection may pipeline behind a HELLO the relay has not handled yet. */
const MAX_HELD_FRAMES = 1024;

const HELLO_EVENT = FRAME_NAMES[FrameType.Hello];

/** A gateway handler as Nest binds it (guards, interceptors and filter included). */
export type NestCallback = (data: unknown, event: string) => unknown;

/** How the intake hands a frame on. */
export interface IntakeRoutes {
  /** The connection said HELLO already (a frame from before has no session to hold for). */
  established(): boolean;
  /** The hot path: true when it took the frame (routed or refused) or answered its refusal, false when Nest must. */
  fast(item: Frame | Refusal): boolean;
  /** Runs a Nest handler; `done` once it has run (guards, filters and all). */
  nest(callback: NestCallback, item: Frame | Refusal, event: string, done: () => void): void;
}

/**
 * One connection's frames on their way in, in order. Nest runs a frame's
 * guards before the previous frame's handler, so a frame pipelined right
 * after HELLO would be judged before HELLO took effect: frames wait until
 * HELLO's handler has run, then go in order. And while any frame of the
 * connection is in Nest's pipeline, later ones follow it there rather than
 * overtake it on the hot path.
 */
export class FrameIntake {
  private inNest = 0;
  /** Frames waiting for HELLO's handler (set only then). */
  private held: Array<Frame | Refusal> | undefined;

  constructor(
    /** Nest's handlers by frame type (0: refused frames). */
    private readonly callbacks: ReadonlyArray<NestCallback | undefined>,
    private readonly routes: IntakeRoutes,
  ) {}

  receive(item: Frame | Refusal): void {
    const held = this.held;
    if (held === undefined) {
      this.deliver(item);
    } else if (held.length < MAX_HELD_FRAMES) {
      held.push(item);
    } else {
      const id = item instanceof Refusal ? item.id : 'id' in item ? item.id : 0;
      this.dispatch(new Refusal(id, new RelayError(RelayErrorCode.RATE_LIMITED, RelayErrorMessages.tooManyBeforeWelcome(MAX_HELD_FRAMES))));
    }
  }

  /** A frame (or refusal) the hot path may take goes there; any other to Nest. */
  private deliver(item: Frame | Refusal): void {
    if (this.inNest > 0 || !this.routes.fast(item)) this.dispatch(item);
  }

  private dispatch(item: Frame | Refusal): void {
    const refused = item instanceof Refusal;
    const event = refused ? REFUSED_EVENT : FRAME_NAMES[item.type];
    const callback = this.callbacks[refused ? 0 : item.type];
    if (callback === undefined) return;
    if (event !== HELLO_EVENT || this.routes.established()) {
      // Counted while in Nest's pipeline: until it has run, later frames must not overtake it on the hot path.
      this.inNest++;
      this.routes.nest(callback, item, event, () => this.inNest--);
      return;
    }
    const held: Array<Frame | Refusal> = [];
    this.held = held;
    this.routes.nest(callback, item, event, () => this.release(held));
  }

  /** HELLO's handler has run: what waited goes on, in order. */
  private release(held: Array<Frame | Refusal>): void {
    this.held = undefined;
    while (held.length > 0) {
      const next = held.shift() as Frame | Refusal;
      // A second HELLO among them holds the rest again (its handler refuses it).
      const again = this.held as Array<Frame | Refusal> | undefined;
      if (again !== undefined) {
        again.push(next, ...held);
        return;
      }
      this.deliver(next);
    }
  }
}
