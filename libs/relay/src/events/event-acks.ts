import {
  encodePayload,
  type EventFrame,
  type FrameCodec,
  FrameType,
  RelayError,
  RelayErrorCode,
  RelayErrorMessages,
} from '@wsrelay/protocol';
import { ClusterMessageType } from '../cluster/cluster-protocol.js';
import type { RelayCluster } from '../cluster/relay-cluster.js';
import { RemoteNode, type RemoteRelay } from '../cluster/remote.js';
import { LocalNode } from '../routing/local-node.js';
import type { Routable } from '../routing/routable.js';
import type { World } from '../routing/world.js';
import { type Budget, budgetRefusalMessage } from '../internal/budget.js';
import { IdSequence } from '../internal/id-sequence.js';
import { EventDrop, type RelayObserver } from '../observe/relay-observer.js';
import { eventFrame, HANDLER_ERROR } from './event-frame.js';
import { RelayedCopies } from './relayed-copies.js';

/** Where a copy can be: a node of this relay or of another. */
type Target = LocalNode | RemoteNode;

/** An event whose emitter asked to hear from every handler (`ack: 'handlers'`). */
interface PendingEvent {
  readonly emitter: LocalNode;
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
interface Delivery {
  /** A fresh id per attempt: a late answer to an earlier attempt names an id that is gone. */
  did: number;
  readonly event: PendingEvent;
  /** Its queue group; null for a plain subscriber (which nobody can stand in for). */
  readonly queue: string | null;
  target: Target;
  attempt: number;
  /** Node ids it was given to. */
  readonly tried: Set<string>;
  timer: NodeJS.Timeout | undefined;
}

/** An emitter's events in flight, and the payload bytes they keep here. */
interface Emitted {
  readonly events: Map<number, PendingEvent>;
  retained: number;
}

export interface EventAckSettings {
  /** How long one delivery may go unconfirmed before it moves on. */
  attemptTimeoutMs: number;
  /** Deliveries of one event to a queue group, in all. */
  maxAttempts: number;
  /** Payload bytes one connection's unanswered handler-acked events may keep at the relay (for redelivery). */
  maxRetainedBytes: number;
  /** Payload bytes all connections' unanswered handler-acked events may keep at the relay together (one connection: its share). */
  retainedBytes?: Budget;
  /** Called whenever a delivery settles (the relay's shutdown drain waits for none to be left). */
  onSettled?: () => void;
  /** Counts copies that move to another member, and those that cannot be given. */
  observer?: Pick<RelayObserver, 'eventRedelivered' | 'eventDropped'>;
}

/** Failed deliveries an emitter is told about in full; past it, only how many more. */
const MAX_REPORTED_FAILURES = 100;
/** A handler's error (MessagePack) longer than this is reported without its body. */
const MAX_REPORTED_ERROR_BYTES = 4096;
const EMPTY = new Uint8Array(0);
const MAX_DID = 0xffff_fffe;

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
  private readonly byTarget = new Map<Routable, Set<Delivery>>();
  private readonly byEmitter = new Map<LocalNode, Emitted>();
  /** Delivery ids, shared with the copies this relay makes for other relays. */
  private readonly ids = new IdSequence(MAX_DID);
  /** The delivery ids in use: this relay's deliveries and the copies it made for other relays. */
  private readonly didsInUse = { has: (id: number): boolean => this.deliveries.has(id) || this.relayed.has(id) };
  /** Copies this relay makes for other relays' events. */
  private readonly relayed: RelayedCopies;
  private readonly onSettled: () => void;
  /** HANDLEDs that named nothing given to their sender. */
  dropped = 0;

  constructor(
    private readonly codec: FrameCodec,
    private readonly cluster: RelayCluster,
    private readonly settings: EventAckSettings,
  ) {
    this.onSettled = settings.onSettled ?? (() => undefined);
    this.relayed = new RelayedCopies(cluster, () => this.nextDid(), this.onSettled, settings.observer);
  }

  /** Deliveries and relayed deliveries in flight. */
  get size(): number {
    return this.deliveries.size + this.relayed.size;
  }

  /** Events `emitter` waits for handler acks of. */
  pending(emitter: LocalNode): number {
    return this.byEmitter.get(emitter)?.events.size ?? 0;
  }

  has(emitter: LocalNode, id: number): boolean {
    return this.byEmitter.get(emitter)?.events.has(id) === true;
  }

  /**
   * Starts an event with handler acks to `recipients`; returns how many
   * copies went out (0: the emitter is ACKed at once by the caller).
   * A targeted event (`peer`) goes to that node only: its copy never moves.
   * Throws RATE_LIMITED when the emitter's unanswered events would keep
   * more than `maxRetainedBytes` of payload or than its share of the
   * relay-wide `retainedBytes`, or all emitters' more than all of it.
   */
  start(emitter: LocalNode, frame: EventFrame, recipients: readonly Routable[], timeoutMs: number): number {
    const open = recipients.filter(r => r.isOpen) as Target[];
    if (open.length < recipients.length) this.settings.observer?.eventDropped(EventDrop.Unreachable, recipients.length - open.length);
    if (open.length === 0) return 0;
    const targeted = frame.peer !== null;
    // The payload is kept only where a copy may have to move to another member.
    const movable = !targeted && open.some(t => t.queue !== null);
    const retained = movable ? frame.payload.byteLength : 0;
    const emitted = this.emitted(emitter);
    if (retained > 0 && emitted.retained + retained > this.settings.maxRetainedBytes) {
      throw new RelayError(RelayErrorCode.RATE_LIMITED, RelayErrorMessages.tooMuchRetained(this.settings.maxRetainedBytes));
    }
    const budget = this.settings.retainedBytes;
    const refusal = retained > 0 ? budget?.takeFor(emitted.retained, retained) : undefined;
    if (refusal !== undefined) {
      const message = budgetRefusalMessage(refusal, budget!, 'payloads of events with handler acks', 'retainedBytes');
      throw new RelayError(RelayErrorCode.RATE_LIMITED, message);
    }
    emitted.retained += retained;
    const event: PendingEvent = { emitter, frame, recipients: open.length, failures: [], copies: new Set(), retained, timer: undefined };
    emitted.events.set(frame.id, event);
    event.timer = setTimeout(() => this.expire(event), timeoutMs);
    const remote = new Map<RemoteRelay, Delivery[]>();
    for (const target of open) {
      const d: Delivery = {
        did: this.nextDid(),
        event,
        queue: targeted ? null : target.queue,
        target,
        attempt: 1,
        tried: new Set([target.nodeId]),
        timer: undefined,
      };
      this.deliveries.set(d.did, d);
      event.copies.add(d);
      if (target instanceof RemoteNode) {
        const list = remote.get(target.relay);
        if (list === undefined) remote.set(target.relay, [d]);
        else list.push(d);
      }
      this.hand(d, target instanceof LocalNode);
    }
    for (const [relay, list] of remote) this.sendRemote(relay, event, list);
    // Every copy is out: without a movable one the payload is not needed again.
    if (!movable) event.frame = { ...frame, payload: EMPTY };
    return open.length;
  }

  /** HANDLED from a node of this relay. False when it names nothing given to that node (dropped). */
  handled(node: LocalNode, id: number, error: Uint8Array | null): boolean {
    const d = this.deliveries.get(id);
    if (d !== undefined && d.target === node) {
      this.finish(d, error === null ? undefined : [node.nodeId, HANDLER_ERROR, error]);
      return true;
    }
    if (this.relayed.handled(node, id, error)) return true;
    this.dropped++;
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
    copies: ReadonlyArray<readonly [string, number, number]>,
    bytesFor: (id: number, attempt?: number) => Uint8Array,
  ): void {
    this.relayed.relay(relay, world, pattern, copies, bytesFor);
  }

  /** A node of this relay left: its copies move on (or fail), other relays hear of theirs, and its own events are dropped. */
  nodeGone(node: LocalNode): void {
    for (const d of [...(this.byTarget.get(node) ?? [])]) this.moveOn(d, RelayErrorCode.PROVIDER_DISCONNECTED);
    this.byTarget.delete(node);
    this.relayed.nodeGone(node);
    // Its own events: nobody waits for the answer any more.
    const emitted = this.byEmitter.get(node);
    if (emitted !== undefined) for (const event of [...emitted.events.values()]) this.abandon(event);
    this.byEmitter.delete(node);
  }

  /** A node of another relay left (not drained): its copies move on. */
  remoteNodeGone(node: RemoteNode): void {
    for (const d of [...(this.byTarget.get(node) ?? [])]) this.moveOn(d, RelayErrorCode.PROVIDER_DISCONNECTED);
    this.byTarget.delete(node);
  }

  /**
   * Another relay is gone (or started over): copies it asked us to make need
   * no answer, and copies we gave its nodes move on (drained nodes included:
   * they were out of presence already, and their answers cannot come now).
   */
  relayGone(relay: RemoteRelay): void {
    this.relayed.relayGone(relay);
    for (const d of [...this.deliveries.values()]) {
      if (d.target instanceof RemoteNode && d.target.relay === relay) this.moveOn(d, RelayErrorCode.PROVIDER_DISCONNECTED);
    }
  }

  private nextDid(): number {
    return this.ids.next(this.didsInUse);
  }

  /** Takes a delivery off its target's list (dropped once empty: targets come and go). */
  private untrack(d: Delivery): void {
    const mine = this.byTarget.get(d.target);
    if (mine === undefined) return;
    mine.delete(d);
    if (mine.size === 0) this.byTarget.delete(d.target);
  }

  private emitted(emitter: LocalNode): Emitted {
    let e = this.byEmitter.get(emitter);
    if (e === undefined) this.byEmitter.set(emitter, (e = { events: new Map(), retained: 0 }));
    return e;
  }

  /** Writes (or forwards) a delivery's copy to its target; `send` false when a batch for remote targets follows. */
  private hand(d: Delivery, send: boolean): void {
    const target = d.target;
    let mine = this.byTarget.get(target);
    if (mine === undefined) this.byTarget.set(target, (mine = new Set()));
    mine.add(d);
    clearTimeout(d.timer);
    d.timer = setTimeout(() => this.moveOn(d, RelayErrorCode.TIMEOUT), this.settings.attemptTimeoutMs);
    if (!send) return;
    if (target instanceof LocalNode) target.ask(this.codec.encode(this.copy(d)));
    else this.sendRemote(target.relay, d.event, [d]);
  }

  private copy(d: Delivery): EventFrame {
    const { frame, emitter } = d.event;
    return eventFrame(frame, d.did, emitter.nodeId, emitter.claims, d.attempt);
  }

  private sendRemote(relay: RemoteRelay, event: PendingEvent, list: Delivery[]): void {
    const copies = list.map(d => [d.target.nodeId, d.did, d.attempt] as const);
    const { emitter, frame } = event;
    const sent = this.cluster.send(relay, {
      type: ClusterMessageType.EventCopies,
      tenant: emitter.world.tenant,
      pattern: frame.pattern,
      payload: frame.payload,
      emitterNodeId: emitter.nodeId,
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
    const failedOn = d.target.nodeId;
    this.untrack(d);
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
    d.tried.add(next.nodeId);
    this.settings.observer?.eventRedelivered();
    this.hand(d, true);
  }

  /** Another open member of the copy's queue group, one not tried yet first. */
  private nextMember(d: Delivery): Target | undefined {
    const members = d.event.emitter.world.subscriptions.groupMembers(d.event.frame.pattern, d.queue as string) as readonly Target[];
    let fallback: Target | undefined;
    let backedUp: Target | undefined;
    for (const m of members) {
      if (!m.isOpen || m === d.target) continue;
      if (m.slow) {
        backedUp ??= m;
        continue;
      }
      if (!d.tried.has(m.nodeId)) return m;
      fallback ??= m;
    }
    return fallback ?? backedUp;
  }

  private finish(d: Delivery, failure: [string, string, Uint8Array | null] | undefined): void {
    clearTimeout(d.timer);
    this.deliveries.delete(d.did);
    this.untrack(d);
    const event = d.event;
    event.copies.delete(d);
    if (failure !== undefined) event.failures.push(failure);
    if (event.copies.size === 0) this.complete(event);
    this.onSettled();
  }

  /** The emitter's deadline: every copy still out fails with TIMEOUT. */
  private expire(event: PendingEvent): void {
    event.timer = undefined;
    for (const d of [...event.copies]) this.finish(d, [d.target.nodeId, RelayErrorCode.TIMEOUT, null]);
  }

  private complete(event: PendingEvent): void {
    clearTimeout(event.timer);
    const emitted = this.byEmitter.get(event.emitter);
    if (emitted?.events.get(event.frame.id) !== event) return;
    emitted.events.delete(event.frame.id);
    this.release(emitted, event);
    const id = event.frame.id;
    if (event.failures.length === 0) {
      event.emitter.send(this.codec.encode({ type: FrameType.Ack, id, recipients: event.recipients }));
      return;
    }
    // Bounded: handlers' errors come from peers, and the answer must stay a small frame.
    const reported = event.failures
      .slice(0, MAX_REPORTED_FAILURES)
      .map(([node, code, error]) => [node, code, error !== null && error.byteLength > MAX_REPORTED_ERROR_BYTES ? null : error]);
    const more = event.failures.length - reported.length;
    const message =
      RelayErrorMessages.handlerFailed(event.failures.length, event.recipients) +
      (more > 0 ? ` The first ${reported.length} are listed.` : '');
    event.emitter.send(
      this.codec.encode({ type: FrameType.Error, id, code: RelayErrorCode.HANDLER_FAILED, message, details: encodePayload(reported) }),
    );
  }

  /** The event's payload is no longer kept for redelivery. */
  private release(emitted: Emitted, event: PendingEvent): void {
    emitted.retained -= event.retained;
    this.settings.retainedBytes?.give(event.retained);
  }

  /** The emitter left: its event's copies are dropped (late HANDLEDs are then dropped too). */
  private abandon(event: PendingEvent): void {
    clearTimeout(event.timer);
    const emitted = this.byEmitter.get(event.emitter);
    if (emitted !== undefined) {
      emitted.events.delete(event.frame.id);
      this.release(emitted, event);
    }
    for (const d of event.copies) {
      clearTimeout(d.timer);
      this.deliveries.delete(d.did);
      this.untrack(d);
    }
    event.copies.clear();
    this.onSettled();
  }
}
