import { RelayErrorMessages } from '@wsrelay/protocol';
import type { Budget } from '../internal/budget.js';
import type { Session, UnsentWatch } from './session.js';

/**
 * The relay-wide budget of bytes written to connections and not yet sent.
 * A write that leaves a connection backed up (past its slow threshold)
 * updates its count at once; a sweep (each heartbeat beat) re-reads every
 * connection, so the count also follows those that drained. Over the budget,
 * connections that stopped reading are closed as slow consumers, the one
 * stalled longest first, until it is under again. Nothing is done per write
 * to a connection that keeps up.
 */
export class UnsentBudget implements UnsentWatch {
  /** Each session's unsent bytes as last seen (sessions with none are not kept). */
  private readonly counted = new Map<Session, number>();
  /** Backed-up sessions in the order they stalled, each with when (epoch ms). */
  private readonly stalled = new Map<Session, number>();

  constructor(
    private readonly budget: Budget,
    private readonly now: () => number = Date.now,
  ) {}

  backedUp(session: Session, buffered: number): void {
    if (!this.stalled.has(session)) this.stalled.set(session, this.now());
    this.count(session, buffered);
    if (this.budget.used > this.budget.limit) this.shed();
  }

  released(session: Session): void {
    this.forget(session);
  }

  /** A session is gone. */
  forget(session: Session): void {
    this.count(session, 0);
    this.stalled.delete(session);
  }

  /** When `session` stalled (epoch ms), or undefined while it keeps up. */
  stalledSince(session: Session): number | undefined {
    return this.stalled.get(session);
  }

  /** Sessions backed up now. */
  get stalledCount(): number {
    return this.stalled.size;
  }

  /** Re-reads every session: the exact count, sessions that read again are no longer stalled, and the budget is enforced. */
  sweep(sessions: Iterable<Session>): void {
    for (const session of sessions) {
      if (session.overBudget) continue;
      this.count(session, session.socket.bufferedAmount);
      if (!session.slow) this.stalled.delete(session);
      else if (!this.stalled.has(session)) this.stalled.set(session, this.now());
    }
    if (this.budget.used > this.budget.limit) this.shed();
  }

  /** Closes stalled sessions, oldest first, until the budget holds (or none is left). */
  private shed(): void {
    for (const session of this.stalled.keys()) {
      if (this.budget.used <= this.budget.limit) return;
      this.budget.refused++;
      // Forgets it (released): its bytes leave the count, though the socket keeps them until it is cut.
      session.closeAsSlowConsumer(RelayErrorMessages.relayUnsentOver(this.counted.get(session) ?? 0, this.budget.limit));
    }
  }

  private count(session: Session, bytes: number): void {
    const was = this.counted.get(session) ?? 0;
    if (bytes === was) return;
    this.budget.add(bytes - was);
    if (bytes === 0) this.counted.delete(session);
    else this.counted.set(session, bytes);
  }
}
