import { type Frame, FrameCodec, FrameType } from '@wsrelay/protocol';
import WebSocket from 'ws';
import { describeFrame, Failure } from './failure.js';

/** One WebSocket message from the relay: the frame it holds, or why it holds none. */
export interface Message {
  /** Its place in the order of arrival. */
  seq: number;
  bytes: Uint8Array;
  binary: boolean;
  frame?: Frame;
  /** Why the message is not a frame (a text message, or bytes the codec refused). */
  problem?: string;
}

export type Match = (frame: Frame) => boolean;

export interface PeerOptions {
  /** A JWT, sent as `Authorization: Bearer` at the upgrade. */
  token?: string;
  /** How long a frame the relay owes may take, by default. */
  waitMs: number;
}

/** Most frames a failure lists of those that came while it waited for another. */
const LISTED = 4;

/**
 * A raw protocol connection to the relay: frames out, frames in (kept in
 * order until a check takes them), and the close. Every wait is bounded and
 * fails with a Failure naming what it waited for and what came instead.
 */
export class Peer {
  /** The node id it said HELLO with, once it has. */
  nodeId = '';
  closeCode: number | undefined;
  closeReason = '';
  private readonly codec = new FrameCodec();
  private readonly inbox: Message[] = [];
  private received = 0;
  private waiters = new Set<() => void>();

  private constructor(
    readonly socket: WebSocket,
    readonly waitMs: number,
  ) {
    socket.on('message', (data: Buffer, binary: boolean) => {
      this.inbox.push(this.read(new Uint8Array(data), binary));
      this.wake();
    });
    socket.on('close', (code: number, reason: Buffer) => {
      this.closeCode = code;
      this.closeReason = reason.toString();
      this.wake();
    });
  }

  /** Opens a WebSocket to `url`; fails when the upgrade is refused or takes longer than `waitMs`. */
  static async open(url: string, options: PeerOptions): Promise<Peer> {
    const headers = options.token === undefined ? undefined : { Authorization: `Bearer ${options.token}` };
    const socket = new WebSocket(url, { headers, handshakeTimeout: options.waitMs });
    // Errors after the open (a reset) show as the close; before it they fail the open.
    socket.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', err => reject(new Failure(`could not open a WebSocket to ${url}: ${err.message}`)));
    });
    return new Peer(socket, options.waitMs);
  }

  send(frame: Frame): void {
    this.sendRaw(this.codec.encode(frame));
  }

  /** Bytes (a binary message) or text as they are, for frames the codec would never write. */
  sendRaw(data: Uint8Array | string): void {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(data);
  }

  /** The next message, in order, whatever it holds. */
  async nextMessage(what: string, timeoutMs = this.waitMs): Promise<Message> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const message = this.inbox.shift();
      if (message !== undefined) return message;
      this.failIfClosed(what);
      if (Date.now() >= deadline) throw new Failure(`timed out after ${timeoutMs} ms waiting for ${what} (nothing came)`);
      await this.change(deadline);
    }
  }

  /** The first frame received (before or from now) that `match` accepts, taken out of the inbox. */
  async take(match: Match, what: string, timeoutMs = this.waitMs): Promise<Frame> {
    return (await this.takeMessage(match, what, timeoutMs)).frame as Frame;
  }

  /**
   * The frame `match` accepts if one is here (taken out); fails when a
   * message that is not a frame came, or the connection closed without one.
   */
  poll(match: Match, what: string): Frame | undefined {
    return this.pollMessage(match, what)?.frame;
  }

  /**
   * Proves that no frame `unwanted` accepts came before now: sends PING and
   * waits for its PONG. The relay answers a connection's frames in order, so
   * whatever it wrote to this connection before it read the PING is here
   * once the PONG is.
   */
  async settle(unwanted: Match, rule: string): Promise<void> {
    this.send({ type: FrameType.Ping });
    const pong = await this.takeMessage(f => f.type === FrameType.Pong, `the PONG to a PING sent to check that ${rule}`);
    const extra = this.inbox.find(m => m.seq < pong.seq && m.frame !== undefined && unwanted(m.frame));
    if (extra?.frame !== undefined) throw new Failure(`${rule}, yet ${this.nodeId || 'the connection'} got ${describeFrame(extra.frame)}`);
  }

  /** Resolves with the close code and reason. */
  async closed(what: string, timeoutMs = this.waitMs): Promise<{ code: number; reason: string }> {
    const deadline = Date.now() + timeoutMs;
    while (this.closeCode === undefined) {
      if (Date.now() >= deadline)
        throw new Failure(`timed out after ${timeoutMs} ms waiting for ${what}: the connection is still open${this.unmatched()}`);
      await this.change(deadline);
    }
    return { code: this.closeCode, reason: this.closeReason };
  }

  /** Closes with a close frame (as a node that shuts down does). */
  close(code = 1000): void {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.close(code);
  }

  /** Drops the connection at once. */
  terminate(): void {
    this.socket.terminate();
    this.wake();
  }

  /** Resolves on the next message or close, or at `deadline`. */
  change(deadline: number): Promise<void> {
    return new Promise<void>(resolve => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, deadline - Date.now()));
      this.waiters.add(done);
    });
  }

  /** Wakes every wait (each checks again what it waits for). */
  wake(): void {
    for (const done of [...this.waiters]) done();
  }

  private async takeMessage(match: Match, what: string, timeoutMs = this.waitMs): Promise<Message> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const message = this.pollMessage(match, what);
      if (message !== undefined) return message;
      if (Date.now() >= deadline) throw new Failure(`timed out after ${timeoutMs} ms waiting for ${what}${this.unmatched()}`);
      await this.change(deadline);
    }
  }

  private pollMessage(match: Match, what: string): Message | undefined {
    const i = this.inbox.findIndex(m => m.frame !== undefined && match(m.frame));
    if (i !== -1) return this.inbox.splice(i, 1)[0];
    const bad = this.inbox.find(m => m.frame === undefined);
    if (bad !== undefined) throw new Failure(`while waiting for ${what}, the relay sent ${bad.problem}`);
    this.failIfClosed(what);
    return undefined;
  }

  private read(bytes: Uint8Array, binary: boolean): Message {
    const seq = this.received++;
    if (!binary) {
      return { seq, bytes, binary, problem: `a text message (${JSON.stringify(Buffer.from(bytes).toString('utf8').slice(0, 80))})` };
    }
    try {
      return { seq, bytes, binary, frame: this.codec.decode(bytes) };
    } catch (err) {
      return { seq, bytes, binary, problem: `a message that is not a valid frame (${(err as Error).message})` };
    }
  }

  private failIfClosed(what: string): void {
    if (this.closeCode === undefined) return;
    const reason = this.closeReason === '' ? '' : ` "${this.closeReason}"`;
    throw new Failure(`the connection closed (${this.closeCode}${reason}) while waiting for ${what}${this.unmatched()}`);
  }

  /** What came meanwhile, for a failure: the frames nothing took. */
  private unmatched(): string {
    const frames = this.inbox.filter(m => m.frame !== undefined).map(m => describeFrame(m.frame as Frame));
    if (frames.length === 0) return '';
    const more = frames.length > LISTED ? ` and ${frames.length - LISTED} more` : '';
    return `; got instead: ${frames.slice(0, LISTED).join(', ')}${more}`;
  }
}

/** The first frame `match` accepts at any of `peers`: which peer, and the frame. */
export async function takeAny(
  peers: readonly Peer[],
  match: Match,
  what: string,
  timeoutMs?: number,
): Promise<{ peer: Peer; frame: Frame }> {
  const ms = timeoutMs ?? peers[0].waitMs;
  const deadline = Date.now() + ms;
  for (;;) {
    for (const peer of peers) {
      const frame = peer.poll(match, what);
      if (frame !== undefined) return { peer, frame };
    }
    if (Date.now() >= deadline) throw new Failure(`timed out after ${ms} ms waiting for ${what}`);
    await Promise.race(peers.map(p => p.change(deadline)));
    // The waits that did not end the race end now (no timer is left behind).
    for (const peer of peers) peer.wake();
  }
}
