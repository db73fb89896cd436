import { type AckFrame, type ErrorFrame, FrameType, type NodesFrame, type ResponseFrame } from '@wsrelay/protocol';
import type { Connection, Session } from './connection.js';
import { abortReason, clientErrors } from './errors.js';
import type { OutgoingFrame } from './wire.js';

/** The relay's answers to a correlated frame. */
export type AnswerFrame = ResponseFrame | AckFrame | NodesFrame | ErrorFrame;

/** How long after a deadline the client waits for the relay's own TIMEOUT before it gives up itself. */
export const DEADLINE_GRACE_MS = 1000;
const MAX_ID = 0xffff_ffff;

/** What one exchange sends and does with the answers. */
export interface ExchangeSpec {
  /** For messages: what the exchange is about (a pattern, a subject). */
  pattern: string;
  timeoutMs: number;
  signal?: AbortSignal;
  /** The relay keeps working on it until told otherwise (REQUEST, WAIT): abandoning it sends CANCEL. */
  cancellable: boolean;
  /** The frame, with the id booked, the time left of the deadline and the session it goes out on. */
  build(id: number, timeoutMs: number, session: Session): OutgoingFrame;
  /** Each answer. */
  onFrame(frame: AnswerFrame, exchange: Exchange): void;
  /** Once, when the exchange is over: without an error when it completed. */
  onEnd(err?: unknown): void;
}

/** The exchanges waiting for answers, by id: ids from 1 to 2^32-1, wrapping around past those still in use. */
export class Exchanges {
  private readonly byId = new Map<number, Exchange>();

  /** @param lastId the id booked last (the next is the one after it) */
  constructor(private lastId = 0) {}

  book(exchange: Exchange): number {
    do this.lastId = this.lastId >= MAX_ID ? 1 : this.lastId + 1;
    while (this.byId.has(this.lastId));
    this.byId.set(this.lastId, exchange);
    return this.lastId;
  }

  get(id: number): Exchange | undefined {
    return this.byId.get(id);
  }

  delete(id: number): boolean {
    return this.byId.delete(id);
  }

  /** Ends what went out on `session` (every exchange, without one) with `err`. */
  failAll(err: unknown, session?: Session): void {
    for (const exchange of [...this.byId.values()]) {
      if (session === undefined || exchange.session === session) exchange.finish(err);
    }
  }
}

/**
 * One correlated frame and its answers: waits for a session within its
 * deadline, is booked under an id before its frame is written, and ends
 * once (an answer, an error, its signal, its deadline, the connection).
 */
export class Exchange {
  id = 0;
  session: Session | undefined;
  private over = false;
  private readonly timer: ReturnType<typeof setTimeout>;
  private readonly startedAt = Date.now();
  private readonly aborted = () => this.abandon(abortReason(this.spec.signal));

  constructor(
    private readonly connection: Connection,
    private readonly exchanges: Exchanges,
    private readonly spec: ExchangeSpec,
  ) {
    const { timeoutMs, signal, pattern } = spec;
    // The relay answers TIMEOUT at the deadline; this is for a relay that never does.
    this.timer = setTimeout(() => this.abandon(clientErrors.timeout(pattern, timeoutMs)), timeoutMs + DEADLINE_GRACE_MS);
    if (signal?.aborted) {
      this.finish(abortReason(signal));
      return;
    }
    signal?.addEventListener('abort', this.aborted);
    const session = connection.current;
    if (session !== undefined) this.send(session);
    else
      connection.ready(timeoutMs, signal).then(
        s => this.send(s),
        (err: unknown) => this.finish(err),
      );
  }

  get ended(): boolean {
    return this.over;
  }

  private send(session: Session): void {
    if (this.over) return;
    const left = Math.max(1, this.spec.timeoutMs - (Date.now() - this.startedAt));
    this.id = this.exchanges.book(this);
    this.session = session;
    let frame: OutgoingFrame;
    try {
      frame = this.spec.build(this.id, left, session);
    } catch (err) {
      this.finish(err);
      return;
    }
    if (!this.connection.send(frame, session)) this.finish(clientErrors.unavailable('the connection closed'));
  }

  /** An answer from the relay. */
  answer(frame: AnswerFrame): void {
    if (!this.over) this.spec.onFrame(frame, this);
  }

  /** Sends `frame` on the exchange's session, if it is still waiting for answers. */
  sendOnSession(frame: OutgoingFrame): void {
    if (!this.over && this.session !== undefined) this.connection.send(frame, this.session);
  }

  /** The caller stopped listening: the relay is told (CANCEL) when it still works on it. */
  abandon(err?: unknown): void {
    if (this.over) return;
    if (this.spec.cancellable && this.id !== 0) this.sendOnSession({ type: FrameType.Cancel, id: this.id });
    this.finish(err);
  }

  /** Ends the exchange: no more answers are taken for its id. */
  finish(err?: unknown): void {
    if (this.over) return;
    this.over = true;
    clearTimeout(this.timer);
    this.spec.signal?.removeEventListener('abort', this.aborted);
    if (this.id !== 0) this.exchanges.delete(this.id);
    this.spec.onEnd(err);
  }
}
