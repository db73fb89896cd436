/** A budget as `/status` shows it. */
export interface BudgetStatus {
  /** What is kept now (bytes). */
  used: number;
  limit: number;
  /** What was refused, shed or evicted for want of room since the relay started. */
  refused: number;
}

/**
 * One relay-wide budget: what the relay keeps of one kind for all its
 * connections together, against a limit. The parts that keep it take and
 * give back; a part that cannot take refuses what would not fit.
 */
export class Budget {
  private kept = 0;
  /** What was refused (or shed, or evicted) for want of room. */
  refused = 0;

  constructor(readonly limit: number) {}

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
