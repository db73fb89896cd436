import { quote, RelayError, RelayErrorCode, RelayErrorMessages } from '@wsrelay/protocol';
import type { ResponseStream } from './response-stream.js';

/**
 * The most of a call's time, at its end, in which a CANCEL is taken for the
 * relay's TIMEOUT (half the call's timeout when that is less). CANCEL does
 * not say why: the relay times a call from before the REQUEST reached this
 * process, so its CANCEL at the deadline arrives before the deadline as this
 * process counts it, by as long as the REQUEST waited here (a busy event
 * loop, a collection): up to a second of that is still taken for a timeout.
 */
const DEADLINE_SLACK_MS = 1000;
const DEADLINE_SLACK_SHARE = 0.5;

/** Why a call's handler is told to stop (an abort reason), worded here and nowhere else. */
const abortReasons = {
  cancelled: (pattern: string) =>
    new RelayError(RelayErrorCode.CLOSED, `The caller of ${quote(pattern)} cancelled the call, or its connection closed.`),
  timeout: (pattern: string, timeoutMs: number) => new RelayError(RelayErrorCode.TIMEOUT, RelayErrorMessages.timeout(pattern, timeoutMs)),
  disconnected: (pattern: string) => new RelayError(RelayErrorCode.PROVIDER_DISCONNECTED, RelayErrorMessages.providerDisconnected(pattern)),
};

/**
 * A request being handled. `subscription` is set once the handler's stream
 * runs. Its `signal` (the context's) is made when first asked for, so a
 * handler that never looks at it costs no AbortController and no timer; the
 * deadline's timer runs only until the call settles.
 */
export class InFlight {
  cancelled = false;
  /** Called once as it settles (`failed`: answered with an error); a traced request's span ends so. */
  ended?: (failed: boolean) => void;
  /** Its answer's RESPONSEs (set as it starts). */
  subscription?: Pick<ResponseStream, 'unsubscribe' | 'grant'>;
  /** When the caller stops waiting, in this process's `Date.now()` clock. */
  readonly deadline: number;
  private controller?: AbortController;
  private timer?: NodeJS.Timeout;
  /** Why the call was stopped, for a signal asked for afterwards too. */
  private reason?: RelayError;
  private settled = false;

  constructor(
    readonly pattern: string,
    private readonly timeoutMs: number,
  ) {
    this.deadline = Date.now() + timeoutMs;
  }

  /** Aborted when the caller cancels or goes away, at the deadline, or when this provider's relay connection is lost. */
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.reason !== undefined) this.controller.abort(this.reason);
      else if (!this.settled) this.armDeadline();
    }
    return this.controller.signal;
  }

  /** Why the handler was told to stop, once it was: CLOSED (its caller cancelled), TIMEOUT or PROVIDER_DISCONNECTED. */
  get stopCode(): RelayErrorCode | undefined {
    return this.reason?.code;
  }

  /** The relay sent CANCEL: the caller left, or its time is up. */
  callerCancelled(): void {
    const slack = Math.min(DEADLINE_SLACK_MS, this.timeoutMs * DEADLINE_SLACK_SHARE);
    const late = Date.now() >= this.deadline - slack;
    this.stop(late ? abortReasons.timeout(this.pattern, this.timeoutMs) : abortReasons.cancelled(this.pattern));
  }

  /** The relay session it came in on is gone, or the provider is closing. */
  connectionLost(): void {
    this.stop(abortReasons.disconnected(this.pattern));
  }

  /** Answered (or failed): the signal stays as it is, the deadline's timer goes. */
  settle(): void {
    this.settled = true;
    if (this.timer === undefined) return;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** The handler stops: its signal aborts with `reason`, then its stream is unsubscribed. */
  private stop(reason: RelayError): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.abort(reason);
    this.subscription?.unsubscribe();
  }

  private abort(reason: RelayError): void {
    if (this.settled || this.reason !== undefined) return;
    this.reason = reason;
    this.settle();
    this.controller?.abort(reason);
  }

  private armDeadline(): void {
    const left = this.deadline - Date.now();
    // The process may end while a call waits: the timer must not keep it alive.
    this.timer = setTimeout(() => this.abort(abortReasons.timeout(this.pattern, this.timeoutMs)), Math.max(0, left)).unref();
  }
}
