import { CloseCode, frameOf, messageLength, RelayErrorMessages, type WebSocketMessage, wholeMessage } from '@wsrelay/protocol';
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import type { ConnectionIdentity } from '../auth/relay-auth.service.js';
import type { RelayObserver } from '../observe/relay-observer.js';
import { nextBeatSlice } from './beat-slices.js';
import type { TokenBucket } from './token-bucket.js';

/** How long a slow consumer closed with SLOW_CONSUMER has to read up to the close frame before it is cut. */
const SLOW_CONSUMER_GRACE_MS = 5000;
/**
 * Frames held for one writev at most: a tick that writes more (a read of many
 * frames) sends them 16 at a time, so the next process starts on the first
 * while this one still works on the rest, instead of waiting for all of them.
 */
const FLUSH_FRAMES = 16;

/** Hears of sessions that writes leave backed up: the relay-wide unsent budget. */
export interface UnsentWatch {
  /** A write left `session` over its `slowBytes`, with `buffered` bytes unsent. */
  backedUp(session: Session, buffered: number): void;
  /** `session` was closed as a slow consumer: what it holds goes with it. */
  released(session: Session): void;
  /**
   * How long `session`, just closed as a slow consumer, may keep what it did
   * not read (so that one that reads again finds its close code): the full
   * grace while the connections in theirs keep little, 0 (cut at once) when
   * they already keep much.
   */
  graceFor(session: Session, graceMs: number): number;
}

/** What a session's writes may leave unsent. */
export interface SendBudget {
  /** Unsent bytes past which the connection is passed over for new routing. */
  slowBytes: number;
  /** Unsent bytes past which it is closed as a slow consumer. */
  budgetBytes: number;
  /** Told when a write leaves it past `slowBytes` (the relay's own budget for all connections). */
  watch?: UnsentWatch;
}

/** What the session uses of the TCP socket under its WebSocket. */
interface RawSocket {
  write(bytes: Uint8Array): boolean;
  cork(): void;
  uncork(): void;
}

/** A WebSocket PING from the server: FIN + opcode 0x9, no mask, no payload. */
const PING_FRAME = Buffer.from([0x89, 0x00]);

const UNBOUNDED: SendBudget = { slowBytes: Infinity, budgetBytes: Infinity };

/**
 * One WebSocket connection to the relay: its socket, who it is (the identity
 * its token established), what it may leave unsent, its frame rate and its
 * liveness. What it announces, asks and is given is kept by the units that
 * route it, not here.
 */
export class Session {
  readonly sessionId = randomUUID();
  /** Sent a frame, ping or pong since the last heartbeat beat. */
  heard = true;
  /**
   * Answers the relay is owed (REQUESTs and handler-acked EVENT copies given
   * to it): each lets one RESPONSE or HANDLED in without a rate token; past
   * them (streamed results, or answers nobody asked for) answers take tokens.
   */
  owed = 0;
  /** Bytes handed to its socket so far: with what is still unsent, how much it has taken (see UnsentBudget). */
  written = 0;
  /** Heartbeat beats (half intervals) in a row without hearing from the node. */
  silentBeats = 0;
  /** Which slice of each heartbeat beat looks at it (see Heartbeat). */
  readonly beatSlice = nextBeatSlice();
  /** Closed for going over its byte budget (or the relay's): nothing more is written to it. */
  overBudget = false;
  /** Why it was closed as a slow consumer. */
  slowConsumerReason: string | undefined;
  /** It connected as a server (as its first token said; a refresh does not change what it is counted as). */
  readonly connectedAsServer: boolean;
  /** Its TCP writes are held until the end of this tick (see send()). */
  private corked = false;
  private heldFrames = 0;
  /**
   * The TCP socket under the WebSocket, written to directly: with no
   * extension negotiated, `ws` sends a binary message as its header and its
   * bytes and nothing else, and the relay's frames come with their header.
   * Undefined when `ws` must frame them (permessage-deflate).
   */
  private readonly raw: RawSocket | undefined;

  constructor(
    readonly socket: WebSocket,
    /** Replaced (never mutated) by an in-band token refresh. */
    public identity: ConnectionIdentity,
    private readonly budget: SendBudget = UNBOUNDED,
    /** The frame rate limit, when the relay has one. */
    readonly rate?: TokenBucket,
    /** Hears of every frame written to it. */
    private readonly observer?: Pick<RelayObserver, 'frameOut'>,
  ) {
    this.connectedAsServer = identity.isServer;
    const raw = (socket as WebSocket & { _socket?: RawSocket })._socket;
    this.raw = socket.extensions === '' && raw !== undefined && typeof raw.write === 'function' ? raw : undefined;
  }

  get tenant(): string {
    return this.identity.tenant;
  }

  /** Backed up: more than `slowBytes` unsent. */
  get slow(): boolean {
    return this.socket.bufferedAmount > this.budget.slowBytes;
  }

  get isOpen(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  /**
   * Writes a frame encoded with its WebSocket header (the relay's codec
   * writes one) if the socket is still open: as one piece to the TCP socket,
   * or through `ws` when it must frame it. Past the byte budget
   * (a consumer that stopped reading) the connection is closed with
   * SLOW_CONSUMER and written to no more, so it cannot grow the relay's memory;
   * past `slowBytes`, the relay-wide watch hears of it.
   */
  send(message: WebSocketMessage): void {
    if (this.socket.readyState !== WebSocket.OPEN || this.overBudget) return;
    if (!this.corked) this.cork();
    if (this.raw !== undefined) {
      if (message instanceof Uint8Array) this.raw.write(message);
      else for (const piece of message) this.raw.write(piece);
      if (++this.heldFrames >= FLUSH_FRAMES) {
        this.heldFrames = 0;
        this.raw.uncork();
        this.raw.cork();
      }
    } else this.socket.send(frameOf(wholeMessage(message)));
    this.observer?.frameOut(message);
    this.written += messageLength(message);
    const buffered = this.socket.bufferedAmount;
    if (buffered <= this.budget.slowBytes) return;
    if (buffered > this.budget.budgetBytes) this.closeAsSlowConsumer(RelayErrorMessages.slowConsumer(buffered, this.budget.budgetBytes));
    else this.budget.watch?.backedUp(this, buffered);
  }

  /**
   * A heartbeat ping, if the socket is still open: an unmasked PING without
   * payload (two bytes, the same for every connection) written to the TCP
   * socket as it is, or through `ws` when it frames.
   */
  ping(): void {
    if (this.socket.readyState !== WebSocket.OPEN || this.overBudget) return;
    if (this.raw !== undefined) this.raw.write(PING_FRAME);
    else this.socket.ping();
  }

  /** Closes it with SLOW_CONSUMER (`reason`), and writes to it no more. */
  closeAsSlowConsumer(reason: string): void {
    if (this.overBudget) return;
    this.overBudget = true;
    this.slowConsumerReason = reason;
    const graceMs = this.budget.watch?.graceFor(this, SLOW_CONSUMER_GRACE_MS) ?? SLOW_CONSUMER_GRACE_MS;
    this.budget.watch?.released(this);
    this.socket.close(CloseCode.SLOW_CONSUMER, reason);
    // The close frame waits behind what it did not read: if it never reads, cut.
    if (graceMs === 0) this.socket.terminate();
    else setTimeout(() => this.socket.terminate(), graceMs).unref();
  }

  /** Every frame written to it in this tick leaves in one writev, not one syscall each. */
  private cork(): void {
    const raw = this.raw ?? (this.socket as WebSocket & { _socket?: RawSocket })._socket;
    if (raw === undefined) return;
    this.corked = true;
    raw.cork();
    process.nextTick(() => {
      this.corked = false;
      this.heldFrames = 0;
      raw.uncork();
    });
  }
}
