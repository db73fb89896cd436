import { RelayError, RelayErrorCode, RelayErrorMessages } from '@wsrelay/protocol';

/**
 * What one connection may have in flight (requests, WAITs, handler-acked
 * events), counted by the units that hold them.
 */
export class InFlightLimit<K> {
  private readonly counters: Array<(key: K) => number> = [];

  constructor(private readonly max: number) {}

  /** Adds a unit's count of what `key` has in flight. */
  counts(counter: (key: K) => number): this {
    this.counters.push(counter);
    return this;
  }

  /** What `key` has in flight, in all. */
  of(key: K): number {
    let n = 0;
    for (const count of this.counters) n += count(key);
    return n;
  }

  /** Throws RATE_LIMITED when `key` may not start anything more. */
  check(key: K): void {
    if (this.of(key) >= this.max) {
      throw new RelayError(RelayErrorCode.RATE_LIMITED, RelayErrorMessages.tooManyInFlight(this.max));
    }
  }
}
