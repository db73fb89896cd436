/**
 * RelayConnection while a token function is still answering: an attempt that
 * close() or drain() made stale must not move the connection when its token
 * fails late. No relay is needed: the attempts never get past their token.
 */
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { resolveConnectionConfig } from './connection-config.js';
import { RelayConnection } from './relay-connection.js';

/** A token function whose answers the test settles, one per call. */
class Tokens {
  readonly pending: Array<{ resolve: (t: string) => void; reject: (err: Error) => void }> = [];
  readonly fn = (): Promise<string> => new Promise<string>((resolve, reject) => this.pending.push({ resolve, reject }));

  /** Fails the `n`th call, and lets a turn pass so that the connection hears of it. */
  async fail(n: number): Promise<void> {
    this.pending[n].reject(new Error('token service down'));
    await new Promise(resolve => setImmediate(resolve));
  }
}

const NOTHING = { service: null, patterns: [], events: [], queue: null };

describe('RelayConnection', () => {
  const connections: RelayConnection[] = [];

  afterEach(async () => {
    await Promise.all(connections.splice(0).map(c => c.close()));
  });

  function connection(tokens: Tokens): { conn: RelayConnection; reconnecting: number[] } {
    // Port 9 (discard) is never reached: each attempt waits on its token.
    const config = resolveConnectionConfig({ urls: ['ws://127.0.0.1:9/relay'], token: tokens.fn }, () => NOTHING);
    const conn = new RelayConnection(config, { onFrame: () => undefined, onLost: () => undefined }, 'spec');
    connections.push(conn);
    const reconnecting: number[] = [];
    conn.events.on('reconnecting', attempt => reconnecting.push(attempt));
    return { conn, reconnecting };
  }

  it('ignores the token failure of an attempt that close() ended, when a new attempt is under way', async () => {
    const tokens = new Tokens();
    const { conn, reconnecting } = connection(tokens);
    conn.ready().catch(() => undefined);
    expect(conn.state).toBe('connecting');
    await conn.close();
    conn.ready().catch(() => undefined);
    expect(tokens.pending).toHaveLength(2);
    await tokens.fail(0);
    // The second attempt goes on: no backoff was scheduled for the first one's failure.
    expect(conn.state).toBe('connecting');
    expect(reconnecting).toEqual([]);
    await tokens.fail(1);
    expect(conn.state).toBe('waiting');
    expect(reconnecting).toEqual([1]);
  });

  it('schedules no retry for a failed attempt once drain() was called: the node is leaving', async () => {
    const tokens = new Tokens();
    const { conn, reconnecting } = connection(tokens);
    conn.ready().catch(() => undefined);
    await conn.drain(1000);
    await tokens.fail(0);
    expect(conn.state).toBe('idle');
    expect(reconnecting).toEqual([]);
    expect(tokens.pending).toHaveLength(1);
    expect([...conn.urlStatus.entries()]).toEqual([['ws://127.0.0.1:9/relay', 'not_connected']]);
  });

  it('drops a retry that was due once drain() is called: no attempt after the backoff', async () => {
    jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick', 'queueMicrotask'] });
    try {
      const tokens = new Tokens();
      const { conn, reconnecting } = connection(tokens);
      conn.ready().catch(() => undefined);
      await tokens.fail(0);
      expect(conn.state).toBe('waiting');
      expect(reconnecting).toEqual([1]);
      await conn.drain(1000);
      expect(conn.state).toBe('idle');
      jest.advanceTimersByTime(60_000);
      expect(tokens.pending).toHaveLength(1);
      expect(conn.state).toBe('idle');
    } finally {
      jest.useRealTimers();
    }
  });
});
