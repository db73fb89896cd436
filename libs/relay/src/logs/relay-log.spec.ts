import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { RelayErrorCode } from '@wsrelay/protocol';
import { RefusalReason } from '../observe/relay-observer.js';
import { RelayTally } from '../observe/relay-tally.js';
import { RelayLog } from './relay-log.js';

type Line = { level: string; message: string; params: Record<string, unknown> };

describe('RelayLog', () => {
  let lines: Line[];
  let tally: RelayTally;
  let log: RelayLog;

  beforeEach(() => {
    lines = [];
    for (const level of ['debug', 'log', 'warn', 'error'] as const) {
      jest.spyOn(Logger.prototype, level).mockImplementation((message: unknown, params?: unknown) => {
        lines.push({ level, message: String(message), params: params as Record<string, unknown> });
      });
    }
    tally = new RelayTally();
    log = new RelayLog(3);
    tally.listen(log);
  });

  afterEach(() => {
    log.onApplicationShutdown();
    jest.restoreAllMocks();
  });

  it('tells each lifecycle point at its level, with its event', () => {
    tally.connectionAccepted({ role: 'client', session: 's1', subject: 'alice', address: '127.0.0.1' });
    tally.connectionRefused({
      reason: RefusalReason.Auth,
      status: 401,
      code: RelayErrorCode.UNAUTHORIZED,
      message: 'Unauthorized: token expired.',
      address: '10.1.1.1',
    });
    tally.nodeAnnounced({ nodeId: 'n1', tenant: 't', role: 'server', patterns: 2, subscriptions: 1, queue: 'q' });
    tally.nodeGone({ nodeId: 'n1', tenant: 't', why: 'disconnected' });
    tally.slowConsumerClosed({ name: 'n2', reason: 'slow consumer: 9 bytes unsent (budget 8)' });
    tally.drainStarted({ inFlight: 1, nodes: 2, drainTimeoutMs: 100 });
    tally.drainEnded({ tookMs: 5, left: 0 });
    tally.clusterMemberJoined({ relayId: 'B' });
    tally.clusterMemberLost({ relayId: 'B', why: 'it shut down', nodes: 3 });
    tally.backplaneDown({ backplane: 'redis://x', why: 'its connection was lost' });
    tally.backplaneUp({ backplane: 'redis://x' });
    expect(lines.map(l => [l.level, l.params.event])).toEqual([
      ['debug', 'connection.accepted'],
      ['warn', 'connection.refused'],
      ['log', 'node.announced'],
      ['log', 'node.gone'],
      ['warn', 'connection.slow_consumer'],
      ['log', 'drain.started'],
      ['log', 'drain.ended'],
      ['log', 'cluster.member_joined'],
      ['warn', 'cluster.member_lost'],
      ['warn', 'cluster.backplane_down'],
      ['log', 'cluster.backplane_up'],
    ]);
    expect(lines[1]).toMatchObject({
      message: 'Connection from 10.1.1.1 refused (auth, HTTP 401): Unauthorized: token expired.',
      params: { reason: 'auth', status: 401 },
    });
    expect(lines[2].message).toBe('Node n1 of tenant t announced (server): 2 pattern(s), 1 subscription(s) in queue group q');
    expect(lines[4].message).toBe('Closed n2 as a slow consumer: 9 bytes unsent (budget 8)');
    expect(lines[8].message).toBe('Relay B left the cluster (it shut down); its 3 node(s) are offline');
  });

  it('a relay that went with the backplane is not told of again', () => {
    tally.clusterMemberLost({ relayId: 'B', why: undefined, nodes: 3 });
    expect(lines).toEqual([]);
  });

  it('a flood of refusals writes at most its limit per reason, then one line saying how many it left out', () => {
    for (let i = 0; i < 50; i++) {
      tally.connectionRefused({ reason: RefusalReason.Auth, status: 401, code: RelayErrorCode.UNAUTHORIZED, message: 'no', address: 'a' });
      tally.connectionRefused({
        reason: RefusalReason.Forbidden,
        status: 403,
        code: RelayErrorCode.FORBIDDEN,
        message: 'no',
        address: 'a',
      });
      tally.frameRefused(RefusalReason.BadFrame, RelayErrorCode.BAD_FRAME, 'malformed', { sessionId: 's' });
    }
    expect(lines.filter(l => l.params.event === 'connection.refused')).toHaveLength(6);
    expect(lines.filter(l => l.params.event === 'frame.refused')).toHaveLength(3);
    log.onApplicationShutdown();
    const suppressed = lines.filter(l => l.params.event === 'log.suppressed');
    expect(suppressed.map(l => [l.level, l.params.of, l.params.reason, l.params.count])).toEqual([
      ['warn', 'connection.refused', 'auth', 47],
      ['warn', 'connection.refused', 'forbidden', 47],
      ['debug', 'frame.refused', 'bad_frame', 47],
    ]);
    expect(suppressed[0].message).toBe('Suppressed 47 more "connection.refused (auth)" line(s) in the last second');
  });

  it('quotes peer-chosen text only so far', () => {
    tally.nodeGone({ nodeId: 'n'.repeat(1000), tenant: '', why: 'shutdown' });
    expect(lines[0].message.length).toBeLessThan(400);
  });
});
