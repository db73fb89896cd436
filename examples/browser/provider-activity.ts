import { EventEmitter } from 'node:events';

/** One `slow` call as its handler saw it. */
export interface SlowCallReport {
  /** The job id the page sent. */
  id: string;
  /** The calling node (the page's client), as the relay named it. */
  callerId: string | null;
  /** Time since the handler started. */
  afterMs: number;
  /** Why the call's signal aborted (a RelayError code), when it did. */
  reason?: string;
}

/**
 * What the provider's `slow` handler went through, for whoever runs the
 * example in-process (the browser test listens here): `started` as a call
 * begins, `cancelled` once its `ctx.signal` aborted.
 */
export class ProviderActivity extends EventEmitter<{ started: [SlowCallReport]; cancelled: [SlowCallReport] }> {}
