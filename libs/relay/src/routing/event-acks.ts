import {
  encodePayload,
  type EventFrame,
  EventFlag,
  type FrameCodec,
  FrameType,
  RelayError,
  RelayErrorCode,
  RelayErrorMessages,
} from '@wsrelay/protocol';
import { ClusterMessageType } from '../cluster/cluster-protocol.js';
import type { RelayCluster } from '../cluster/relay-cluster.js';
import { RemoteNode, type RemoteRelay } from '../cluster/remote.js';
import { Session } from '../session.js';
import type { Routable, World } from './world.js';

/** Code of a failed delivery whose handler threw (its error goes along). */
export const HANDLER_ERROR = 'HANDLER_ERROR';

/** What an event carries wherever it goes: subject, payload, ext. */
type EventSource = Pick<EventFrame, 'pattern' | 'payload' | 'ext'>;

/** The EVENT a node gets: `source` under `id`, as from `peer`; with `attempt`, a copy that wants a HANDLED. */
export function eventFrame(source: EventSource, id: number, peer: string | null, claims: Uint8Array | null, attempt?: number): EventFrame {
  const { pattern, payload, ext } = source;
  const frame: EventFrame = { type: FrameType.Event, id, pattern, payload, peer, ext, claims };
  if (attempt !== undefined) {
    frame.flags = EventFlag.ACK_HANDLERS;
    frame.attempt = attempt;
  }
  return frame;
}

/** An event whose emitter asked to hear from every handler (`ack: 'handlers'`). */
export interface PendingEvent {
  readonly emitter: Session;
  /** What was published, with the emitter's id for it (its payload is kept only while a copy may move). */
  frame: EventFrame;
  readonly recipients: number;
  /** Each failed delivery: node id, code, and the handler's error (MessagePack) when it threw. */
  readonly failures: Array<[string, string, Uint8Array | null]>;
  /** Its copies still out. */
  readonly copies: Set<Delivery>;
  /** Payload bytes kept for redelivery (0 when no copy can move: no queue groups). */
  readonly retained: number;
  timer: NodeJS.Timeout | undefined;
}

/** One recipient's copy of a PendingEvent, moving between queue members until it is handled or fails. */
export interface Delivery {
  /** A fresh id per attempt: a late answer to an earlier attempt names an id that is gone. */
  did: number;
  readonly event: PendingEvent;
  /** Its queue group; null for a plain subscriber (which nobody can stand in for). */
  readonly queue: string | null;
  target: Session | RemoteNode;
  attempt: number;
  /** Node ids it was given to. */
  readonly tried: Set<string>;
  timer: NodeJS.Timeout | undefined;
}

/** A delivery another relay asked this one to make to one of its nodes. */
interface Relayed {
  readonly relay: RemoteRelay;
  /** The other relay's delivery id. */
  readonly did: number;
  readonly session: Session;
  timer: NodeJS.Timeout | undefined;
}

export interface EventAckSettings {
  /** How long one delivery may go unconfirmed before it moves on. */
  attemptTimeoutMs: number;
  /** Deliveries of one event to a queue group, in all. */
  maxAttempts: number;
  /** Payload bytes one connection's unanswered handler-acked events may keep at the relay (for redelivery). */
  maxRetainedBytes: number;
  /** Called whenever a delivery settles (the relay's shutdown drain waits for none to be left). */
  onSettled?: () => void;
}

/** Failed deliveries an emitter is told about in full; past it, only how many more. */
const MAX_REPORTED_FAILURES = 100;
/** A handler's error (MessagePack) longer than this is reported without its body. */
const MAX_REPORTED_ERROR_BYTES = 4096;
const EMPTY = new Uint8Array(0);

const MAX_DID = 0xffff_fffe;
/** How long this relay keeps a copy it made for another relay, should that relay never settle it. */
const RELAYED_CLEANUP_MS = 10 * 60_000;

/**
 * Handler acks for events (`ack: 'handlers'`): the relay gives each recipient
 * its copy with an id, waits for HANDLED from each, moves a queue group's
 * copy to another member when its member leaves or does not confirm in time
 * (up to `maxAttempts` deliveries), and answers the emitter once every copy
 * is settled: ACK when all handlers succeeded, else ERROR HANDLER_FAILED
 * listing each failed delivery. Copies for nodes on other relays go through
 * the cluster, and their HANDLED comes back the same way.
 */
export class EventAcks {
  /** Deliveries this relay drives, by id. */
  private readonly deliveries = new Map<number, Delivery>();
  /** Deliveries this relay makes for other relays, by the id it gave the node. */
  private readonly relayed = new Map<number, Relayed>();
  private lastDid = 0;

  constructor(
    private readonly codec: FrameCodec,
    private readonly cluster: RelayCluster,
    private readonly settings: EventAckSettings,
  ) {}

  /** Deliveries and relayed deliveries in flight (for books and tests). */
  get size(): number {
    return this.deliveries.size + this.relayed.size;
  }

  /**
   * Starts an event with handler acks to `recipients`; returns how many
   * copies went out (0: the emitter is ACKed at once by the caller).
   * A targeted event (`peer`) goes to that node only: its copy never moves.
   * Throws RATE_LIMITED when the emitter's unanswered events would keep
   * more than `maxRetainedBytes` of payload.
   */
  start(emitter: Session, frame: EventFrame, recipients: readonly Routable[], timeoutMs: number): number {
    const open = recipients.filter(r => r.isOpen);
    if (open.length === 0) return 0;
    const targeted = frame.peer !== null;
    // The payload is kept only where a copy may have to move to another member.
    const movable = !targeted && open.some(t => t.queue !== null);
    const retained = movable ? frame.payload.byteLength : 0;
    if (retained > 0 && emitter.retainedEventBytes + retained > this.settings.maxRetainedBytes) {
      throw new RelayError(RelayErrorCode.RATE_LIMITED, RelayErrorMessages.tooMuchRetained(this.settings.maxRetainedBytes));
    }
    emitter.retainedEventBytes += retained;
    const event: PendingEvent = {
      emitter,
      frame,
      recipients: open.length,
      failures: [],
      copies: new Set(),
      retained,
      timer: undefined,
    };
    emitter.pendingEvents.set(frame.id, event);
    event.timer = setTimeout(() => this.expire(event), timeoutMs);
    const remote = new Map<RemoteRelay, Delivery[]>();
    for (const target of open) {
      const d: Delivery = {
        did: this.nextDid(),
        event,
        queue: targeted ? null : target.queue,
        target,
        attempt: 1,
        tried: new Set([target.nodeId as string]),
        timer: undefined,
      };
      this.deliveries.set(d.did, d);
      event.copies.add(d);
      if (target instanceof RemoteNode) {
        const list = remote.get(target.relay);
        if (list === undefined) remote.set(target.relay, [d]);
        else list.push(d);
      }
      this.hand(d, target instanceof Session);
    }
    for (const [relay, list] of remote) this.sendRemote(relay, event, list);
    // Every copy is out: without a movable one the payload is not needed again.
    if (!movable) event.frame = { ...frame, payload: EMPTY };
    return open.length;
  }

  /** HANDLED from a node of this relay. False when it names nothing given to that node (dropped). */
  handled(session: Session, id: number, error: Uint8Array | null): boolean {
    const d = this.deliveries.get(id);
    if (d !== undefined && d.target === session) {
      this.finish(d, error === null ? undefined : [session.nodeId as string, HANDLER_ERROR, error]);
      return true;
    }
    const r = this.relayed.get(id);
    if (r !== undefined && r.session === session) {
      this.dropRelayed(id, r);
      this.cluster.send(r.relay, {
        type: ClusterMessageType.Handled,
        did: r.did,
        code: error === null ? null : HANDLER_ERROR,
        error,
      });
      return true;
    }
    return false;
  }

  /** HANDLED (or a failure to deliver, `code`) from another relay for one of our deliveries. */
  remoteHandled(relay: RemoteRelay, did: number, code: string | null, error: Uint8Array | null): void {
    const d = this.deliveries.get(did);
    if (d === undefined || !(d.target instanceof RemoteNode) || d.target.relay !== relay) return;
    if (code === null) this.finish(d, undefined);
    else if (code === HANDLER_ERROR) this.finish(d, [d.target.nodeId, HANDLER_ERROR, error]);
    else this.moveOn(d, code);
  }

  /** Copies another relay asks this one to hand to its nodes. */
  relay(
    relay: RemoteRelay,
    world: World | undefined,
    pattern: string,
    deliveries: ReadonlyArray<readonly [string, number, number]>,
    bytesFor: (id: number, attempt: number) => Uint8Array,
  ): void {
    for (const [nodeId, did, attempt] of deliveries) {
      const node = world?.nodes.get(nodeId);
      if (!(node instanceof Session) || !node.isOpen || !world!.subscriptions.subscribes(node, pattern)) {
        this.cluster.send(relay, { type: ClusterMessageType.Handled, did, code: RelayErrorCode.PROVIDER_DISCONNECTED, error: null });
        continue;
      }
      const id = this.nextDid();
      const r: Relayed = { relay, did, session: node, timer: undefined };
      // Only a cleanup, long past any deadline the other relay keeps (it may be configured otherwise).
      r.timer = setTimeout(() => this.dropRelayed(id, r), RELAYED_CLEANUP_MS);
      this.relayed.set(id, r);
      (node.relayed ??= new Set()).add(id);
      node.send(bytesFor(id, attempt));
    }
  }

  /** A node of this relay left: its copies move on (or fail), and other relays hear of theirs. */
  sessionGone(session: Session): void {
    if (session.deliveries !== undefined) {
      for (const d of [...session.deliveries]) this.moveOn(d, RelayErrorCode.PROVIDER_DISCONNECTED);
    }
    if (session.relayed !== undefined) {
      for (const id of [...session.relayed]) {
        const r = this.relayed.get(id);
        if (r === undefined) continue;
        this.dropRelayed(id, r);
        this.cluster.send(r.relay, {
          type: ClusterMessageType.Handled,
          did: r.did,
          code: RelayErrorCode.PROVIDER_DISCONNECTED,
          error: null,
        });
      }
    }
    // Its own events: nobody waits for the answer any more.
    if (session.hasPendingEvents) for (const event of [...session.pendingEvents.values()]) this.abandon(event);
  }

  /** A node of another relay left (not drained): its copies move on. */
  remoteNodeGone(node: RemoteNode): void {
    if (node.deliveries === undefined) return;
    for (const d of [...node.deliveries]) this.moveOn(d, RelayErrorCode.PROVIDER_DISCONNECTED);
  }

  /**
   * Another relay is gone (or started over): copies it asked us to make need
   * no answer, and copies we gave its nodes move on (drained nodes included:
   * they were out of presence already, and their answers cannot come now).
   */
  relayGone(relay: RemoteRelay): void {
    for (const [id, r] of [...this.relayed]) if (r.relay === relay) this.dropRelayed(id, r);
    for (const d of [...this.deliveries.values()]) {
      if (d.target instanceof RemoteNode && d.target.relay === relay) this.moveOn(d, RelayErrorCode.PROVIDER_DISCONNECTED);
    }
  }

  /** Writes (or forwards) a delivery's copy to its target; `send` false when a batch for remote targets follows. */
  private hand(d: Delivery, send: boolean): void {
    const target = d.target;
    (target.deliveries ??= new Set()).add(d);
    clearTimeout(d.timer);
    d.timer = setTimeout(() => this.moveOn(d, RelayErrorCode.TIMEOUT), this.settings.attemptTimeoutMs);
    if (!send) return;
    if (target instanceof Session) target.send(this.codec.encode(this.copy(d)));
    else this.sendRemote(target.relay, d.event, [d]);
  }

  private copy(d: Delivery): EventFrame {
    const { frame, emitter } = d.event;
    return eventFrame(frame, d.did, emitter.nodeId ?? null, emitter.claims, d.attempt);
  }

  private sendRemote(relay: RemoteRelay, event: PendingEvent, list: Delivery[]): void {
    const copies = list.map(d => [d.target.nodeId as string, d.did, d.attempt] as const);
    const { emitter, frame } = event;
    const sent = this.cluster.send(relay, {
      type: ClusterMessageType.EventCopies,
      tenant: emitter.world.tenant,
      pattern: frame.pattern,
      payload: frame.payload,
      emitterNodeId: emitter.nodeId ?? null,
      ext: frame.ext,
      claims: emitter.claims,
      copies,
    });
    if (!sent) {
      // The relay is going or gone: its nodes' copies move on now rather than at their timeout.
      queueMicrotask(() => {
        for (const d of list) if (this.deliveries.get(d.did) === d) this.moveOn(d, RelayErrorCode.PROVIDER_DISCONNECTED);
      });
    }
  }

  /**
   * The copy's target left or did not confirm: another member of its queue
   * group takes it (up to `maxAttempts` deliveries); a plain subscriber's copy,
   * or one with no member left, fails with `code`.
   */
  private moveOn(d: Delivery, code: string): void {
    if (this.deliveries.get(d.did) !== d) return;
    const failedOn = d.target.nodeId as string;
    d.target.deliveries?.delete(d);
    const next = d.queue !== null && d.attempt < this.settings.maxAttempts ? this.nextMember(d) : undefined;
    if (next === undefined) {
      this.finish(d, [failedOn, code, null]);
      return;
    }
    this.deliveries.delete(d.did);
    d.did = this.nextDid();
    this.deliveries.set(d.did, d);
    d.target = next;
    d.attempt++;
    d.tried.add(next.nodeId as string);
    this.hand(d, true);
  }

  /** Another open member of the copy's queue group, one not tried yet first. */
  private nextMember(d: Delivery): Session | RemoteNode | undefined {
    const members = d.event.emitter.world.subscriptions.groupMembers(d.event.frame.pattern, d.queue as string);
    let fallback: Session | RemoteNode | undefined;
    let backedUp: Session | RemoteNode | undefined;
    for (const m of members) {
      if (!m.isOpen || m === d.target) continue;
      if (m.slow) {
        backedUp ??= m;
        continue;
      }
      if (!d.tried.has(m.nodeId as string)) return m;
      fallback ??= m;
    }
    return fallback ?? backedUp;
  }

  private finish(d: Delivery, failure: [string, string, Uint8Array | null] | undefined): void {
    clearTimeout(d.timer);
    this.deliveries.delete(d.did);
    d.target.deliveries?.delete(d);
    const event = d.event;
    event.copies.delete(d);
    if (failure !== undefined) event.failures.push(failure);
    if (event.copies.size === 0) this.complete(event);
    this.settings.onSettled?.();
  }

  /** The emitter's deadline: every copy still out fails with TIMEOUT. */
  private expire(event: PendingEvent): void {
    event.timer = undefined;
    for (const d of [...event.copies]) this.finish(d, [d.target.nodeId as string, RelayErrorCode.TIMEOUT, null]);
  }

  private complete(event: PendingEvent): void {
    clearTimeout(event.timer);
    const emitter = event.emitter;
    if (emitter.pendingEvents.get(event.frame.id) !== event) return;
    emitter.pendingEvents.delete(event.frame.id);
    emitter.retainedEventBytes -= event.retained;
    if (event.failures.length === 0) {
      emitter.send(this.codec.encode({ type: FrameType.Ack, id: event.frame.id, recipients: event.recipients }));
      return;
    }
    // Bounded: handlers' errors come from peers, and the answer must stay a small frame.
    const reported = event.failures
      .slice(0, MAX_REPORTED_FAILURES)
      .map(([node, code, error]) => [node, code, error !== null && error.byteLength > MAX_REPORTED_ERROR_BYTES ? null : error]);
    const more = event.failures.length - reported.length;
    emitter.send(
      this.codec.encode({
        type: FrameType.Error,
        id: event.frame.id,
        code: RelayErrorCode.HANDLER_FAILED,
        message:
          RelayErrorMessages.handlerFailed(event.failures.length, event.recipients) +
          (more > 0 ? ` The first ${reported.length} are listed.` : ''),
        details: encodePayload(reported),
      }),
    );
  }

  /** The emitter left: its event's copies are dropped (late HANDLEDs are then dropped too). */
  private abandon(event: PendingEvent): void {
    clearTimeout(event.timer);
    event.emitter.pendingEvents.delete(event.frame.id);
    event.emitter.retainedEventBytes -= event.retained;
    for (const d of event.copies) {
      clearTimeout(d.timer);
      this.deliveries.delete(d.did);
      d.target.deliveries?.delete(d);
    }
    event.copies.clear();
    this.settings.onSettled?.();
  }

  private dropRelayed(id: number, r: Relayed): void {
    clearTimeout(r.timer);
    this.relayed.delete(id);
    r.session.relayed?.delete(id);
    this.settings.onSettled?.();
  }

  private nextDid(): number {
    do {
      this.lastDid = this.lastDid >= MAX_DID ? 1 : this.lastDid + 1;
    } while (this.deliveries.has(this.lastDid) || this.relayed.has(this.lastDid));
    return this.lastDid;
  }
}
