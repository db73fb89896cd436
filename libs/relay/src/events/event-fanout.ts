import {
  EventFlag,
  type EventFrame,
  type FrameCodec,
  RelayError,
  RelayErrorCode,
  RelayErrorMessages,
  type WebSocketMessage,
} from '@wsrelay/protocol';
import { ClusterMessageType as Cmt, type Msg } from '../cluster/cluster-protocol.js';
import type { RelayCluster } from '../cluster/relay-cluster.js';
import { RemoteNode, type RemoteRelay } from '../cluster/remote.js';
import { EventDrop, type RelayObserver } from '../observe/relay-observer.js';
import type { RelayTracing } from '../observe/relay-tracing.js';
import { LocalNode } from '../routing/local-node.js';
import type { Routable } from '../routing/routable.js';
import type { Worlds } from '../routing/world.js';
import type { InFlightLimit } from '../session/in-flight-limit.js';
import type { Replies } from '../session/replies.js';
import type { EventAcks } from './event-acks.js';
import { eventFrame } from './event-frame.js';

/**
 * Events: each one goes to every subscriber of its subject (one member per
 * queue group), on this relay and, through the cluster, on others, or to the
 * one node it names; the emitter is acknowledged with how many it reached.
 * With handler acks, EventAcks takes over and acknowledges once every
 * handler has answered; passive subscribers, which cannot answer, get a
 * plain copy and are neither waited for nor counted.
 */
export class EventFanout {
  constructor(
    private readonly acks: EventAcks,
    private readonly worlds: Worlds,
    private readonly cluster: RelayCluster,
    private readonly replies: Replies,
    private readonly limit: InFlightLimit<LocalNode>,
    /** How long an emitter waits for handler acks when its event does not say. */
    private readonly defaultAckTimeoutMs: number,
    /** Counts events published here, and those that reach nobody. */
    private readonly observer?: Pick<RelayObserver, 'eventPublished' | 'eventDropped'>,
    /** Spans of traced events (with the `tracing` option). */
    private readonly tracing?: RelayTracing,
  ) {}

  private get codec(): FrameCodec {
    return this.replies.codec;
  }

  /**
   * Fans an event out; returns how many nodes it was delivered to (on this
   * relay and, through the backplane, on others), or undefined when the
   * emitter asked for handler acks: the ACK (or HANDLER_FAILED) comes once
   * every handler has answered.
   */
  publish(emitter: LocalNode, frame: EventFrame): number | undefined {
    const handlers = frame.flags !== undefined && (frame.flags & EventFlag.ACK_HANDLERS) !== 0 && frame.id !== 0;
    if (handlers) {
      if (this.acks.has(emitter, frame.id)) {
        throw new RelayError(RelayErrorCode.BAD_FRAME, RelayErrorMessages.badFrame(RelayErrorMessages.duplicateId(frame.id)));
      }
      this.limit.check(emitter);
    }
    const recipients = this.recipients(emitter, frame);
    this.observer?.eventPublished();
    this.tracing?.published(frame.pattern, frame.ext, emitter.nodeId, recipients.length);
    if (recipients.length === 0) {
      this.observer?.eventDropped(EventDrop.NoSubscriber, 1);
      return 0;
    }
    if (handlers) return this.withHandlers(emitter, frame, recipients);
    return this.deliver(emitter, frame, recipients);
  }

  /**
   * The emitter's ACK with the number of recipients (0 included); none for
   * an emitter that wants none (id 0), nor yet for one waiting for handler acks
   * (`recipients` undefined). What the gateway's ack interceptor and its hot path both do.
   */
  acknowledge(emitter: LocalNode, id: number, recipients: number | undefined): void {
    if (recipients !== undefined && id !== 0) this.replies.ack(emitter, id, recipients);
  }

  /** HANDLED: a node finished a copy of an event with handler acks. */
  handled(node: LocalNode, id: number, error: Uint8Array | null): void {
    this.acks.handled(node, id, error);
  }

  /** An event another relay sends to some nodes of this one. */
  remoteEvent(m: Msg<Cmt.Event>, from?: string): void {
    const world = this.worlds.get(m.tenant);
    if (world === undefined) return;
    this.tracing?.published(m.pattern, m.ext, m.emitterNodeId, m.targets.length, from);
    let bytes: WebSocketMessage | undefined;
    let anonymous: WebSocketMessage | undefined;
    let unreachable = 0;
    for (const nodeId of m.targets) {
      const node = world.nodes.get(nodeId);
      // The emitter's relay chose by what it knew: the id may have changed hands, or the subscription gone, since.
      if (!(node instanceof LocalNode) || !node.isOpen || !world.subscriptions.subscribes(node, m.pattern)) {
        unreachable++;
        continue;
      }
      // A passive subscriber (a browser) is not given the emitter's verified claims.
      if (node.passive) node.send((anonymous ??= this.codec.encodeMessage(eventFrame(m, m.id, m.emitterNodeId, null))));
      else node.send((bytes ??= this.codec.encodeMessage(eventFrame(m, m.id, m.emitterNodeId, m.claims))));
    }
    if (unreachable > 0) this.observer?.eventDropped(EventDrop.Unreachable, unreachable);
  }

  /** Handler-acked copies another relay asks this one to hand to its nodes. */
  remoteEventCopies(relay: RemoteRelay, m: Msg<Cmt.EventCopies>): void {
    // A plain copy (no attempt) goes to a passive subscriber only: without the emitter's claims.
    const frame = (id: number, attempt?: number) =>
      this.codec.encode(eventFrame(m, id, m.emitterNodeId, attempt === undefined ? null : m.claims, attempt));
    this.acks.relay(relay, this.worlds.get(m.tenant), m.pattern, m.copies, frame);
  }

  private recipients(emitter: LocalNode, frame: EventFrame): readonly Routable[] {
    const world = emitter.world;
    if (frame.peer === null) return world.subscriptions.recipients(frame.pattern);
    const target = world.nodes.get(frame.peer);
    return target !== undefined && world.subscriptions.subscribes(target, frame.pattern) ? [target] : [];
  }

  /**
   * An event with handler acks: servers get copies to answer; passive
   * subscribers (browsers) cannot send HANDLED, so they get a plain copy,
   * once the event is accepted, and the ACK counts the handlers only.
   */
  private withHandlers(emitter: LocalNode, frame: EventFrame, recipients: readonly Routable[]): number | undefined {
    const listeners = recipients.some(isPassive) ? recipients.filter(isPassive) : [];
    const answering = listeners.length === 0 ? recipients : recipients.filter(r => !isPassive(r));
    const copies = answering.length === 0 ? 0 : this.acks.start(emitter, frame, answering, frame.timeoutMs ?? this.defaultAckTimeoutMs);
    if (listeners.length > 0) this.deliver(emitter, frame, listeners);
    return copies === 0 ? 0 : undefined;
  }

  /** A plain event: one encoding for every local recipient, one cluster message per other relay. */
  private deliver(emitter: LocalNode, frame: EventFrame, recipients: readonly Routable[]): number {
    let bytes: WebSocketMessage | undefined;
    let anonymous: WebSocketMessage | undefined;
    let remote: Map<RemoteRelay, string[]> | undefined;
    let delivered = 0;
    for (const node of recipients) {
      if (!node.isOpen) continue;
      if (node instanceof RemoteNode) {
        remote ??= new Map();
        const targets = remote.get(node.relay);
        if (targets === undefined) remote.set(node.relay, [node.nodeId]);
        else targets.push(node.nodeId);
        continue;
      }
      // A passive subscriber (a browser) is not given the emitter's verified claims.
      if (node.passive === true)
        (node as LocalNode).send((anonymous ??= this.codec.encodeMessage(eventFrame(frame, frame.id, emitter.nodeId, null))));
      else (node as LocalNode).send((bytes ??= this.codec.encodeMessage(eventFrame(frame, frame.id, emitter.nodeId, emitter.claims))));
      delivered++;
    }
    if (remote !== undefined) delivered += this.forward(emitter, frame, remote);
    // Every other recipient was closed, or on a relay the backplane could not reach.
    if (delivered < recipients.length) this.observer?.eventDropped(EventDrop.Unreachable, recipients.length - delivered);
    return delivered;
  }

  /** A plain event's copies for nodes of other relays: one cluster message per relay; returns how many copies went. */
  private forward(emitter: LocalNode, frame: EventFrame, remote: Map<RemoteRelay, string[]>): number {
    let delivered = 0;
    for (const [relay, targets] of remote) {
      const sent = this.cluster.send(relay, {
        type: Cmt.Event,
        tenant: emitter.world.tenant,
        id: frame.id,
        pattern: frame.pattern,
        payload: frame.payload,
        emitterNodeId: emitter.nodeId,
        ext: frame.ext,
        claims: emitter.claims,
        targets,
      });
      if (sent) delivered += targets.length;
    }
    return delivered;
  }
}

const isPassive = (node: Routable): boolean => node.passive === true;
