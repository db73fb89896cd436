import { Logger } from '@nestjs/common';
import {
  CloseCode,
  errorFromFrame,
  type Frame,
  FrameCodec,
  FrameType,
  RelayError,
  RelayErrorCode,
  RelayErrorMessages,
  SUPPORTED_PROTOCOL_VERSIONS,
  type WelcomeFrame,
} from '@wsrelay/protocol';
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import { WsRelayStatus } from '../enums.js';
import type {
  WsRelayReconnectOptions,
  WsRelayTlsOptions,
  WsRelayToken,
  WsRelayTokenCarrier,
} from '../interfaces/ws-relay-options.interface.js';
import { backoffDelay } from './backoff.js';
import { corkForTick } from './tick-cork.js';

/** What a node announces in HELLO; asked again on every (re)connect. */
export interface NodeAnnouncement {
  service: string | null;
  patterns: string[];
  events: string[];
  queue: string | null;
}

export interface RelayConnectionConfig {
  urls: string[];
  /** Calls that may wait for a connection at once (the offline queue); more fail at once. */
  maxOfflineQueue: number;
  token: WsRelayToken | undefined;
  tokenCarrier: WsRelayTokenCarrier;
  tls: WsRelayTlsOptions | undefined;
  nodeId: string;
  heartbeatIntervalMs: number;
  connectTimeoutMs: number;
  handshakeTimeoutMs: number;
  reconnect: Required<WsRelayReconnectOptions>;
  announce: () => NodeAnnouncement;
}

/**
 * The owner of a connection (a client or a strategy) hears about frames and
 * sessions here. `via` is the socket of the session concerned: after a GOAWAY
 * a node has a new session while the old one finishes what is in flight, so
 * an answer must go back on the socket its request came in on.
 */
export interface RelayConnectionListener {
  /** A frame arrived on a session (never HELLO/WELCOME/PING/PONG/GOAWAY). */
  onFrame(frame: Frame, via: WebSocket): void;
  /** A session ended; `error` is RELAY_UNAVAILABLE. */
  onLost(error: RelayError, via: WebSocket): void;
}

/** A relay URL's state, as `relayStatus` reports it. */
export type WsRelayUrlStatus = 'connecting' | 'connected' | 'error' | 'not_connected';

type State = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closed';

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

const RESOLVED = Promise.resolve();
/** The id of a node's DRAIN (a provider sends no ids of its own, so it cannot clash). */
const DRAIN_ID = 0xffff_fffe;
/** How long past a GOAWAY's drain time a node waits for the relay to close the old session. */
const DRAIN_GRACE_MS = 2000;

/** Closes a socket (if any) and resolves once it is closed; a relay that never answers the close handshake does not hold us up. */
function closeSocket(socket: WebSocket | undefined): Promise<void> {
  if (socket === undefined || socket.readyState === WebSocket.CLOSED) return RESOLVED;
  return new Promise<void>(resolve => {
    socket.once('close', () => resolve());
    if (socket.readyState === WebSocket.CONNECTING) {
      socket.terminate();
    } else {
      socket.close(CloseCode.NORMAL, 'node closing');
      setTimeout(() => socket.terminate(), 1000).unref();
    }
  });
}

/** Subprotocol offered next to an `access_token.*` one, for the relay to select (browsers require one). */
export const WSRELAY_PROTOCOL = 'wsrelay.v1';

/** HTTP statuses a relay refuses an upgrade with, and the codes they map to. */
const UPGRADE_REFUSALS: Record<number, RelayErrorCode> = {
  401: RelayErrorCode.UNAUTHORIZED,
  403: RelayErrorCode.FORBIDDEN,
  503: RelayErrorCode.RELAY_UNAVAILABLE,
};

/**
 * One node's link to the relay: connect with retries and backoff, the
 * HELLO/WELCOME handshake, heartbeats, and frame encoding. It knows nothing
 * of requests; its owner correlates them.
 */
export class RelayConnection {
  readonly events = new EventEmitter();
  private readonly logger: Logger;
  private readonly codec = new FrameCodec();
  private state: State = 'idle';
  private socket: WebSocket | undefined;
  /** Sessions the relay sent GOAWAY on: still delivering what was in flight, never used for new frames. */
  private readonly draining = new Set<WebSocket>();
  /** Each URL's state, in `urls` order. */
  readonly urlStatus = new Map<string, WsRelayUrlStatus>();
  /** A DRAIN waiting for the relay's ACK. */
  private drained: { id: number; socket: WebSocket; done: () => void } | undefined;
  /** drain() was called: the node is shutting down and opens no new session. */
  private quiescing = false;
  private session: WelcomeFrame | undefined;
  private waiters: Waiter[] = [];
  private attempt = 0;
  /** Bumped by start() and close(), so a stale attempt can tell it is stale. */
  private generation = 0;
  private urlIndex = 0;
  private alive = false;
  private lastError: Error | undefined;
  private fatal: RelayError | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private handshakeTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly config: RelayConnectionConfig,
    private readonly listener: RelayConnectionListener,
    owner: string,
  ) {
    this.logger = new Logger(owner);
    for (const url of config.urls) this.urlStatus.set(url, 'not_connected');
  }

  /** Whether `socket` is one of this connection's sessions (current or draining). */
  owns(socket: WebSocket): boolean {
    return socket === this.socket || this.draining.has(socket);
  }

  get nodeId(): string {
    return this.config.nodeId;
  }

  get webSocket(): WebSocket | undefined {
    return this.socket;
  }

  /** A session is established: `send()` would write now. */
  get isConnected(): boolean {
    return this.state === 'connected' && this.session !== undefined;
  }

  /**
   * Asks the relay to route no new requests or events to this node (DRAIN)
   * and resolves once it has confirmed (or after `timeoutMs`, or at once
   * without a session): from then on only what is in flight arrives.
   */
  drain(timeoutMs: number): Promise<void> {
    // From now on this node takes no new work: no reconnect after a GOAWAY or a drop.
    this.quiescing = true;
    if (!this.isConnected || this.socket === undefined) return RESOLVED;
    const socket = this.socket;
    const id = DRAIN_ID;
    return new Promise<void>(resolve => {
      const done = () => {
        clearTimeout(timer);
        this.drained = undefined;
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      timer.unref();
      // Settled by the relay's ACK (on this socket, or on it once it drains), an ERROR naming it, or the socket's close.
      this.drained = { id, socket, done };
      socket.send(this.codec.encode({ type: FrameType.Drain, id }));
    });
  }

  /**
   * Resolves once a session is established. Starts connecting when idle.
   * Rejects with RELAY_UNAVAILABLE after `connectTimeoutMs`, or at once on a
   * failure that retrying cannot fix (PROTOCOL_MISMATCH).
   */
  ready(): Promise<void> {
    if (this.state === 'connected') return RESOLVED;
    if (this.state === 'idle' || this.state === 'closed') this.start();
    if (this.waiters.length >= this.config.maxOfflineQueue) {
      return Promise.reject(
        new RelayError(
          RelayErrorCode.RELAY_UNAVAILABLE,
          RelayErrorMessages.relayUnavailable(`${this.waiters.length} calls are already waiting for a connection (maxOfflineQueue)`),
        ),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter(w => w !== waiter);
          const detail = `none within ${this.config.connectTimeoutMs} ms${
            this.lastError ? ` (last error: ${this.lastError.message})` : ''
          }`;
          reject(new RelayError(RelayErrorCode.RELAY_UNAVAILABLE, RelayErrorMessages.relayUnavailable(detail)));
        }, this.config.connectTimeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  /**
   * Encodes and writes a frame on the current session, or on `via` (a
   * session that may be draining: answers to what came in on it); false when
   * that session is not open.
   */
  send(frame: Frame, via?: WebSocket): boolean {
    const socket = via ?? (this.state === 'connected' ? this.socket : undefined);
    // RelayLinks, the one caller, gives a `via` only to the connection that owns it.
    if (socket === undefined || socket.readyState !== WebSocket.OPEN) return false;
    corkForTick(socket);
    socket.send(this.codec.encode(frame));
    return true;
  }

  /** Bytes the current session has not yet written to the network (0 without one). */
  get bufferedAmount(): number {
    return this.socket?.bufferedAmount ?? 0;
  }

  /** Closes the session and stops retrying; resolves once the socket is closed. */
  async close(): Promise<void> {
    this.state = 'closed';
    this.generation++;
    this.clearTimers();
    this.settleWaiters(new RelayError(RelayErrorCode.CLOSED, RelayErrorMessages.closed()));
    const socket = this.socket;
    const wasOpen = this.session !== undefined;
    const draining = [...this.draining];
    // Detach first: whatever the old sockets still report is ignored, so a
    // connect() right after close() starts clean.
    this.socket = undefined;
    this.session = undefined;
    this.draining.clear();
    for (const url of this.config.urls) this.setUrlStatus(url, 'not_connected');
    if (wasOpen) this.events.emit(WsRelayStatus.DISCONNECTED);
    await Promise.all([socket, ...draining].map(closeSocket));
  }

  private start(): void {
    this.generation++;
    this.quiescing = false;
    this.state = 'connecting';
    this.attempt = 0;
    this.fatal = undefined;
    this.lastError = undefined;
    void this.open(this.generation);
  }

  private async open(generation: number): Promise<void> {
    this.retryTimer = undefined;
    const url = this.config.urls[this.urlIndex % this.config.urls.length];
    this.setUrlStatus(url, 'connecting');
    let token: string | undefined;
    try {
      token = await this.fetchToken();
    } catch (err) {
      this.lastError = new Error(`token function failed: ${(err as Error).message}`, { cause: err });
      this.scheduleRetry();
      return;
    }
    // close() (and maybe a new start()) happened while the token was fetched.
    if (generation !== this.generation || this.state === 'closed') return;
    let target = url;
    let protocols: string[] | undefined;
    let headers: Record<string, string> | undefined;
    if (token) {
      if (this.config.tokenCarrier === 'query') {
        const u = new URL(url);
        u.searchParams.set('token', token);
        target = u.toString();
      } else if (this.config.tokenCarrier === 'protocol') {
        protocols = [WSRELAY_PROTOCOL, `access_token.${token}`];
      } else {
        headers = { authorization: `Bearer ${token}` };
      }
    }
    const socket = new WebSocket(target, protocols, {
      headers,
      handshakeTimeout: this.config.handshakeTimeoutMs,
      perMessageDeflate: false,
      ...this.config.tls,
    });
    this.socket = socket;
    socket.on('unexpected-response', (_req, res) => this.onRefusedUpgrade(socket, res));
    socket.on('open', () => this.onSocketOpen(socket));
    socket.on('message', (data: Buffer, isBinary: boolean) => this.onMessage(socket, data, isBinary));
    socket.on('ping', () => {
      if (socket === this.socket) this.alive = true;
    });
    socket.on('pong', () => {
      if (socket === this.socket) this.alive = true;
    });
    socket.on('error', err => {
      if (socket === this.socket) this.lastError = err;
    });
    socket.on('close', (code: number, reason: Buffer) => this.onSocketClose(socket, code, reason.toString()));
  }

  private async fetchToken(): Promise<string | undefined> {
    const t = this.config.token;
    return typeof t === 'function' ? await t() : t;
  }

  /**
   * The relay answered the upgrade with an HTTP error (401 bad token, 403
   * origin, 503 full). Waiting callers fail at once with the relay's reason;
   * retries go on (a token function may yield a better token).
   */
  private onRefusedUpgrade(socket: WebSocket, res: IncomingMessage): void {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      if (body.length < 1024) body += chunk;
    });
    res.on('end', () => {
      if (socket !== this.socket) return;
      const code = UPGRADE_REFUSALS[res.statusCode ?? 0] ?? RelayErrorCode.RELAY_UNAVAILABLE;
      const err = new RelayError(code, body.trim() || `The relay refused the connection with HTTP ${res.statusCode}.`);
      this.lastError = err;
      this.logger.error(`Relay ${this.currentUrl} refused the connection: ${err.message}`);
      if (code !== RelayErrorCode.RELAY_UNAVAILABLE) this.settleWaiters(err);
      this.setUrlStatus(this.currentUrl, 'error');
      this.socket = undefined;
      socket.terminate();
      this.scheduleRetry();
    });
    res.on('error', () => undefined);
  }

  /** TOKEN_EXPIRING: fetch a fresh token and send it in-band. */
  private async refreshToken(socket: WebSocket, expiresAt: number): Promise<void> {
    if (typeof this.config.token !== 'function') {
      this.logger.warn(
        `The relay's token expires at ${new Date(expiresAt).toISOString()} and the token option is a fixed string; the connection will be closed then.`,
      );
      return;
    }
    let token: string | undefined;
    try {
      token = await this.fetchToken();
    } catch (err) {
      this.logger.error(`Token refresh failed: ${(err as Error).message}`);
      return;
    }
    if (socket !== this.socket || !token || socket.readyState !== WebSocket.OPEN) return;
    socket.send(this.codec.encode({ type: FrameType.Auth, token: new TextEncoder().encode(token) }));
  }

  private onSocketOpen(socket: WebSocket): void {
    if (socket !== this.socket || this.quiescing) {
      socket.terminate();
      return;
    }
    const a = this.config.announce();
    socket.send(
      this.codec.encode({
        type: FrameType.Hello,
        versions: [...SUPPORTED_PROTOCOL_VERSIONS],
        nodeId: this.config.nodeId,
        service: a.service,
        patterns: a.patterns,
        events: a.events,
        queue: a.queue,
      }),
    );
    this.handshakeTimer = setTimeout(() => {
      this.lastError = new Error(`relay did not answer HELLO within ${this.config.handshakeTimeoutMs} ms`);
      socket.terminate();
    }, this.config.handshakeTimeoutMs);
  }

  /** A frame from the current session, or from a draining one (which still carries answers to what was in flight on it). */
  private onMessage(socket: WebSocket, data: Buffer, isBinary: boolean): void {
    const current = socket === this.socket;
    if (!current && !this.draining.has(socket)) return;
    if (current) this.alive = true;
    if (!isBinary) {
      if (current) this.logger.warn('Ignored a text frame from the relay; the protocol is binary MessagePack.');
      return;
    }
    let frame: Frame;
    try {
      frame = this.codec.decode(data);
    } catch (err) {
      this.logger.error(`Ignored a frame from the relay: ${(err as Error).message}`);
      return;
    }
    if (current && this.session === undefined) {
      this.onHandshakeFrame(socket, frame);
      return;
    }
    switch (frame.type) {
      case FrameType.Ping:
        socket.send(this.codec.encode({ type: FrameType.Pong }));
        return;
      case FrameType.Pong:
        return;
      case FrameType.TokenExpiring:
        if (current) void this.refreshToken(socket, frame.expiresAt);
        return;
      case FrameType.GoAway:
        if (current) this.onGoAway(socket, frame.reason, frame.drainMs);
        return;
      case FrameType.Authorized:
        if (current) this.events.emit('token_refreshed', frame.expiresAt);
        return;
      case FrameType.Error:
        if (frame.id === 0 && frame.code === RelayErrorCode.UNAUTHORIZED) {
          this.logger.error(`The relay refused the refreshed token: ${frame.message}`);
          return;
        }
        if (this.settlesDrain(frame.id, socket)) return;
        break;
      case FrameType.Ack:
        if (this.settlesDrain(frame.id, socket)) return;
        break;
    }
    this.deliver(frame, socket);
  }

  private deliver(frame: Frame, socket: WebSocket): void {
    try {
      this.listener.onFrame(frame, socket);
    } catch (err) {
      // A frame the owner cannot handle must not take the process down.
      this.logger.error(`Failed to handle a ${frame.type} frame: ${(err as Error).message}`);
    }
  }

  /** Whether an ACK or ERROR with `id` answers our DRAIN (which it then settles). */
  private settlesDrain(id: number, socket: WebSocket): boolean {
    const d = this.drained;
    if (d === undefined || id !== d.id || socket !== d.socket) return false;
    d.done();
    return true;
  }

  /**
   * The relay is going away: the session moves to the draining set (what is
   * in flight on it still completes there, until the relay closes it) and a
   * new session opens at once, on the next URL when there are several.
   */
  private onGoAway(socket: WebSocket, reason: string, drainMs: number): void {
    const url = this.currentUrl;
    const moving = !this.quiescing && this.state !== 'closed';
    this.logger.log(
      `Relay ${url} is going away (${reason || 'no reason given'})${
        moving ? `; moving to ${this.config.urls.length > 1 ? 'the next relay' : 'it again once it is back'}` : ''
      }`,
    );
    this.endSession();
    this.draining.add(socket);
    // The relay closes it after its drain deadline; should it not, we do.
    setTimeout(() => socket.terminate(), drainMs + DRAIN_GRACE_MS).unref();
    this.setUrlStatus(url, 'not_connected');
    this.events.emit(WsRelayStatus.DISCONNECTED, new Error(`relay ${url} is going away`));
    if (!moving) {
      // Shutting down (drain() was called): nothing new is wanted, so no new session either.
      if (this.state !== 'closed') this.state = 'idle';
      return;
    }
    if (this.config.urls.length > 1) this.urlIndex++;
    this.state = 'reconnecting';
    this.events.emit(WsRelayStatus.RECONNECTING, this.attempt, 0);
    void this.open(this.generation);
  }

  private onHandshakeFrame(socket: WebSocket, frame: Frame): void {
    if (frame.type === FrameType.GoAway) {
      // Going away before it even welcomed us: try elsewhere (or again later).
      this.lastError = new Error(`relay ${this.currentUrl} is going away`);
      socket.close(CloseCode.NORMAL, 'relay going away');
      return;
    }
    if (frame.type === FrameType.Error) {
      const err = errorFromFrame(frame);
      this.lastError = err;
      // Retrying cannot fix these: the node must change first.
      if (err.code === RelayErrorCode.PROTOCOL_MISMATCH || err.code === RelayErrorCode.FORBIDDEN) this.fatal = err;
      return; // the relay closes the socket next
    }
    if (frame.type !== FrameType.Welcome) return;
    if (this.quiescing) {
      // drain() was called while this session was being set up: it is not wanted.
      socket.close(CloseCode.NORMAL, 'node closing');
      return;
    }
    clearTimeout(this.handshakeTimer);
    this.session = frame;
    this.setUrlStatus(this.currentUrl, 'connected');
    this.state = 'connected';
    this.attempt = 0;
    this.lastError = undefined;
    this.alive = true;
    this.startHeartbeat(socket, Math.min(this.config.heartbeatIntervalMs, frame.heartbeatIntervalMs));
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.resolve();
    }
    this.waiters = [];
    this.events.emit(WsRelayStatus.CONNECTED, frame);
  }

  /**
   * Pings every interval (the shorter of ours and the relay's, so the relay,
   * hearing from us, need not ping us), and takes the relay for dead after an
   * interval in which nothing at all came from it.
   */
  private startHeartbeat(socket: WebSocket, intervalMs: number): void {
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = setInterval(() => {
      if (!this.alive) {
        this.lastError = new Error(`relay silent for ${intervalMs} ms`);
        socket.terminate();
        return;
      }
      this.alive = false;
      socket.ping();
    }, intervalMs);
  }

  private onSocketClose(socket: WebSocket, code: number, reason: string): void {
    if (this.drained !== undefined && this.drained.socket === socket) this.drained.done();
    // What was in flight on the session fails with this.
    const lost = () =>
      new RelayError(RelayErrorCode.RELAY_UNAVAILABLE, RelayErrorMessages.relayLost() + (reason ? ` (${code}: ${reason})` : ''));
    if (this.draining.delete(socket)) {
      this.listener.onLost(lost(), socket);
      return;
    }
    if (socket !== this.socket) return;
    const wasOpen = this.session !== undefined;
    this.setUrlStatus(this.currentUrl, wasOpen && code === CloseCode.NORMAL ? 'not_connected' : 'error');
    this.endSession();
    if (reason && !this.lastError) this.lastError = new Error(`relay closed the connection (${code}: ${reason})`);
    if (wasOpen) {
      this.listener.onLost(lost(), socket);
      this.events.emit(WsRelayStatus.DISCONNECTED, this.lastError);
    }
    if (this.state === 'closed') return;
    if (this.quiescing) {
      this.state = 'idle';
      return;
    }
    if (this.fatal !== undefined || code === CloseCode.PROTOCOL_MISMATCH || code === CloseCode.FORBIDDEN) {
      const err = this.fatal ?? new RelayError(RelayErrorCode.PROTOCOL_MISMATCH, reason || 'protocol mismatch');
      this.logger.error(err.message);
      this.state = 'idle';
      this.settleWaiters(err);
      this.events.emit('error', err);
      return;
    }
    this.scheduleRetry();
  }

  private get currentUrl(): string {
    return this.config.urls[this.urlIndex % this.config.urls.length];
  }

  private setUrlStatus(url: string, status: WsRelayUrlStatus): void {
    if (this.urlStatus.get(url) === status) return;
    this.urlStatus.set(url, status);
    this.events.emit('relay_status', url, status);
  }

  /** The current session is over (closed, or moved to the draining set): its timers stop. */
  private endSession(): void {
    clearTimeout(this.handshakeTimer);
    clearInterval(this.heartbeatTimer);
    this.socket = undefined;
    this.session = undefined;
  }

  private scheduleRetry(): void {
    if (this.state === 'closed') return;
    if (this.config.urls.length > 1) this.urlIndex++;
    const delay = backoffDelay(this.attempt++, this.config.reconnect);
    this.state = 'reconnecting';
    this.events.emit(WsRelayStatus.RECONNECTING, this.attempt, delay);
    const generation = this.generation;
    this.retryTimer = setTimeout(() => void this.open(generation), delay);
  }

  private settleWaiters(err: Error): void {
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.waiters = [];
  }

  private clearTimers(): void {
    clearTimeout(this.retryTimer);
    clearTimeout(this.handshakeTimer);
    clearInterval(this.heartbeatTimer);
    this.retryTimer = undefined;
  }
}
