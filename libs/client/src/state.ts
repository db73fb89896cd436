/**
 * Where a client is:
 * - `idle`: not started, or stopped by a failure retrying cannot fix (PROTOCOL_MISMATCH, a refused HELLO);
 * - `connecting`: the first attempt since `connect()` (token, upgrade, HELLO/WELCOME);
 * - `connected`: a session is established;
 * - `reconnecting`: the session or an attempt ended; waiting for a retry, or retrying;
 * - `closed`: `close()` was called.
 */
export type ClientState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closed';

/**
 * What happens to a client:
 * - `start`: someone wants a session;
 * - `welcomed`: the relay answered WELCOME;
 * - `lost`: the session or the attempt ended, and retrying may help (a GOAWAY too);
 * - `stopped`: it ended, and retrying cannot help;
 * - `close`: `close()` was called.
 */
export type ClientInput = 'start' | 'welcomed' | 'lost' | 'stopped' | 'close';

/** Every transition there is; an input a state does not list is ignored (a late event of an attempt already over). */
export const TRANSITIONS: Readonly<Record<ClientState, Readonly<Partial<Record<ClientInput, ClientState>>>>> = {
  idle: { start: 'connecting', close: 'closed' },
  connecting: { welcomed: 'connected', lost: 'reconnecting', stopped: 'idle', close: 'closed' },
  connected: { lost: 'reconnecting', stopped: 'idle', close: 'closed' },
  reconnecting: { welcomed: 'connected', lost: 'reconnecting', stopped: 'idle', close: 'closed' },
  closed: { start: 'connecting', close: 'closed' },
};

/** A client's state, changed only along TRANSITIONS. */
export class StateMachine {
  private current: ClientState = 'idle';

  get state(): ClientState {
    return this.current;
  }

  /** Applies `input`; false (and no change) when the current state does not take it. */
  fire(input: ClientInput): boolean {
    const next = TRANSITIONS[this.current][input];
    if (next === undefined) return false;
    this.current = next;
    return true;
  }

  is(...states: ClientState[]): boolean {
    return states.includes(this.current);
  }
}
