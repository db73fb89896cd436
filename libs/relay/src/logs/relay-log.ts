import { Logger, type OnApplicationShutdown } from '@nestjs/common';
import {
  type AcceptedConnection,
  type AnnouncedNode,
  type BackplaneChange,
  type ClusterMember,
  type DrainEnd,
  type DrainStart,
  type FrameSender,
  type GoneNode,
  type LostMember,
  REFUSAL_REASONS,
  type RefusalReason,
  type RefusedConnection,
  type RelayLifecycleListener,
  type SlowConsumer,
} from '../observe/relay-observer.js';
import { LogLimiter } from './log-limiter.js';

/** Lines of one kind (one event, or one refusal reason) the relay writes per second at most; past it, one line says how many it left out. */
export const DEFAULT_LOG_LINES_PER_SECOND = 10;

/** Longest piece of peer-chosen text (a refusal message, a node id) a line quotes. */
const MAX_QUOTED = 300;

type Level = 'debug' | 'log' | 'warn';

/** One kind of line: its event name (the `event` field of a JSON line), level, and the refusal reason it is limited for. */
interface Kind {
  readonly event: string;
  readonly level: Level;
  readonly reason?: string;
}

const KINDS: Kind[] = [];
/** Adds a kind of line; its index is what the limiter counts it under. */
const addKind = (event: string, level: Level, reason?: string): number => KINDS.push({ event, level, reason }) - 1;
const ACCEPTED = addKind('connection.accepted', 'debug');
/** One kind per refusal reason, each limited on its own (the first's index; the reason adds to it). */
const [CONNECTION_REFUSED] = REFUSAL_REASONS.map(reason => addKind('connection.refused', 'warn', reason));
const [FRAME_REFUSED] = REFUSAL_REASONS.map(reason => addKind('frame.refused', 'debug', reason));
const ANNOUNCED = addKind('node.announced', 'log');
const GONE = addKind('node.gone', 'log');
const SLOW = addKind('connection.slow_consumer', 'warn');
const DRAIN_STARTED = addKind('drain.started', 'log');
const DRAIN_ENDED = addKind('drain.ended', 'log');
const JOINED = addKind('cluster.member_joined', 'log');
const LOST = addKind('cluster.member_lost', 'warn');
const UP = addKind('cluster.backplane_up', 'log');
const DOWN = addKind('cluster.backplane_down', 'warn');

function clip(text: string): string {
  return text.length <= MAX_QUOTED ? text : `${text.slice(0, MAX_QUOTED)}... (${text.length} characters)`;
}

/**
 * The relay's lifecycle in its log: connections accepted (debug) and refused
 * (warn, with the reason; a token is never written), frames refused (debug),
 * nodes announced and gone, slow consumers closed, the shutdown drain, and
 * the cluster's members and backplane. Each line carries its `event` (a JSON
 * field with `RELAY_LOG_FORMAT=json`). Each kind of line is limited per
 * second (refusals per reason), so a flood cannot flood the log.
 */
export class RelayLog implements RelayLifecycleListener, OnApplicationShutdown {
  private readonly logger = new Logger('Relay');
  private readonly limiter: LogLimiter;

  constructor(linesPerSecond = DEFAULT_LOG_LINES_PER_SECOND) {
    this.limiter = new LogLimiter(KINDS.length, linesPerSecond, (kind, n) => this.leftOut(kind, n));
  }

  /** What was left out is told before the app is gone. */
  onApplicationShutdown(): void {
    this.limiter.flushAll();
  }

  connectionAccepted(c: AcceptedConnection): void {
    if (!this.limiter.allow(ACCEPTED)) return;
    const who = `${c.subject === null ? '' : ` for subject ${clip(c.subject)}`}${c.address === undefined ? '' : ` from ${c.address}`}`;
    this.write(ACCEPTED, `Connection ${c.session} accepted (${c.role})${who}`, { role: c.role, session: c.session, address: c.address });
  }

  connectionRefused(c: RefusedConnection): void {
    const kind = CONNECTION_REFUSED + c.reason;
    if (!this.limiter.allow(kind)) return;
    const reason = REFUSAL_REASONS[c.reason];
    this.write(kind, `Connection from ${c.address} refused (${reason}, HTTP ${c.status}): ${clip(c.message)}`, {
      reason,
      status: c.status,
      code: c.code,
      address: c.address,
    });
  }

  frameRefused(reason: RefusalReason, code: string, message: string, from: FrameSender): void {
    const kind = FRAME_REFUSED + reason;
    if (!this.limiter.allow(kind)) return;
    const name = REFUSAL_REASONS[reason];
    this.write(kind, `Refused a frame of connection ${from.sessionId} (${name}): ${code} ${clip(message)}`, {
      reason: name,
      code,
      session: from.sessionId,
    });
  }

  nodeAnnounced(n: AnnouncedNode): void {
    if (!this.limiter.allow(ANNOUNCED)) return;
    const queue = n.queue === null ? '' : ` in queue group ${clip(n.queue)}`;
    const tenant = n.tenant === '' ? '' : ` of tenant ${clip(n.tenant)}`;
    const what = `${n.patterns} pattern(s), ${n.subscriptions} subscription(s)${queue}`;
    this.write(ANNOUNCED, `Node ${clip(n.nodeId)}${tenant} announced (${n.role}): ${what}`, {
      node: n.nodeId,
      tenant: n.tenant,
      role: n.role,
      patterns: n.patterns,
      subscriptions: n.subscriptions,
    });
  }

  nodeGone(n: GoneNode): void {
    if (!this.limiter.allow(GONE)) return;
    const tenant = n.tenant === '' ? '' : ` of tenant ${clip(n.tenant)}`;
    this.write(GONE, `Node ${clip(n.nodeId)}${tenant} gone (${n.why})`, { node: n.nodeId, tenant: n.tenant, why: n.why });
  }

  slowConsumerClosed(c: SlowConsumer): void {
    if (this.limiter.allow(SLOW)) this.write(SLOW, `Closed ${clip(c.name)} as a ${c.reason}`, { node: c.name });
  }

  drainStarted(d: DrainStart): void {
    if (!this.limiter.allow(DRAIN_STARTED)) return;
    const waiting = d.inFlight === 0 || d.drainTimeoutMs === 0 ? 'not waiting' : `waiting up to ${d.drainTimeoutMs} ms`;
    const message = `Draining for shutdown: ${d.nodes} node(s) told to move, ${d.inFlight} request(s) and event copies in flight, ${waiting}`;
    this.write(DRAIN_STARTED, message, { nodes: d.nodes, inFlight: d.inFlight, drainTimeoutMs: d.drainTimeoutMs });
  }

  drainEnded(d: DrainEnd): void {
    if (!this.limiter.allow(DRAIN_ENDED)) return;
    const left = d.left === 0 ? 'nothing left in flight' : `${d.left} still in flight`;
    this.write(DRAIN_ENDED, `Drain ended after ${d.tookMs} ms: ${left}`, { tookMs: d.tookMs, left: d.left });
  }

  clusterMemberJoined(m: ClusterMember): void {
    if (this.limiter.allow(JOINED)) this.write(JOINED, `Relay ${m.relayId} joined the cluster`, { relay: m.relayId });
  }

  clusterMemberLost(m: LostMember): void {
    // Relays that went with the backplane: its loss is the line that says so.
    if (m.why === undefined || !this.limiter.allow(LOST)) return;
    const message = `Relay ${m.relayId} left the cluster (${m.why}); its ${m.nodes} node(s) are offline`;
    this.write(LOST, message, { relay: m.relayId, why: m.why, nodes: m.nodes });
  }

  backplaneUp(b: BackplaneChange): void {
    if (this.limiter.allow(UP))
      this.write(UP, `Cluster backplane ${b.backplane} up: routing across the cluster`, { backplane: b.backplane });
  }

  backplaneDown(b: BackplaneChange): void {
    if (!this.limiter.allow(DOWN)) return;
    const message = `Cluster backplane ${b.backplane} down (${b.why}): routing among this relay's own connections until it is back`;
    this.write(DOWN, message, { backplane: b.backplane, why: b.why });
  }

  private write(kind: number, message: string, params: Record<string, unknown>): void {
    const { event, level } = KINDS[kind];
    this.logger[level](message, { event, ...params });
  }

  private leftOut(kind: number, n: number): void {
    const { event, level, reason } = KINDS[kind];
    const of = reason === undefined ? event : `${event} (${reason})`;
    this.logger[level](`Suppressed ${n} more "${of}" line(s) in the last second`, { event: 'log.suppressed', of: event, reason, count: n });
  }
}
