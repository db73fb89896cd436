/**
 * Where one relay connection is:
 * - `idle`: not started, or stopped (the node is leaving, or a failure retrying cannot fix);
 * - `connecting`: fetching a token and opening the WebSocket (the HTTP upgrade);
 * - `handshaking`: open, HELLO sent, waiting for WELCOME;
 * - `connected`: a session is established;
 * - `waiting`: a retry is scheduled (backoff);
 * - `closed`: close() was called.
 */
export type ConnectionState = 'idle' | 'connecting' | 'handshaking' | 'connected' | 'waiting' | 'closed';

/**
 * What happens to a connection:
 * - `start`: someone wants a session;
 * - `opened`: the socket opened (HELLO goes out);
 * - `welcomed`: the relay answered WELCOME;
 * - `failed`: the attempt or the session ended, and retrying may help;
 * - `retry`: the backoff elapsed;
 * - `moved`: the relay sent GOAWAY and a new session opens at once;
 * - `stopped`: the attempt or session ended and no new one is wanted;
 * - `close`: close() was called.
 */
export type ConnectionInput = 'start' | 'opened' | 'welcomed' | 'failed' | 'retry' | 'moved' | 'stopped' | 'close';

/** Every transition there is; an input a state does not list is ignored (a late event of an attempt already over). */
export const TRANSITIONS: Readonly<Record<ConnectionState, Readonly<Partial<Record<ConnectionInput, ConnectionState>>>>> = {
  idle: { start: 'connecting', close: 'closed' },
  connecting: { opened: 'handshaking', failed: 'waiting', stopped: 'idle', close: 'closed' },
  handshaking: { welcomed: 'connected', failed: 'waiting', stopped: 'idle', close: 'closed' },
  connected: { failed: 'waiting', moved: 'connecting', stopped: 'idle', close: 'closed' },
  waiting: { retry: 'connecting', stopped: 'idle', close: 'closed' },
  closed: { start: 'connecting', close: 'closed' },
};

/** A relay connection's state, changed only along TRANSITIONS. */
export class ConnectionStateMachine {
  private current: ConnectionState = 'idle';
  /** Bumped by start and close: an attempt begun under an older epoch is stale. */
  private era = 0;

  get state(): ConnectionState {
    return this.current;
  }

  get epoch(): number {
    return this.era;
  }

  /** Applies `input`; false (and no change) when the current state does not take it. */
  fire(input: ConnectionInput): boolean {
    const next = TRANSITIONS[this.current][input];
    if (next === undefined) return false;
    if (input === 'start' || input === 'close') this.era++;
    this.current = next;
    return true;
  }

  is(...states: ConnectionState[]): boolean {
    return states.includes(this.current);
  }
}
