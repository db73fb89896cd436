/**
 * Ids from 1 to `max`, in turn, wrapping back to 1 and passing over those
 * still in use (a long-lived request or copy must not be shadowed).
 */
export class IdSequence {
  constructor(
    private readonly max: number,
    /** The id given last (a sequence starts after it). */
    private last = 0,
  ) {}

  /** The next id not in `taken` (a Map or Set of the ids in use). */
  next(taken: { has(id: number): boolean }): number {
    do {
      this.last = this.last >= this.max ? 1 : this.last + 1;
    } while (taken.has(this.last));
    return this.last;
  }
}
