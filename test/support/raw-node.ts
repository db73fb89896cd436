import { type Frame, FrameCodec, FrameType, type HelloFrame, SUPPORTED_PROTOCOL_VERSIONS, type WelcomeFrame } from '@wsrelay/protocol';
import { randomUUID } from 'node:crypto';
import type { ClientRequestArgs, IncomingMessage } from 'node:http';
import { connect, type NetConnectOpts, type Socket } from 'node:net';
import WebSocket, { type ClientOptions } from 'ws';

/** How a raw socket opens: headers (e.g. Authorization, Origin), subprotocols, TLS. */
export interface RawOpenOptions extends ClientOptions {
  protocols?: string[];
}

/** What a HELLO announces besides the node id: by default nothing, no service or queue, and this build's protocol versions. */
export interface HelloOptions {
  patterns?: string[];
  events?: string[];
  queue?: string | null;
  service?: string | null;
  versions?: number[];
  /** Capabilities offered (none by default, as a node of an earlier build). */
  caps?: string[];
}

export function helloFrame(nodeId: string, o: HelloOptions = {}): HelloFrame {
  const { patterns = [], events = [], queue = null, service = null, versions = [...SUPPORTED_PROTOCOL_VERSIONS], caps } = o;
  return { type: FrameType.Hello, versions, nodeId, service, patterns, events, queue, caps };
}

/** An upgrade the relay refused: HTTP status, body and headers. */
export interface Refusal {
  status: number;
  body: string;
  headers: IncomingMessage['headers'];
}

/**
 * Attempts an upgrade that the relay should refuse, and reports the HTTP
 * answer; rejects if the socket opens instead.
 */
export function refusal(url: string, options: RawOpenOptions = {}): Promise<Refusal> {
  const { protocols, ...rest } = options;
  const socket = new WebSocket(url, protocols, rest);
  return new Promise<Refusal>((resolve, reject) => {
    socket.on('unexpected-response', (req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        req.destroy();
        resolve({ status: res.statusCode ?? 0, body, headers: res.headers });
      });
    });
    socket.on('open', () => {
      socket.terminate();
      reject(new Error('the relay accepted the upgrade'));
    });
    socket.on('error', err => {
      if (!/aborted|socket hang up/i.test(err.message)) reject(err);
    });
  });
}

/** A bare WebSocket speaking the protocol by hand, for hostile-input tests. */
export class RawNode {
  readonly codec = new FrameCodec();
  readonly frames: Frame[] = [];
  closeCode: number | undefined;
  closeReason = '';
  /** The relay's WELCOME, once `hello()` has had it. */
  welcome?: WelcomeFrame;
  private waiters: Array<() => void> = [];

  private constructor(
    readonly socket: WebSocket,
    /** The TCP connection under it (ws:// only): pause it to stop reading, as a stalled peer does. */
    readonly tcp?: Socket,
  ) {
    socket.on('message', (data: Buffer) => {
      this.frames.push(this.codec.decode(data));
      this.wake();
    });
    socket.on('close', (code, reason) => {
      this.closeCode = code;
      this.closeReason = reason.toString();
      this.wake();
    });
  }

  /** Wraps an already open socket. */
  static wrap(socket: WebSocket): RawNode {
    return new RawNode(socket);
  }

  static async open(url: string, options: RawOpenOptions = {}): Promise<RawNode> {
    const { protocols, ...rest } = options;
    let tcp: Socket | undefined;
    // What ws does by default, keeping the socket.
    const createConnection = (o: ClientRequestArgs) => (tcp = connect({ ...(o as NetConnectOpts), path: o.socketPath } as NetConnectOpts));
    const socket = new WebSocket(url, protocols, url.startsWith('ws:') ? { ...rest, createConnection } : rest);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    return new RawNode(socket, tcp);
  }

  /** Opens a socket and completes the handshake (a plain caller unless `options` announce more). */
  static async hello(url: string, nodeId: string = randomUUID(), options: RawOpenOptions & HelloOptions = {}): Promise<RawNode> {
    const { patterns, events, queue, service, versions, caps, ...open } = options;
    const node = await RawNode.open(url, open);
    node.send(helloFrame(nodeId, { patterns, events, queue, service, versions, caps }));
    node.welcome = (await node.next(f => f.type === FrameType.Welcome)) as WelcomeFrame;
    return node;
  }

  send(frame: Frame): void {
    this.socket.send(this.codec.encode(frame));
  }

  sendRaw(bytes: Uint8Array | string): void {
    this.socket.send(bytes);
  }

  /** Resolves with the first received frame (past or future) matching `predicate`, removing it. */
  async next(predicate: (f: Frame) => boolean, timeoutMs = 5000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.frames.findIndex(predicate);
      if (i !== -1) return this.frames.splice(i, 1)[0];
      if (this.closeCode !== undefined) throw new Error(`socket closed (${this.closeCode} ${this.closeReason})`);
      if (deadline <= Date.now()) throw new Error('timed out waiting for a frame');
      await this.change(deadline);
    }
  }

  async closed(timeoutMs = 5000): Promise<{ code: number; reason: string }> {
    const deadline = Date.now() + timeoutMs;
    while (this.closeCode === undefined) {
      if (deadline <= Date.now()) throw new Error('timed out waiting for close');
      await this.change(deadline);
    }
    return { code: this.closeCode, reason: this.closeReason };
  }

  close(): void {
    this.socket.terminate();
  }

  /** Resolves on the next frame or close, or at `deadline`. */
  private change(deadline: number): Promise<void> {
    return new Promise<void>(resolve => {
      const timer = setTimeout(resolve, deadline - Date.now());
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

/** Opens a socket and says HELLO as `nodeId`: the socket and the relay's answer (WELCOME or ERROR). */
export async function claim(
  url: string,
  nodeId: string,
  options: RawOpenOptions & HelloOptions = {},
): Promise<{ node: RawNode; answer: Frame }> {
  const { patterns, events, queue, service, versions, ...open } = options;
  const node = await RawNode.open(url, open);
  node.send(helloFrame(nodeId, { patterns, events, queue, service, versions }));
  return { node, answer: await node.next(f => f.type === FrameType.Welcome || f.type === FrameType.Error) };
}
