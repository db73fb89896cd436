import { CLUSTER_CHUNK_BYTES, CLUSTER_CHUNK_WINDOW, CLUSTER_MAX_CHUNKS, CLUSTER_MAX_DEFERRED_BYTES } from './cluster-limits.js';
import { type ClusterMessage, ClusterMessageType, type ClusterOutgoing, type Msg } from './cluster-protocol.js';
import type { RemoteRelay } from './remote.js';

/*
 * Chunked messages. A message larger than `chunkBytes` (a presence snapshot
 * of thousands of patterns, a node announcing many, a large payload) goes to
 * one relay as CHUNKs, never as one pub/sub message: Redis cuts a subscriber
 * whose output buffer passes its pubsub limit, and the relay would reconnect
 * and ask for the same snapshot forever.
 *
 * Pacing is pulled by the receiver: PUBLISH returns once Redis has queued a
 * message for the subscribers, not once they read it, so a sender that
 * pushed every chunk at once would fill the receiver's output buffer just the
 * same. The sender has at most `window` chunks of a message that the receiver
 * has not acknowledged (a PULL naming how many it has), so at most
 * `window × chunkBytes` (1 MiB) of a message waits in Redis for a reader; the
 * last PULL (all received) ends the transfer, and a PULL of -1 refuses it.
 *
 * Order: a chunked message counts as sent when its first chunk is. Messages
 * from the same relay that arrive after that first chunk are held back until
 * the message is complete (or refused), so a NODE_DOWN is never applied
 * before the snapshot or NODE_UP it follows, nor a completion before the
 * large value it ends.
 */

/** Sizes and bounds of chunked messages (the defaults in cluster-limits.ts; smaller in tests). */
export interface TransferLimits {
  chunkBytes: number;
  window: number;
  /** Largest message reassembled. */
  maxMessageBytes: number;
  /** A transfer that makes no progress this long is given up, by both sides, in ms. */
  timeoutMs: number;
  /** Bytes of messages held back behind an incomplete one, per sending relay. */
  maxDeferredBytes: number;
}

export function transferLimits(maxMessageBytes: number, timeoutMs: number, chunkBytes = CLUSTER_CHUNK_BYTES): TransferLimits {
  return { chunkBytes, window: CLUSTER_CHUNK_WINDOW, maxMessageBytes, timeoutMs, maxDeferredBytes: CLUSTER_MAX_DEFERRED_BYTES };
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
  touched: number;
}

/** The sending side: chunked messages on their way to other relays. */
export class OutgoingTransfers {
  private readonly transfers = new Map<number, Outgoing>();
  private nextId = 1;

  constructor(
    private readonly limits: TransferLimits,
    /** Sends one (small) message to a relay; false when it cannot. */
    private readonly post: (relay: RemoteRelay, m: ClusterOutgoing) => boolean,
  ) {}

  /** Messages being sent, and the bytes they hold. */
  get counts(): { messages: number; bytes: number } {
    let bytes = 0;
    for (const t of this.transfers.values()) bytes += t.bytes.length;
    return { messages: this.transfers.size, bytes };
  }

  /** Starts sending `bytes` (one encoded message of type `inner`) to `relay`; a snapshot supersedes one still on its way there. */
  start(relay: RemoteRelay, inner: ClusterMessageType, bytes: Uint8Array): void {
    let replaces = 0;
    if (inner === ClusterMessageType.Snapshot) {
      for (const t of this.transfers.values()) {
        if (t.relay !== relay || t.inner !== inner) continue;
        this.transfers.delete(t.id);
        replaces = t.id;
      }
    }
    const count = Math.ceil(bytes.length / this.limits.chunkBytes);
    const t: Outgoing = { id: this.nextId++, relay, inner, bytes, count, sent: 0, received: 0, replaces, touched: Date.now() };
    this.transfers.set(t.id, t);
    this.pump(t);
  }

  pulled(relay: RemoteRelay, m: Msg<ClusterMessageType.Pull>): void {
    const t = this.transfers.get(m.transfer);
    if (t === undefined || t.relay !== relay) return;
    // Refused, or all there.
    if (m.received < 0 || m.received >= t.count) {
      this.transfers.delete(t.id);
      return;
    }
    if (m.received <= t.received) return;
    t.received = Math.min(m.received, t.sent);
    t.touched = Date.now();
    this.pump(t);
  }

  /** Gives up transfers whose receiver stopped pulling. */
  sweep(now: number): void {
    for (const t of [...this.transfers.values()]) if (now - t.touched > this.limits.timeoutMs) this.transfers.delete(t.id);
  }

  forget(relay: RemoteRelay): void {
    for (const t of [...this.transfers.values()]) if (t.relay === relay) this.transfers.delete(t.id);
  }

  clear(): void {
    this.transfers.clear();
  }

  private pump(t: Outgoing): void {
    const { chunkBytes, window } = this.limits;
    while (t.sent < t.count && t.sent < t.received + window) {
      const at = t.sent * chunkBytes;
      const piece = t.bytes.subarray(at, at + chunkBytes);
      const chunk = { type: ClusterMessageType.Chunk, transfer: t.id, index: t.sent, count: t.count, size: t.bytes.length } as const;
      if (!this.post(t.relay, { ...chunk, inner: t.inner, replaces: t.replaces, piece })) {
        this.transfers.delete(t.id);
        return;
      }
      t.sent++;
    }
  }
}

/** A chunked message being put together; `message` once it is (null: it did not decode). */
interface Assembly {
  transfer: number;
  count: number;
  size: number;
  pieces: Uint8Array[];
  bytes: number;
  touched: number;
  message?: ClusterMessage | null;
}

/** What one relay sent, in order: messages held back and the chunked messages they wait for. */
type Entry = Assembly | { deferred: ClusterMessage; bytes: number };

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
  private readonly inboxes = new Map<RemoteRelay, { entries: Entry[]; deferredBytes: number }>();

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
      if (inbox === undefined) this.inboxes.set(relay, (inbox = { entries: [], deferredBytes: 0 }));
      const why = this.refusal(m);
      if (why === undefined)
        inbox.entries.push({ transfer: m.transfer, count: m.count, size: m.size, pieces: [], bytes: 0, touched: Date.now() });
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
    a.touched = Date.now();
    if (a.pieces.length < a.count)
      return this.sink.reply(relay, { type: ClusterMessageType.Pull, transfer: a.transfer, received: a.pieces.length });
    this.sink.reply(relay, { type: ClusterMessageType.Pull, transfer: a.transfer, received: a.count });
    if (a.bytes !== a.size) this.sink.refused(relay, `a chunked message of ${a.bytes} bytes, announced as ${a.size}`);
    a.message = a.bytes === a.size ? (this.sink.decode(concat(a.pieces, a.size)) ?? null) : null;
    a.pieces = [];
    this.release(relay);
  }

  /** A relay whose chunked message made no progress for `timeoutMs` is broken. */
  sweep(now: number): void {
    for (const [relay, inbox] of [...this.inboxes]) {
      const stalled = inbox.entries.find(e => 'pieces' in e && e.message === undefined && now - e.touched > this.limits.timeoutMs);
      if (stalled !== undefined)
        this.sink.broken(
          relay,
          `a chunked message stalled at ${(stalled as Assembly).pieces.length} of ${(stalled as Assembly).count} chunks`,
        );
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

function concat(pieces: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of pieces) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
