import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { createRelayLogger, relayLogLevels } from './relay-logger.js';

describe('createRelayLogger', () => {
  afterEach(() => {
    jest.restoreAllMocks();
  });

  /** What the logger writes to stdout for one call. */
  function written(call: () => void): string {
    const chunks: string[] = [];
    jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      chunks.push(String(chunk));
      return true;
    });
    call();
    jest.restoreAllMocks();
    return chunks.join('');
  }

  it('json: one JSON object per line, with the fields a line carries beside its message', () => {
    const logger = createRelayLogger({ format: 'json' });
    const out = written(() => logger.warn('Connection refused', { event: 'connection.refused', reason: 'auth' }, 'Relay'));
    expect(out.endsWith('\n')).toBe(true);
    expect(JSON.parse(out)).toMatchObject({
      level: 'warn',
      message: 'Connection refused',
      context: 'Relay',
      event: 'connection.refused',
      reason: 'auth',
    });
  });

  it('text: no colours when stdout is not a terminal', () => {
    const out = written(() => createRelayLogger({}, { isTTY: false }).log('hello', 'Relay'));
    expect(out).toContain('[Relay] hello');
    expect(out).not.toContain('\x1b[');
  });

  it('writes the level given and the more severe ones only', () => {
    const logger = createRelayLogger({ format: 'json', level: 'warn' });
    expect(written(() => logger.log('quiet'))).toBe('');
    expect(written(() => logger.debug('quiet'))).toBe('');
    expect(written(() => logger.warn('loud'))).toContain('loud');
    expect(relayLogLevels('debug')).toEqual(['debug', 'log', 'warn', 'error', 'fatal']);
    expect(relayLogLevels('error')).toEqual(['error', 'fatal']);
  });
});
