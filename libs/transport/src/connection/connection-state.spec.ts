import { describe, expect, it } from '@jest/globals';
import { type ConnectionInput, type ConnectionState, ConnectionStateMachine, TRANSITIONS } from './connection-state.js';

const STATES = Object.keys(TRANSITIONS) as ConnectionState[];
const INPUTS: ConnectionInput[] = ['start', 'opened', 'welcomed', 'failed', 'retry', 'moved', 'stopped', 'close'];

/** How a fresh machine gets to each state. */
const PATHS: Record<ConnectionState, ConnectionInput[]> = {
  idle: [],
  connecting: ['start'],
  handshaking: ['start', 'opened'],
  connected: ['start', 'opened', 'welcomed'],
  waiting: ['start', 'failed'],
  closed: ['close'],
};

function machineIn(state: ConnectionState): ConnectionStateMachine {
  const m = new ConnectionStateMachine();
  for (const input of PATHS[state]) expect(m.fire(input)).toBe(true);
  expect(m.state).toBe(state);
  return m;
}

describe('ConnectionStateMachine', () => {
  describe.each(STATES)('in %s', state => {
    it.each(INPUTS)('on %s goes where the table says, or stays', input => {
      const m = machineIn(state);
      const epoch = m.epoch;
      const next = TRANSITIONS[state][input];
      expect(m.fire(input)).toBe(next !== undefined);
      expect(m.state).toBe(next ?? state);
      // Only start and close begin a new epoch: a retry or a GOAWAY keeps the attempt's.
      expect(m.epoch).toBe(next !== undefined && (input === 'start' || input === 'close') ? epoch + 1 : epoch);
    });
  });

  it('reaches every state from idle, and every state can be closed', () => {
    for (const state of STATES) expect(TRANSITIONS[state].close).toBe('closed');
    const reachable = new Set<ConnectionState>(['idle']);
    for (let changed = true; changed;) {
      changed = false;
      for (const s of [...reachable]) {
        for (const next of Object.values(TRANSITIONS[s])) {
          if (!reachable.has(next)) {
            reachable.add(next);
            changed = true;
          }
        }
      }
    }
    expect([...reachable].sort()).toEqual([...STATES].sort());
  });

  it('walks a session that is lost, retried, moved by a GOAWAY and stopped by a drain', () => {
    const m = new ConnectionStateMachine();
    const walk = (inputs: ConnectionInput[]) => inputs.map(i => (m.fire(i), m.state));
    expect(walk(['start', 'opened', 'welcomed'])).toEqual(['connecting', 'handshaking', 'connected']);
    expect(walk(['failed', 'retry', 'opened', 'welcomed'])).toEqual(['waiting', 'connecting', 'handshaking', 'connected']);
    expect(walk(['moved', 'opened', 'welcomed', 'stopped'])).toEqual(['connecting', 'handshaking', 'connected', 'idle']);
    // A late WELCOME of an attempt already over changes nothing.
    expect(m.fire('welcomed')).toBe(false);
    expect(m.is('idle')).toBe(true);
  });
});
