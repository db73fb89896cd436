import { RelayErrorMessages } from '@wsrelay/protocol';

/** A budget as `/status` shows it. */
export interface BudgetStatus {
  /** What is kept now (bytes). */
  used: number;
  limit: number;
  /** What was refused, shed or evicted for want of room since the relay started. */
  refused: number;
}

/** What one connection may keep of a relay-wide budget it takes from (waits, held calls, retained payloads): a quarter. */
export const CONNECTION_SHARE = 1 / 4;

/** Why `Budget.takeFor()` refused: the connection is at its share, or the relay at its limit. */
export type BudgetRefusal = 'share' | 'full';

/**
 * One relay-wide budget: what the relay keeps of one kind for all its
 * connections together, against a limit. The parts that keep it take and
 * give back; a part that cannot take refuses what would not fit.
 */
export class Budget {
  private kept = 0;
  /** What was refused (or shed, or evicted) for want of room. */
  refused = 0;

  /** What one connection may keep of it (`CONNECTION_SHARE` of the limit), so that no one connection fills it. */
  readonly perConnection: number;

  constructor(readonly limit: number) {
    this.perConnection = Math.floor(limit * CONNECTION_SHARE);
  }

  get used(): number {
    return this.kept;
  }

  /** Whether `n` more fit. */
  fits(n: number): boolean {
    return this.kept + n <= this.limit;
  }

  /** Takes `n` if it fits; otherwise counts a refusal and returns false. */
  take(n: number): boolean {
    if (this.kept + n > this.limit) {
      this.refused++;
      return false;
    }
    this.kept += n;
    return true;
  }

  /**
   * Takes `n` for a connection that keeps `mine` of it already, if that stays
   * within its share (`perConnection`) and the limit; otherwise counts a
   * refusal and says which was in the way (the connection's share first).
   */
  takeFor(mine: number, n: number): BudgetRefusal | undefined {
    if (mine + n > this.perConnection) {
      this.refused++;
      return 'share';
    }
    return this.take(n) ? undefined : 'full';
  }

  /** Counts `n` that is kept whether it fits or not (what the relay cannot refuse, e.g. bytes already written). */
  add(n: number): void {
    this.kept += n;
  }

  give(n: number): void {
    this.kept -= n;
  }

  status(): BudgetStatus {
    return { used: this.kept, limit: this.limit, refused: this.refused };
  }
}

/** The RATE_LIMITED message for a `refusal` of `budget` (option `budgets.<option>`), which keeps `what`. */
export function budgetRefusalMessage(refusal: BudgetRefusal, budget: Budget, what: string, option: string): string {
  return refusal === 'share'
    ? RelayErrorMessages.connectionBudgetShare(what, option, budget.perConnection)
    : RelayErrorMessages.relayBudgetFull(what, option, budget.limit);
}
