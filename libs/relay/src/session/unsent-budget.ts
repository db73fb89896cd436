import { RelayErrorMessages } from '@wsrelay/protocol';
import type { Budget } from '../internal/budget.js';
import type { Session, UnsentWatch } from './session.js';

/**
 * The relay-wide budget of bytes written to connections and not yet sent.
 * A write that leaves a connection backed up (past its slow threshold)
 * updates its count at once; a sweep (each heartbeat beat) re-reads every
 * connection, so the count also follows those that drained, and those under
 * the threshold. A connection is stalled while it is backed up, or while its
 * unsent bytes make no progress from one sweep to the next (they were there
 * at the previous sweep and did not decrease): many connections that stop
 * reading just under the threshold stall too. Over the budget, stalled
 * connections are closed as slow consumers, the one stalled longest first
 * (then the largest), until it is under again. Nothing is done per write to
 * a connection that keeps up.
 */
export class UnsentBudget implements UnsentWatch {
  /** Each session's unsent bytes as last seen (sessions with none are not kept). */
  private readonly counted = new Map<Session, number>();
  /** What each session had taken at the last sweep (sessions with nothing unsent then are not kept). */
  private swept = new Map<Session, number>();
  /** When the last sweep ran (epoch ms). */
  private lastSweep: number;
  /** Bytes that connections closed as slow consumers keep during their grace (see graceFor). */
  private graceBytes = 0;
  /** Stalled sessions, each with since when (epoch ms). */
  private readonly stalled = new Map<Session, number>();

  constructor(
    private readonly budget: Budget,
    private readonly now: () => number = Date.now,
  ) {
    this.lastSweep = now();
  }

  backedUp(session: Session, buffered: number): void {
    if (!this.stalled.has(session)) this.stalled.set(session, this.now());
    this.count(session, buffered);
    if (this.budget.used > this.budget.limit) this.shed();
  }

  /**
   * Connections closed as slow consumers keep what they did not read for a
   * grace, outside the count; all of them together at most half the budget
   * (or the one connection in its grace, however much it keeps). Past that,
   * one is cut at once (its close code does not reach it).
   */
  graceFor(session: Session, graceMs: number): number {
    const bytes = session.socket.bufferedAmount;
    if (this.graceBytes > 0 && this.graceBytes + bytes > this.budget.limit / 2) return 0;
    this.graceBytes += bytes;
    session.socket.once('close', () => (this.graceBytes -= bytes));
    return graceMs;
  }

  released(session: Session): void {
    this.forget(session);
  }

  /** A session is gone. */
  forget(session: Session): void {
    this.count(session, 0);
    this.stalled.delete(session);
    this.swept.delete(session);
  }

  /** When `session` stalled (epoch ms), or undefined while it keeps up. */
  stalledSince(session: Session): number | undefined {
    return this.stalled.get(session);
  }

  /** Sessions stalled now: backed up, or making no progress. */
  get stalledCount(): number {
    return this.stalled.size;
  }

  /**
   * Re-reads every session: the exact count; sessions backed up, or that
   * held unsent bytes at the last sweep and took none of them since (how
   * much a session has taken is what was written to it less what is still
   * unsent), are stalled (since then), the others no longer; and the budget
   * is enforced. A connection that reads, however slowly, is not stalled.
   */
  sweep(sessions: Iterable<Session>): void {
    const now = this.now();
    const swept = new Map<Session, number>();
    for (const session of sessions) {
      if (session.overBudget) continue;
      const bytes = session.socket.bufferedAmount;
      // Nothing unsent, nothing counted, not stalled (most connections, most of the time): nothing to do.
      if (bytes === 0 && !this.tracks(session)) continue;
      this.count(session, bytes);
      const taken = session.written - bytes;
      if (bytes > 0) swept.set(session, taken);
      const before = this.swept.get(session);
      const stuck = before !== undefined && bytes > 0 && taken <= before;
      if (!stuck && !session.slow) this.stalled.delete(session);
      else if (!this.stalled.has(session)) this.stalled.set(session, stuck ? this.lastSweep : now);
    }
    this.swept = swept;
    this.lastSweep = now;
    if (this.budget.used > this.budget.limit) this.shed();
  }

  /** Closes stalled sessions, the one stalled longest first (then the largest), until the budget holds (or none is left). */
  private shed(): void {
    const order = [...this.stalled].sort(([a, since], [b, other]) => since - other || this.bytesOf(b) - this.bytesOf(a));
    for (const [session] of order) {
      if (this.budget.used <= this.budget.limit) return;
      this.budget.refused++;
      // Forgets it (released): its bytes leave the count, though the socket keeps them until it is cut.
      session.closeAsSlowConsumer(RelayErrorMessages.relayUnsentOver(this.bytesOf(session), this.budget.limit));
    }
  }

  private tracks(session: Session): boolean {
    return (this.counted.size > 0 && this.counted.has(session)) || (this.stalled.size > 0 && this.stalled.has(session));
  }

  private bytesOf(session: Session): number {
    return this.counted.get(session) ?? 0;
  }

  private count(session: Session, bytes: number): void {
    const was = this.counted.get(session) ?? 0;
    if (bytes === was) return;
    this.budget.add(bytes - was);
    if (bytes === 0) this.counted.delete(session);
    else this.counted.set(session, bytes);
  }
}
