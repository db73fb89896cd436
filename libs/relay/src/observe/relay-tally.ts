import type { WebSocketMessage } from '@wsrelay/protocol';
import { LatencyBuckets } from './latency-buckets.js';
import {
  type AcceptedConnection,
  type AnnouncedNode,
  type BackplaneChange,
  type ClusterMember,
  type ConnectionRole,
  type DrainEnd,
  type DrainStart,
  EVENT_DROPS,
  type EventDrop,
  type FrameSender,
  type GoneNode,
  type LostMember,
  REFUSAL_REASONS,
  type RefusalReason,
  type RefusedConnection,
  type RelayLifecycleListener,
  type RelayObserver,
  REQUEST_OUTCOMES,
  type RequestOutcome,
  type SlowConsumer,
} from './relay-observer.js';

/** Slots of the per-frame-type counts (frame types are small integers). */
export const FRAME_TYPE_SLOTS = 32;

/** Where a refusal happened: at the HTTP upgrade, or of a frame on an open connection. */
export const REFUSAL_STAGES: readonly string[] = ['upgrade', 'frame'];
const UPGRADE = 0;
const FRAME = REFUSAL_REASONS.length;

/** Connection roles by their slot in `RelayTally.open` and `opened`. */
export const CONNECTION_ROLES: readonly ConnectionRole[] = ['client', 'server'];
const roleSlot = (role: ConnectionRole): number => (role === 'server' ? 1 : 0);

/**
 * The frame type of a message the relay writes (its WebSocket header, then a
 * MessagePack array whose first value is the type), read from its first
 * bytes; 0 when it is not one.
 */
export function frameTypeOf(message: WebSocketMessage): number {
  const bytes = message instanceof Uint8Array ? message : message[0];
  if (bytes === undefined || bytes.length < 2) return 0;
  const head = bytes[1] < 126 ? 2 : bytes[1] === 126 ? 4 : 10;
  const b = bytes[head];
  const at = b >= 0x91 && b <= 0x9f ? head + 1 : b === 0xdc ? head + 3 : b === 0xdd ? head + 5 : -1;
  const type = at < 0 ? 0 : (bytes[at] ?? 0);
  return type < FRAME_TYPE_SLOTS ? type : 0;
}

/**
 * The relay's observer: every point counted in preallocated numbers (what
 * the metrics read at scrape time), and the lifecycle points passed on to
 * listeners (the logs). A traffic point is an increment or two; only a
 * refused frame is passed on too (a listener limits what it does with a flood).
 */
export class RelayTally implements RelayObserver {
  /** Frames taken in and written, by frame type. */
  readonly framesIn = new Float64Array(FRAME_TYPE_SLOTS);
  readonly framesOut = new Float64Array(FRAME_TYPE_SLOTS);
  /** Requests of this relay's nodes that ended, by RequestOutcome. */
  readonly requests = new Float64Array(REQUEST_OUTCOMES.length);
  /** How long routed requests took, from routing to their end. */
  readonly durations = new LatencyBuckets();
  routed = 0;
  published = 0;
  /** Dropped events and copies, by EventDrop. */
  readonly dropped = new Float64Array(EVENT_DROPS.length);
  redelivered = 0;
  /** Refusals by stage and reason: `[stage * REFUSAL_REASONS.length + reason]` (see `refusals()`). */
  private readonly refused = new Float64Array(REFUSAL_STAGES.length * REFUSAL_REASONS.length);
  /** Open connections and connections opened, by role (client, server). */
  readonly open = new Float64Array(2);
  readonly opened = new Float64Array(2);
  slowConsumerCloses = 0;
  membersJoined = 0;
  membersLost = 0;
  backplaneLosses = 0;
  private listeners: RelayLifecycleListener[] = [];

  /** Lifecycle points go to `listener` too, until the returned function is called. */
  listen(listener: RelayLifecycleListener): () => void {
    this.listeners = [...this.listeners, listener];
    return () => {
      this.listeners = this.listeners.filter(l => l !== listener);
    };
  }

  /** Refusals so far at `stage` (0 upgrade, 1 frame: see REFUSAL_STAGES) for `reason`. */
  refusals(stage: number, reason: RefusalReason): number {
    return this.refused[stage * REFUSAL_REASONS.length + reason];
  }

  frameIn(type: number): void {
    this.framesIn[type]++;
  }

  frameOut(message: WebSocketMessage): void {
    this.framesOut[frameTypeOf(message)]++;
  }

  frameRefused(reason: RefusalReason, code: string, message: string, from: FrameSender): void {
    this.refused[FRAME + reason]++;
    // A flood of them can come: no closure per frame here.
    const listeners = this.listeners;
    for (let i = 0; i < listeners.length; i++) {
      try {
        listeners[i].frameRefused?.(reason, code, message, from);
      } catch {
        // As in tell().
      }
    }
  }

  requestRouted(): void {
    this.routed++;
  }

  requestSettled(outcome: RequestOutcome, routedAt: number): void {
    this.requests[outcome]++;
    this.durations.observe(performance.now() - routedAt);
  }

  requestFailed(outcome: RequestOutcome): void {
    this.requests[outcome]++;
  }

  eventPublished(): void {
    this.published++;
  }

  eventDropped(reason: EventDrop, copies: number): void {
    this.dropped[reason] += copies;
  }

  eventRedelivered(): void {
    this.redelivered++;
  }

  connectionAccepted(c: AcceptedConnection): void {
    const slot = roleSlot(c.role);
    this.open[slot]++;
    this.opened[slot]++;
    this.tell(l => l.connectionAccepted?.(c));
  }

  connectionClosed(role: ConnectionRole): void {
    this.open[roleSlot(role)]--;
  }

  connectionRefused(c: RefusedConnection): void {
    this.refused[UPGRADE + c.reason]++;
    this.tell(l => l.connectionRefused?.(c));
  }

  nodeAnnounced(n: AnnouncedNode): void {
    this.tell(l => l.nodeAnnounced?.(n));
  }

  nodeGone(n: GoneNode): void {
    this.tell(l => l.nodeGone?.(n));
  }

  slowConsumerClosed(c: SlowConsumer): void {
    this.slowConsumerCloses++;
    this.tell(l => l.slowConsumerClosed?.(c));
  }

  drainStarted(d: DrainStart): void {
    this.tell(l => l.drainStarted?.(d));
  }

  drainEnded(d: DrainEnd): void {
    this.tell(l => l.drainEnded?.(d));
  }

  clusterMemberJoined(m: ClusterMember): void {
    this.membersJoined++;
    this.tell(l => l.clusterMemberJoined?.(m));
  }

  clusterMemberLost(m: LostMember): void {
    this.membersLost++;
    this.tell(l => l.clusterMemberLost?.(m));
  }

  backplaneUp(b: BackplaneChange): void {
    this.tell(l => l.backplaneUp?.(b));
  }

  backplaneDown(b: BackplaneChange): void {
    this.backplaneLosses++;
    this.tell(l => l.backplaneDown?.(b));
  }

  /** A listener that throws must not break what the relay was doing. */
  private tell(call: (listener: RelayLifecycleListener) => void): void {
    for (const listener of this.listeners) {
      try {
        call(listener);
      } catch {
        // A log that failed: nothing the relay can do about it here.
      }
    }
  }
}
