/**
 * The relay's log as an operator's collector reads it: the `wsrelay-relay`
 * executable in a process of its own with RELAY_LOG_FORMAT=json, its output
 * parsed line by line. Each lifecycle event driven once (a connection
 * accepted and one refused, a node announced and gone, a slow consumer
 * closed, the backplane lost and back, a relay joining and leaving the
 * cluster, the shutdown drain) is found once, as one JSON object with its
 * `event`; a flood of refused upgrades writes a bounded number of lines that
 * account for every refusal; no line holds a token.
 */
import { type EventFrame, FrameType } from '@wsrelay/protocol';
import { randomBytes } from 'node:crypto';
import { answerTo } from './support/frames.js';
import { startRelay, until, useCleanup } from './support/harness.js';
import { RawNode, refusal } from './support/raw-node.js';
import { CutOffProxy, useTestRedis } from './support/redis.js';
import { type RelayProcess, spawnRelay } from './support/relay-process.js';
import { AUDIENCE, bearer, CLIENT, ISSUER, mint, SECRET, SERVER } from './support/tokens.js';

/** One line of the relay's JSON log. */
type Line = Record<string, unknown> & { level: string; message: string; event?: string };

/** Every line the relay printed, each parsed (a line that is not one JSON object fails the test). */
function lines(relay: RelayProcess): Line[] {
  return relay.output.map(text => {
    const line = JSON.parse(text) as Line;
    expect(typeof line.level).toBe('string');
    expect(typeof line.message).toBe('string');
    expect(typeof line.timestamp).toBe('number');
    return line;
  });
}

const AUTH_ENV = { RELAY_JWT_SECRET: SECRET, RELAY_JWT_ISSUER: ISSUER, RELAY_JWT_AUDIENCE: AUDIENCE };
// Loose enough that a loaded machine does not lose the backplane by itself (the test loses it on purpose).
const CLUSTER_TIMING = { heartbeatIntervalMs: 200, timeoutMs: 1500 };

describe('the relay log (RELAY_LOG_FORMAT=json)', () => {
  const redis = useTestRedis();
  const { add, track } = useCleanup();

  /** Lines of `event` (and matching `fields`) so far. */
  const of = (relay: RelayProcess, event: string, fields: Record<string, unknown> = {}) =>
    lines(relay).filter(l => l.event === event && Object.entries(fields).every(([k, v]) => l[k] === v));

  const logged = (relay: RelayProcess, event: string, fields: Record<string, unknown> = {}, count = 1) =>
    until(() => of(relay, event, fields).length >= count, 10_000, `the relay to log ${event} ${JSON.stringify(fields)}`);

  it('tells each lifecycle event once, as one JSON line with its event, and never a token', async () => {
    const proxy = await CutOffProxy.start(redis.url);
    add(() => proxy.close());
    const prefix = `wsrelay-logs-${randomBytes(4).toString('hex')}`;
    const relay = await spawnRelay({
      ...AUTH_ENV,
      RELAY_ID: 'A',
      RELAY_LOG_FORMAT: 'json',
      RELAY_LOG_LEVEL: 'debug',
      RELAY_REDIS_URL: proxy.url,
      RELAY_CLUSTER_PREFIX: prefix,
      RELAY_CLUSTER_HEARTBEAT_INTERVAL_MS: String(CLUSTER_TIMING.heartbeatIntervalMs),
      RELAY_CLUSTER_TIMEOUT_MS: String(CLUSTER_TIMING.timeoutMs),
      RELAY_MAX_BUFFERED_BYTES: String(64 * 1024),
      RELAY_DRAIN_TIMEOUT_MS: '1000',
    });
    add(() => relay.kill());

    // The backplane: up at start, lost when Redis is cut off, up again once it is back.
    await logged(relay, 'cluster.backplane_up');
    await proxy.cut();
    await logged(relay, 'cluster.backplane_down');
    await proxy.restore();
    await logged(relay, 'cluster.backplane_up', {}, 2);

    // Another relay joins the cluster and leaves it.
    const b = await startRelay({
      auth: { secret: SECRET, issuer: ISSUER, audience: AUDIENCE },
      relayId: 'B',
      cluster: { redis: redis.url, channelPrefix: prefix, ...CLUSTER_TIMING },
    });
    await logged(relay, 'cluster.member_joined', { relay: 'B' });
    await b.close();
    await logged(relay, 'cluster.member_lost', { relay: 'B' });

    // A refused upgrade, its token in the Authorization header and another in the query.
    const forged = await mint({ sub: 'forger', claims: SERVER }, new TextEncoder().encode('not-the-relay-secret-at-all-000000'));
    expect((await refusal(relay.url, await bearer(forged))).status).toBe(401);
    await logged(relay, 'connection.refused');
    const expired = await mint({ sub: 'late', claims: CLIENT, expiresIn: -3600 });
    expect((await refusal(`${relay.url}?token=${expired}`)).status).toBe(401);
    await logged(relay, 'connection.refused', {}, 2);

    // A node: its connection accepted, announced, gone.
    const node = await RawNode.hello(relay.url, 'n1', { ...(await bearer({ sub: 'sub-n1', claims: SERVER })), patterns: ['p'] });
    await logged(relay, 'node.announced', { node: 'n1' });
    node.close();
    await logged(relay, 'node.gone', { node: 'n1' });

    // A subscriber that stops reading is closed as a slow consumer.
    const slow = track(
      await RawNode.hello(relay.url, 'slow', { ...(await bearer({ sub: 'sub-slow', claims: SERVER })), events: ['flood'] }),
    );
    slow.socket.on('error', () => undefined);
    const emitter = track(await RawNode.hello(relay.url, 'emitter', await bearer({ sub: 'sub-emitter', claims: CLIENT })));
    slow.tcp!.pause();
    const chunk = new Uint8Array(32 * 1024);
    for (let id = 1; of(relay, 'connection.slow_consumer').length === 0; id++) {
      if (id > 5000) throw new Error('the relay never closed the stalled subscriber');
      const event: EventFrame = { type: FrameType.Event, id, pattern: 'flood', payload: chunk, peer: null, ext: null, claims: null };
      emitter.send(event);
      await emitter.next(answerTo(id));
    }
    slow.tcp!.resume();

    // SIGTERM: the drain.
    await relay.stop();
    expect(relay.child.exitCode).toBe(0);

    const all = lines(relay);
    const once = (event: string, fields: Record<string, unknown> = {}) => expect(of(relay, event, fields)).toHaveLength(1);
    once('connection.accepted', { session: node.welcome!.sessionId });
    expect(of(relay, 'connection.accepted')).toHaveLength(3);
    expect(of(relay, 'connection.accepted', { role: 'server' })).toHaveLength(2);
    const refusals = of(relay, 'connection.refused', { reason: 'auth', status: 401, address: '127.0.0.1' });
    expect(refusals.map(l => l.message)).toEqual([
      'Connection from 127.0.0.1 refused (auth, HTTP 401): Unauthorized: token signature does not verify.',
      'Connection from 127.0.0.1 refused (auth, HTTP 401): Unauthorized: token expired.',
    ]);
    once('node.announced', { node: 'n1', role: 'server', patterns: 1, subscriptions: 0 });
    once('node.gone', { node: 'n1', why: 'disconnected' });
    once('connection.slow_consumer', { node: 'slow' });
    once('cluster.member_joined', { relay: 'B' });
    once('cluster.member_lost', { relay: 'B', why: 'it shut down' });
    once('cluster.backplane_down');
    expect(of(relay, 'cluster.backplane_up')).toHaveLength(2);
    once('drain.started');
    once('drain.ended');
    // At their levels.
    const level = (event: string) => [...new Set(of(relay, event).map(l => l.level))];
    expect(level('connection.accepted')).toEqual(['debug']);
    expect(level('connection.refused')).toEqual(['warn']);
    expect(level('node.announced')).toEqual(['log']);
    expect(level('connection.slow_consumer')).toEqual(['warn']);
    expect(level('cluster.member_lost')).toEqual(['warn']);
    expect(level('cluster.backplane_down')).toEqual(['warn']);
    expect(level('drain.ended')).toEqual(['log']);
    for (const line of all.filter(l => l.event !== undefined)) expect(line.context).toBe('Relay');
    // No token, whole or in part, in any line.
    for (const token of [forged, expired]) {
      for (const piece of token.split('.').filter(p => p.length > 8)) expect(relay.output.join('\n')).not.toContain(piece);
    }
  }, 60_000);

  it('a flood of refused upgrades writes at most 10 lines a second, and lines that say how many more there were', async () => {
    const relay = await spawnRelay({ ...AUTH_ENV, RELAY_LOG_FORMAT: 'json' });
    add(() => relay.kill());
    const base = relay.output.length;
    const FLOOD = 120;
    const token = await mint({ sub: 'flooder' }, new TextEncoder().encode('not-the-relay-secret-at-all-000000'));
    const started = Date.now();
    for (let i = 0; i < FLOOD; i++) expect((await refusal(relay.url, await bearer(token))).status).toBe(401);
    const floodMs = Date.now() - started;
    const refused = () => of(relay, 'connection.refused');
    const suppressed = () => of(relay, 'log.suppressed', { of: 'connection.refused', reason: 'auth' });
    const told = () => refused().length + suppressed().reduce((n, l) => n + (l.count as number), 0);
    // Every refusal is accounted for: written, or counted in a line once its second was over.
    await until(() => told() === FLOOD, 10_000, 'every refusal to be told');
    const seconds = Math.ceil(floodMs / 1000) + 1;
    expect(refused().length).toBeLessThanOrEqual(10 * seconds);
    expect(suppressed().length).toBeGreaterThanOrEqual(1);
    expect(suppressed().length).toBeLessThanOrEqual(seconds);
    expect(suppressed()[0]).toMatchObject({
      level: 'warn',
      message: expect.stringMatching(/^Suppressed \d+ more "connection.refused \(auth\)" line\(s\) in the last second$/) as string,
    });
    expect(relay.output.length - base).toBeLessThanOrEqual(11 * seconds);
    for (const piece of token.split('.')) expect(relay.output.join('\n')).not.toContain(piece);
    await relay.stop();
  }, 60_000);
});
