import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import type { ConnectionIdentity } from './auth/relay-auth.service.js';
import type { RemoteNode, RemoteRelay } from './cluster/remote.js';
import type { Delivery, PendingEvent } from './routing/event-acks.js';
import { CloseCode, type Frame, type RequestFrame, RelayErrorMessages } from '@wsrelay/protocol';
import { GuardMemo } from './guards/guard-memo.js';
import type { RefusedFrame } from './relay-ws.adapter.js';
import type { World } from './routing/world.js';

/**
 * A request routed through the relay, from its caller to its provider. Either
 * end may be on another relay: a caller there is its `RemoteRelay` (which
 * forwarded it), a provider there is a `RemoteNode`.
 */
export interface PendingRequest {
  /** This relay's id for the delivery to the provider (the forward id when the provider is remote). */
  readonly rid: number;
  /** The id the caller chose (the caller's relay's forward id when the caller is remote). */
  readonly callerRequestId: number;
  readonly caller: Session | RemoteRelay;
  readonly provider: Session | RemoteNode;
  readonly pattern: string;
  readonly timeoutMs: number;
  timer: NodeJS.Timeout | undefined;
}

/**
 * A WAIT frame the relay answers once a provider of the pattern is online,
 * or (with `request`) a request held in the relay's startup grace until one is.
 */
export interface PendingWait {
  readonly id: number;
  readonly session: Session;
  readonly pattern: string;
  timer: NodeJS.Timeout | undefined;
  /** A held request: routed when a provider comes; `expiresAt` is its own deadline (epoch ms). */
  readonly request?: { readonly frame: RequestFrame; readonly expiresAt: number };
}

/** How long a slow consumer closed with SLOW_CONSUMER has to read up to the close frame before it is cut. */
const SLOW_CONSUMER_GRACE_MS = 5000;

/** A frame (or a refusal of one) that arrived while the connection's HELLO was being handled, as the adapter dispatches it. */
export type HeldFrame = Frame | RefusedFrame;

/** One WebSocket connection to the relay, and what it announced. */
export class Session {
  readonly sessionId = randomUUID();
  /** Set by HELLO; until then the session is not established. */
  nodeId: string | undefined;
  /** When HELLO was accepted: the older claim to a node id wins across the cluster. */
  since = 0;
  service: string | null = null;
  patterns: string[] = [];
  /** `patterns` as a set, for targeted requests. */
  serves = new Set<string>();
  events: string[] = [];
  queue: string | null = null;
  /** Verified token claims as MessagePack, encoded once per connection (none without auth). */
  claims: Uint8Array | null;
  /** Sent a frame, ping or pong since the last heartbeat beat. */
  heard = true;
  /** Heartbeat beats (half intervals) in a row without hearing from the node. */
  silentBeats = 0;
  /** Frames of this connection inside Nest's pipeline (guards, handler): the hot path waits for them, to keep frames in order. */
  inNest = 0;
  /** What the gateway's guards let through on this connection, for the adapter's hot path. */
  readonly memo = new GuardMemo();
  badFrames = 0;
  handshakeTimer: NodeJS.Timeout | undefined;
  /** Frames that wait while HELLO is handled (set only then), dispatched in order after it. */
  held: HeldFrame[] | undefined;
  /** TOKEN_EXPIRING, then the close at expiry. */
  expiryTimer: NodeJS.Timeout | undefined;
  /** Token bucket of the rate limit. */
  tokens = -1;
  refilledAt = 0;
  /** Requests this session made, by the caller's id. */
  readonly outbound = new Map<number, PendingRequest>();
  /** Requests routed to this session, by the relay's id. */
  readonly inbound = new Map<number, PendingRequest>();
  readonly waits = new Map<number, PendingWait>();
  /** Events this session emitted with handler acks, by its id (made on first use: most connections never do). */
  private emitted: Map<number, PendingEvent> | undefined;
  /** Payload bytes its unanswered handler-acked events keep at the relay. */
  retainedEventBytes = 0;
  /** Payload bytes of its requests held in the relay's startup grace. */
  heldRequestBytes = 0;
  /** Copies of events with handler acks given to this session. */
  deliveries: Set<Delivery> | undefined;
  /** Ids of copies it got for other relays' events. */
  relayed: Set<number> | undefined;

  constructor(
    readonly socket: WebSocket,
    public identity: ConnectionIdentity,
    /** The tenant's routing state: nothing outside it is visible to this session. */
    readonly world: World,
    /** Unsent bytes past which the connection is passed over for new routing. */
    private readonly slowBytes = Infinity,
    /** Unsent bytes past which it is closed as a slow consumer. */
    private readonly budgetBytes = Infinity,
  ) {
    this.claims = identity.encodedClaims;
  }

  /** Closed for going over its byte budget: nothing more is written to it. */
  overBudget = false;
  /** Its TCP writes are held until the end of this tick (see send()). */
  private corked = false;

  /** In routing: said HELLO and holds its node id (not after a DRAIN, a lost id or the relay's drain). */
  get routed(): boolean {
    return this.nodeId !== undefined && this.world.nodes.get(this.nodeId) === this;
  }

  /** Backed up: more than `slowBytes` unsent. */
  get slow(): boolean {
    return this.socket.bufferedAmount > this.slowBytes;
  }

  /** Takes one frame from the token bucket; false when over the rate. */
  take(perSecond: number, burst: number): boolean {
    const now = Date.now();
    if (this.tokens < 0) {
      this.tokens = burst;
    } else if (now !== this.refilledAt) {
      this.tokens = Math.min(burst, this.tokens + ((now - this.refilledAt) * perSecond) / 1000);
    }
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Requests, WAITs and handler-acked events this session has in flight. */
  get inFlight(): number {
    return this.outbound.size + this.waits.size + (this.emitted?.size ?? 0);
  }

  get pendingEvents(): Map<number, PendingEvent> {
    return (this.emitted ??= new Map());
  }

  get hasPendingEvents(): boolean {
    return this.emitted !== undefined && this.emitted.size > 0;
  }

  get established(): boolean {
    return this.nodeId !== undefined;
  }

  get isOpen(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  /**
   * Writes an encoded frame if the socket is still open. Past the byte budget
   * (a consumer that stopped reading) the connection is closed with
   * SLOW_CONSUMER and written to no more, so it cannot grow the relay's memory.
   */
  send(bytes: Uint8Array): void {
    if (this.socket.readyState !== WebSocket.OPEN || this.overBudget) return;
    if (!this.corked) this.cork();
    this.socket.send(bytes);
    const buffered = this.socket.bufferedAmount;
    if (buffered > this.budgetBytes) {
      this.overBudget = true;
      this.socket.close(CloseCode.SLOW_CONSUMER, RelayErrorMessages.slowConsumer(buffered, this.budgetBytes));
      // The close frame waits behind what it did not read: if it never reads, cut.
      setTimeout(() => this.socket.terminate(), SLOW_CONSUMER_GRACE_MS).unref();
    }
  }

  /** Every frame written to it in this tick leaves in one writev, not one syscall each. */
  private cork(): void {
    const raw = (this.socket as WebSocket & { _socket?: { cork(): void; uncork(): void } })._socket;
    if (raw === undefined) return;
    this.corked = true;
    raw.cork();
    process.nextTick(() => {
      this.corked = false;
      raw.uncork();
    });
  }
}

const SESSION = Symbol('wsrelay:session');

type WithSession = WebSocket & { [SESSION]?: Session };

export function attachSession(socket: WebSocket, session: Session): void {
  (socket as WithSession)[SESSION] = session;
}

export function sessionOf(socket: WebSocket): Session | undefined {
  return (socket as WithSession)[SESSION];
}
