import { concatBytes } from '@wsrelay/protocol';
import {
  CLUSTER_CHUNK_BYTES,
  CLUSTER_CHUNK_HEAD_BYTES,
  CLUSTER_CHUNK_WINDOW,
  CLUSTER_MAX_CHUNKS,
  CLUSTER_MAX_DEFERRED_BYTES,
} from './cluster-limits.js';
import { type ClusterMessage, ClusterMessageType, type ClusterOutgoing, type Msg } from './cluster-protocol.js';
import type { RemoteRelay } from './remote.js';

/*
 * Chunked messages. A message larger than `chunkBytes` (a presence snapshot
 * of thousands of patterns, a node announcing many, a large payload) goes to
 * one relay as CHUNKs, never as one pub/sub message: Redis cuts a subscriber
 * whose output buffer passes its pubsub limit, and the relay would reconnect
 * and ask for the same snapshot forever.
 *
 * Pacing is pulled by the receiver, per receiving relay: PUBLISH returns once
 * Redis has queued a message for the subscribers, not once they read it, so
 * a sender that pushed every chunk at once would fill the receiver's output
 * buffer just the same. Every chunked message a relay sends to one relay
 * shares one window: at most `window` chunks (1 MiB) that this receiver has
 * not acknowledged (a PULL naming how many of a message it has), however
 * many messages are on their way to it, so 40 concurrent large requests do
 * not add up past Redis's limit. The messages take the window in the order
 * they were sent (the receiver delivers them in that order anyway); the last
 * PULL of a message (all received) ends it, and a PULL of -1 refuses it.
 *
 * Order: a chunked message takes its place among what the receiver gets
 * with its first chunk, a small head (`headBytes`) sent at once, outside the
 * window. Messages from the same relay that arrive after that head are held
 * back until the message is complete (or refused), so a NODE_DOWN is never
 * applied before the snapshot or NODE_UP it follows, nor a completion before
 * the large value it ends, even while the message waits for the window.
 * Progress is watched per relay too: when no chunk to a relay is
 * acknowledged (by the sender) or arrives (at the receiver) for `timeoutMs`
 * while some are due, every chunked message between the two is given up.
 */

/** Sizes and bounds of chunked messages (the defaults in cluster-limits.ts; smaller in tests). */
export interface TransferLimits {
  chunkBytes: number;
  /** Bytes of a message's first chunk, sent at once (no more than chunkBytes). */
  headBytes: number;
  /** Chunks sent to one relay and not yet acknowledged by it, all its messages together. */
  window: number;
  /** Largest message reassembled. */
  maxMessageBytes: number;
  /** Chunked messages to or from a relay that make no progress this long are given up, by both sides, in ms. */
  timeoutMs: number;
  /** Bytes of messages held back behind an incomplete one, per sending relay. */
  maxDeferredBytes: number;
}

export function transferLimits(maxMessageBytes: number, timeoutMs: number, chunkBytes = CLUSTER_CHUNK_BYTES): TransferLimits {
  const headBytes = Math.min(CLUSTER_CHUNK_HEAD_BYTES, chunkBytes);
  return { chunkBytes, headBytes, window: CLUSTER_CHUNK_WINDOW, maxMessageBytes, timeoutMs, maxDeferredBytes: CLUSTER_MAX_DEFERRED_BYTES };
}

interface Outgoing {
  id: number;
  relay: RemoteRelay;
  inner: ClusterMessageType;
  bytes: Uint8Array;
  count: number;
  /** Chunks sent, and chunks the receiver says it has. */
  sent: number;
  received: number;
  replaces: number;
}

/** What goes to one relay: its chunked messages in the order they were sent, and when it last acknowledged a chunk. */
interface Lane {
  messages: Outgoing[];
  touched: number;
}

/** The sending side: chunked messages on their way to other relays. */
export class OutgoingTransfers {
  private readonly lanes = new Map<RemoteRelay, Lane>();
  private readonly transfers = new Map<number, Outgoing>();
  private nextId = 1;

  constructor(
    private readonly limits: TransferLimits,
    /** Sends one (small) message to a relay; false when it cannot. */
    private readonly post: (relay: RemoteRelay, m: ClusterOutgoing) => boolean,
  ) {}

  /** Messages being sent, and the bytes they hold (a snapshot shared by several relays counted once). */
  get counts(): { messages: number; bytes: number } {
    const buffers = new Set<Uint8Array>();
    for (const t of this.transfers.values()) buffers.add(t.bytes);
    let bytes = 0;
    for (const b of buffers) bytes += b.length;
    return { messages: this.transfers.size, bytes };
  }

  /** Starts sending `bytes` (one encoded message of type `inner`) to `relay`; a snapshot supersedes one still on its way there. */
  start(relay: RemoteRelay, inner: ClusterMessageType, bytes: Uint8Array): void {
    let replaces = 0;
    if (inner === ClusterMessageType.Snapshot) {
      for (const t of this.lanes.get(relay)?.messages.filter(t => t.inner === inner) ?? []) {
        this.remove(t);
        replaces = t.id;
      }
    }
    // A lane with nothing due is dropped: one made now counts its silence from now.
    let lane = this.lanes.get(relay);
    if (lane === undefined) this.lanes.set(relay, (lane = { messages: [], touched: Date.now() }));
    const { chunkBytes, headBytes } = this.limits;
    const count = 1 + Math.ceil(Math.max(0, bytes.length - headBytes) / chunkBytes);
    const t: Outgoing = { id: this.nextId++, relay, inner, bytes, count, sent: 0, received: 0, replaces };
    lane.messages.push(t);
    this.transfers.set(t.id, t);
    // The head goes at once, outside the window: it fixes the message's place among what the relay gets from this one.
    if (this.postChunk(t)) this.pump(relay);
  }

  pulled(relay: RemoteRelay, m: Msg<ClusterMessageType.Pull>): void {
    const t = this.transfers.get(m.transfer);
    if (t === undefined || t.relay !== relay) return;
    const lane = this.lanes.get(relay);
    // Refused, or all there.
    if (m.received < 0 || m.received >= t.count) this.remove(t);
    else if (m.received > t.received) t.received = Math.min(m.received, t.sent);
    else return;
    if (lane !== undefined) lane.touched = Date.now();
    this.pump(relay);
  }

  /** Gives up what goes to a relay that stopped pulling. */
  sweep(now: number, blockedMs = 0): void {
    for (const [relay, lane] of [...this.lanes]) {
      // Time this relay could not run does not count as the other's silence.
      lane.touched = Math.min(now, lane.touched + blockedMs);
      if (now - lane.touched > this.limits.timeoutMs) this.forget(relay);
    }
  }

  forget(relay: RemoteRelay): void {
    for (const t of this.lanes.get(relay)?.messages ?? []) this.transfers.delete(t.id);
    this.lanes.delete(relay);
  }

  clear(): void {
    this.transfers.clear();
    this.lanes.clear();
  }

  private remove(t: Outgoing): void {
    this.transfers.delete(t.id);
    const lane = this.lanes.get(t.relay);
    if (lane === undefined) return;
    lane.messages.splice(lane.messages.indexOf(t), 1);
    if (lane.messages.length === 0) this.lanes.delete(t.relay);
  }

  /** Sends the relay's next chunks, oldest message first, while its window has room. */
  private pump(relay: RemoteRelay): void {
    const lane = this.lanes.get(relay);
    if (lane === undefined) return;
    // Heads are outside the window.
    let unacknowledged = 0;
    for (const t of lane.messages) unacknowledged += Math.max(0, t.sent - Math.max(t.received, 1));
    for (const t of [...lane.messages]) {
      while (t.sent < t.count && unacknowledged < this.limits.window) {
        if (!this.postChunk(t)) return;
        unacknowledged++;
      }
      if (unacknowledged >= this.limits.window) return;
    }
  }

  /** Chunk number `t.sent` of `t` (the head, then pieces of chunkBytes); false (and the relay's lane forgotten) when it cannot go. */
  private postChunk(t: Outgoing): boolean {
    const { chunkBytes, headBytes } = this.limits;
    const at = t.sent === 0 ? 0 : headBytes + (t.sent - 1) * chunkBytes;
    const piece = t.bytes.subarray(at, t.sent === 0 ? headBytes : at + chunkBytes);
    const chunk = { type: ClusterMessageType.Chunk, transfer: t.id, index: t.sent, count: t.count, size: t.bytes.length } as const;
    if (!this.post(t.relay, { ...chunk, inner: t.inner, replaces: t.replaces, piece })) {
      this.forget(t.relay);
      return false;
    }
    t.sent++;
    return true;
  }
}

/** A chunked message being put together; `message` once it is (null: it did not decode). */
interface Assembly {
  transfer: number;
  count: number;
  size: number;
  pieces: Uint8Array[];
  bytes: number;
  message?: ClusterMessage | null;
}

/** What one relay sent, in order: messages held back and the chunked messages they wait for. */
type Entry = Assembly | { deferred: ClusterMessage; bytes: number };

/** What one relay sent and is not delivered yet, and when a chunk of it last arrived. */
interface Inbox {
  entries: Entry[];
  deferredBytes: number;
  touched: number;
}

/** Where the receiving side hands what it put together. */
export interface InboundSink {
  /** A message of `relay`, in the order it sent them. */
  deliver(relay: RemoteRelay, m: ClusterMessage): void;
  /** `relay`'s messages can no longer be delivered in order: it is forgotten (and met and synced again). */
  broken(relay: RemoteRelay, why: string): void;
  /** A message refused (too large, malformed): logged, not delivered. */
  refused(relay: RemoteRelay, why: string): void;
  reply(relay: RemoteRelay, m: ClusterOutgoing): void;
  decode(bytes: Uint8Array): ClusterMessage | undefined;
}

/** The receiving side: chunked messages put together, and what follows them held back until they are. */
export class InboundTransfers {
  /** When a chunk of a snapshot last came in (0: never): a relay taking in another's nodes is not stuck. */
  lastProgressAt = 0;

  private readonly inboxes = new Map<RemoteRelay, Inbox>();

  constructor(
    private readonly limits: TransferLimits,
    private readonly sink: InboundSink,
  ) {}

  /** Chunked messages being received, and their bytes so far. */
  get counts(): { messages: number; bytes: number } {
    let [messages, bytes] = [0, 0];
    for (const inbox of this.inboxes.values()) {
      for (const e of inbox.entries) if ('pieces' in e && e.message === undefined) [messages, bytes] = [messages + 1, bytes + e.bytes];
    }
    return { messages, bytes };
  }

  /** Holds `m` back when a chunked message of its relay is incomplete (true: held, or the relay broken). */
  defer(relay: RemoteRelay, m: ClusterMessage, bytes: number): boolean {
    const inbox = this.inboxes.get(relay);
    if (inbox === undefined || inbox.entries.length === 0) return false;
    if (inbox.deferredBytes + bytes > this.limits.maxDeferredBytes) {
      this.sink.broken(relay, `over ${this.limits.maxDeferredBytes} bytes of its messages waiting behind an incomplete chunked one`);
      return true;
    }
    inbox.entries.push({ deferred: m, bytes });
    inbox.deferredBytes += bytes;
    return true;
  }

  chunk(relay: RemoteRelay, m: Msg<ClusterMessageType.Chunk>): void {
    let inbox = this.inboxes.get(relay);
    if (m.index === 0) {
      if (inbox === undefined) this.inboxes.set(relay, (inbox = { entries: [], deferredBytes: 0, touched: Date.now() }));
      const why = this.refusal(m);
      if (why === undefined) inbox.entries.push({ transfer: m.transfer, count: m.count, size: m.size, pieces: [], bytes: 0 });
      else this.refuse(relay, m.transfer, why);
      // What waited only for the superseded message goes now, before this one.
      if (m.replaces !== 0 && this.remove(inbox, m.replaces)) this.release(relay);
      if (why !== undefined || this.inboxes.get(relay) !== inbox) return;
    }
    // A chunk of a message refused or superseded: dropped.
    const a = inbox?.entries.find((e): e is Assembly => 'pieces' in e && e.transfer === m.transfer);
    if (inbox === undefined || a === undefined) return;
    if (m.index !== a.pieces.length || m.count !== a.count || a.bytes + m.piece.length > a.size || m.piece.length === 0) {
      this.remove(inbox, a.transfer);
      this.refuse(relay, m.transfer, `chunk ${m.index} of ${m.count} out of order or over its size`);
      return this.release(relay);
    }
    a.pieces.push(m.piece);
    a.bytes += m.piece.length;
    inbox.touched = Date.now();
    if (m.inner === ClusterMessageType.Snapshot) this.lastProgressAt = inbox.touched;
    if (a.pieces.length < a.count)
      return this.sink.reply(relay, { type: ClusterMessageType.Pull, transfer: a.transfer, received: a.pieces.length });
    this.sink.reply(relay, { type: ClusterMessageType.Pull, transfer: a.transfer, received: a.count });
    if (a.bytes !== a.size) this.sink.refused(relay, `a chunked message of ${a.bytes} bytes, announced as ${a.size}`);
    a.message = a.bytes === a.size ? (this.sink.decode(concatBytes(a.pieces)) ?? null) : null;
    if (a.message === null && a.bytes === a.size) this.sink.refused(relay, 'a chunked message that does not decode');
    a.pieces = [];
    this.release(relay);
  }

  /** A relay none of whose incomplete chunked messages got a chunk for `timeoutMs` is broken. */
  sweep(now: number, blockedMs = 0): void {
    for (const [relay, inbox] of [...this.inboxes]) {
      inbox.touched = Math.min(now, inbox.touched + blockedMs);
      if (now - inbox.touched <= this.limits.timeoutMs) continue;
      const stalled = inbox.entries.find((e): e is Assembly => 'pieces' in e && e.message === undefined);
      if (stalled !== undefined)
        this.sink.broken(relay, `a chunked message stalled at ${stalled.pieces.length} of ${stalled.count} chunks`);
    }
  }

  forget(relay: RemoteRelay): void {
    this.inboxes.delete(relay);
  }

  clear(): void {
    this.inboxes.clear();
  }

  private refusal(m: Msg<ClusterMessageType.Chunk>): string | undefined {
    if (m.size > this.limits.maxMessageBytes) return `a message of ${m.size} bytes, over ${this.limits.maxMessageBytes}`;
    if (m.count < 1 || m.count > CLUSTER_MAX_CHUNKS || m.count > m.size) return `a message in ${m.count} chunks`;
    return undefined;
  }

  private refuse(relay: RemoteRelay, transfer: number, why: string): void {
    this.sink.refused(relay, why);
    this.sink.reply(relay, { type: ClusterMessageType.Pull, transfer, received: -1 });
  }

  private remove(inbox: { entries: Entry[] }, transfer: number): boolean {
    const i = inbox.entries.findIndex(e => 'pieces' in e && e.transfer === transfer);
    if (i !== -1) inbox.entries.splice(i, 1);
    return i !== -1;
  }

  /** Delivers, in order, what no longer waits for an incomplete message. */
  private release(relay: RemoteRelay): void {
    for (;;) {
      const inbox = this.inboxes.get(relay);
      const head = inbox?.entries[0];
      if (inbox === undefined || head === undefined || ('pieces' in head && head.message === undefined)) return;
      inbox.entries.shift();
      if ('deferred' in head) {
        inbox.deferredBytes -= head.bytes;
        this.sink.deliver(relay, head.deferred);
      } else if (head.message !== null && head.message !== undefined) {
        this.sink.deliver(relay, head.message);
      }
    }
  }
}
