import type { RelayError } from '@wsrelay/protocol';

/** Gateway message name of a frame the adapter refused before routing. */
export const REFUSED_EVENT = 'refused';

/** A frame the adapter refused before routing (the gateway's `refused` handler answers it). */
export class Refusal {
  constructor(
    readonly id: number,
    readonly error: RelayError,
  ) {}
}
