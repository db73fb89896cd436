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
  type WelcomeFrame,
} from '@wsrelay/protocol';
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import { backoffDelay } from './backoff.js';
import type { RelayConnectionConfig } from './connection-config.js';
import type { RelayConnectionEvents, RelayConnectionListener } from './connection-events.js';
import { ConnectionStateMachine, type ConnectionState } from './connection-state.js';
import { NodeDrain } from './node-drain.js';
import { NodeHeartbeat } from './node-heartbeat.js';
import { agreeOn, helloFrame } from './handshake.js';
import { OfflineQueue } from './offline-queue.js';
import { corkForTick } from './tick-cork.js';
import { TokenCarrier } from './token-carrier.js';
import { closeSocket, refusalOf } from './upgrade.js';
import { UrlStatus } from './url-status.js';

const RESOLVED = Promise.resolve();
/** How long past a GOAWAY's drain time a node waits for the relay to close the old session. */
const DRAIN_GRACE_MS = 2000;

/**
 * One node's link to the relay: connect with retries and backoff, the
 * HELLO/WELCOME handshake, heartbeats, and frame encoding. It knows nothing
 * of requests; its owner correlates them. Its state changes only along
 * ConnectionStateMachine's TRANSITIONS; the token carrier, heartbeat,
 * offline queue and per-URL status are parts of their own.
 */
export class RelayConnection {
  readonly events = new EventEmitter<RelayConnectionEvents>();
  readonly urlStatus: UrlStatus;
  private readonly logger: Logger;
  private readonly codec = new FrameCodec({ allocate: size => Buffer.allocUnsafe(size) });
  private readonly machine = new ConnectionStateMachine();
  private readonly tokens: TokenCarrier;
  private readonly heartbeat = new NodeHeartbeat();
  readonly offline: OfflineQueue;
  /** The socket of the current attempt or session. */
  private socket: WebSocket | undefined;
  /** Sessions the relay sent GOAWAY on: still delivering what was in flight, never used for new frames. */
  private readonly draining = new Set<WebSocket>();
  private readonly drainer = new NodeDrain();
  /** drain() was called: the node is shutting down and opens no new session. */
  private leaving = false;
  private attempt = 0;
  private urlIndex = 0;
  private lastError: Error | undefined;
  /** Why the connection stopped for good (retrying cannot fix it), reported when its socket closes. */
  private fatal: RelayError | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private handshakeTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly config: RelayConnectionConfig,
    private readonly listener: RelayConnectionListener,
    owner: string,
  ) {
    this.logger = new Logger(owner);
    this.tokens = new TokenCarrier(config.token, config.tokenCarrier);
    this.offline = new OfflineQueue(config.maxOfflineQueue, config.connectTimeoutMs, () => this.lastError);
    this.urlStatus = new UrlStatus(config.urls, (url, status) => this.events.emit('relay_status', url, status));
  }

  get state(): ConnectionState {
    return this.machine.state;
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
    return this.machine.state === 'connected';
  }

  /** Bytes the current session has not yet written to the network (0 without one). */
  get bufferedAmount(): number {
    return this.socket?.bufferedAmount ?? 0;
  }

  /**
   * Resolves once a session is established. Starts connecting when idle.
   * Rejects with RELAY_UNAVAILABLE after `connectTimeoutMs`, or at once on a
   * failure that retrying cannot fix (PROTOCOL_MISMATCH).
   */
  ready(): Promise<void> {
    if (this.isConnected) return RESOLVED;
    if (this.machine.is('idle', 'closed')) this.start();
    return this.offline.wait();
  }

  /**
   * Asks the relay to route no new requests or events to this node (DRAIN)
   * and resolves once it has confirmed (or after `timeoutMs`, or at once
   * without a session): from then on only what is in flight arrives.
   */
  drain(timeoutMs: number): Promise<void> {
    // From now on this node takes no new work: no reconnect after a GOAWAY or a drop.
    this.leaving = true;
    // A retry that was due is not wanted any more.
    if (this.machine.state === 'waiting' && this.machine.fire('stopped')) this.clearTimers();
    const socket = this.socket;
    if (!this.isConnected || socket === undefined) return RESOLVED;
    // Settled by the relay's ACK (on this socket, or on it once it drains), an ERROR naming it, or the socket's close.
    return this.drainer.request(socket, this.codec, timeoutMs);
  }

  /**
   * Encodes and writes a frame on the current session, or on `via` (a
   * session that may be draining: answers to what came in on it); false when
   * that session is not open.
   */
  send(frame: Frame, via?: WebSocket): boolean {
    const socket = via ?? (this.isConnected ? this.socket : undefined);
    // RelayLinks, the one caller, gives a `via` only to the connection that owns it.
    if (socket === undefined || socket.readyState !== WebSocket.OPEN) return false;
    corkForTick(socket);
    socket.send(this.codec.encode(frame));
    return true;
  }

  /** Closes the session and stops retrying; resolves once the socket is closed. */
  async close(): Promise<void> {
    const wasOpen = this.isConnected;
    this.machine.fire('close');
    this.clearTimers();
    this.offline.fail(new RelayError(RelayErrorCode.CLOSED, RelayErrorMessages.closed()));
    const sockets = [this.socket, ...this.draining];
    // Detach first: whatever the old sockets still report is ignored, so a
    // connect() right after close() starts clean.
    this.socket = undefined;
    this.draining.clear();
    this.urlStatus.reset();
    if (wasOpen) this.events.emit('disconnected');
    await Promise.all(sockets.map(closeSocket));
  }

  private start(): void {
    this.leaving = false;
    this.machine.fire('start');
    this.attempt = 0;
    this.fatal = undefined;
    this.lastError = undefined;
    void this.open(this.machine.epoch);
  }

  private get currentUrl(): string {
    return this.config.urls[this.urlIndex % this.config.urls.length];
  }

  /** An attempt: the token, then the upgrade. A stale attempt (close or a new start since) stops quietly. */
  private async open(epoch: number): Promise<void> {
    this.retryTimer = undefined;
    const url = this.currentUrl;
    this.urlStatus.set(url, 'connecting');
    let token: string | undefined;
    try {
      token = await this.tokens.fetch();
    } catch (err) {
      // A close() or a new start() while the token was on its way: this attempt is over.
      if (epoch !== this.machine.epoch || !this.machine.is('connecting')) return;
      this.lastError = new Error(`token function failed: ${(err as Error).message}`, { cause: err });
      this.retryLater();
      return;
    }
    if (epoch !== this.machine.epoch || !this.machine.is('connecting')) return;
    const target = this.tokens.carry(url, token);
    const socket = new WebSocket(target.url, target.protocols, {
      headers: target.headers,
      handshakeTimeout: this.config.handshakeTimeoutMs,
      perMessageDeflate: false,
      ...this.config.tls,
    });
    this.socket = socket;
    socket.on('unexpected-response', (_req, res) => this.onRefusedUpgrade(socket, res));
    socket.on('open', () => this.onSocketOpen(socket));
    socket.on('message', (data: Buffer, isBinary: boolean) => this.onMessage(socket, data, isBinary));
    const heard = () => {
      if (socket === this.socket) this.heartbeat.heard();
    };
    socket.on('ping', heard);
    socket.on('pong', heard);
    socket.on('error', err => {
      if (socket === this.socket) this.lastError = err;
    });
    socket.on('close', (code: number, reason: Buffer) => this.onSocketClose(socket, code, reason.toString()));
  }

  /**
   * The relay answered the upgrade with an HTTP error (401 bad token, 403
   * origin, 503 full). Waiting callers fail at once with the relay's reason;
   * retries go on (a token function may yield a better token).
   */
  private onRefusedUpgrade(socket: WebSocket, res: IncomingMessage): void {
    void refusalOf(res).then(err => {
      if (socket !== this.socket) return;
      this.lastError = err;
      this.logger.error(`Relay ${this.currentUrl} refused the connection: ${err.message}`);
      if (err.code !== RelayErrorCode.RELAY_UNAVAILABLE) this.offline.fail(err);
      const url = this.currentUrl;
      this.socket = undefined;
      socket.terminate();
      this.retryLater();
      // After retryLater (which may move on to the next URL): the state has moved when the status is heard.
      this.urlStatus.set(url, 'error');
    });
  }

  private onSocketOpen(socket: WebSocket): void {
    if (socket !== this.socket || this.leaving || !this.machine.fire('opened')) {
      socket.terminate();
      return;
    }
    socket.send(this.codec.encode(helloFrame(this.config.nodeId, this.config.announce())));
    this.handshakeTimer = setTimeout(() => {
      this.lastError = new Error(`relay did not answer HELLO within ${this.config.handshakeTimeoutMs} ms`);
      socket.terminate();
    }, this.config.handshakeTimeoutMs);
  }

  /** A frame from the current session, or from a draining one (which still carries answers to what was in flight on it). */
  private onMessage(socket: WebSocket, data: Buffer, isBinary: boolean): void {
    const current = socket === this.socket;
    if (!current && !this.draining.has(socket)) return;
    if (current) this.heartbeat.heardMessage();
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
    if (current && this.machine.state === 'handshaking') this.onHandshakeFrame(socket, frame);
    else if (!this.onSessionFrame(socket, frame, current)) this.deliver(frame, socket);
  }

  /** The frames the connection handles itself; false for those its owner gets. */
  private onSessionFrame(socket: WebSocket, frame: Frame, current: boolean): boolean {
    switch (frame.type) {
      case FrameType.Ping:
        socket.send(this.codec.encode({ type: FrameType.Pong }));
        return true;
      case FrameType.Pong:
        return true;
      case FrameType.TokenExpiring:
        if (current) void this.refreshToken(socket, frame.expiresAt);
        return true;
      case FrameType.GoAway:
        if (current) this.onGoAway(socket, frame.reason, frame.drainMs);
        return true;
      case FrameType.Authorized:
        if (current) this.events.emit('token_refreshed', frame.expiresAt);
        return true;
      case FrameType.Error:
        if (frame.id === 0 && frame.code === (RelayErrorCode.UNAUTHORIZED as string)) {
          this.logger.error(`The relay refused the refreshed token: ${frame.message}`);
          return true;
        }
        return this.drainer.settles(frame.id, socket);
      case FrameType.Ack:
        return this.drainer.settles(frame.id, socket);
      default:
        return false;
    }
  }

  private deliver(frame: Frame, socket: WebSocket): void {
    try {
      this.listener.onFrame(frame, socket);
    } catch (err) {
      // A frame the owner cannot handle must not take the process down.
      this.logger.error(`Failed to handle a ${frame.type} frame: ${(err as Error).message}`);
    }
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
    if (this.leaving) {
      // drain() was called while this session was being set up: it is not wanted.
      socket.close(CloseCode.NORMAL, 'node closing');
      return;
    }
    const refused = agreeOn(socket, frame);
    if (refused === undefined) this.onWelcome(socket, frame);
    else {
      this.fatal = this.lastError = refused;
      socket.close(CloseCode.PROTOCOL_MISMATCH, 'protocol version not spoken');
    }
  }

  private onWelcome(socket: WebSocket, welcome: WelcomeFrame): void {
    clearTimeout(this.handshakeTimer);
    this.machine.fire('welcomed');
    this.urlStatus.set(this.currentUrl, 'connected');
    this.attempt = 0;
    this.lastError = undefined;
    this.heartbeat.start(socket, Math.min(this.config.heartbeatIntervalMs, welcome.heartbeatIntervalMs), silentMs => {
      this.lastError = new Error(`relay silent for ${silentMs} ms`);
    });
    this.offline.release();
    this.events.emit('connected', welcome);
  }

  /** TOKEN_EXPIRING: fetch a fresh token and send it in-band. */
  private async refreshToken(socket: WebSocket, expiresAt: number): Promise<void> {
    const token = await this.tokens.refreshed(expiresAt, this.logger);
    if (socket !== this.socket || !token || socket.readyState !== WebSocket.OPEN) return;
    socket.send(this.codec.encode({ type: FrameType.Auth, token: new TextEncoder().encode(token) }));
  }

  /**
   * The relay is going away: the session moves to the draining set (what is
   * in flight on it still completes there, until the relay closes it) and a
   * new session opens at once, on the next URL when there are several.
   */
  private onGoAway(socket: WebSocket, reason: string, drainMs: number): void {
    const url = this.currentUrl;
    const moving = !this.leaving;
    const whither = this.config.urls.length > 1 ? 'the next relay' : 'it again once it is back';
    this.logger.log(`Relay ${url} is going away (${reason || 'no reason given'})${moving ? `; moving to ${whither}` : ''}`);
    this.endSession();
    this.draining.add(socket);
    // The relay closes it after its drain deadline; should it not, we do.
    setTimeout(() => socket.terminate(), drainMs + DRAIN_GRACE_MS).unref();
    // The state moves first, so that whoever hears of the change sees the connection as it now is.
    // Shutting down (drain() was called): nothing new is wanted, so no new session either.
    this.machine.fire(moving ? 'moved' : 'stopped');
    this.urlStatus.set(url, 'not_connected');
    this.events.emit('disconnected', new Error(`relay ${url} is going away`));
    if (!moving) return;
    if (this.config.urls.length > 1) this.urlIndex++;
    this.events.emit('reconnecting', this.attempt, 0);
    void this.open(this.machine.epoch);
  }

  private onSocketClose(socket: WebSocket, code: number, reason: string): void {
    this.drainer.closed(socket);
    // What was in flight on the session fails with this.
    const lost = () =>
      new RelayError(RelayErrorCode.RELAY_UNAVAILABLE, RelayErrorMessages.relayLost() + (reason ? ` (${code}: ${reason})` : ''));
    if (this.draining.delete(socket)) {
      this.listener.onLost(lost(), socket);
      return;
    }
    if (socket !== this.socket) return;
    const wasOpen = this.isConnected;
    const url = this.currentUrl;
    this.endSession();
    if (reason && !this.lastError) this.lastError = new Error(`relay closed the connection (${code}: ${reason})`);
    const fatal =
      this.fatal ??
      (code === CloseCode.PROTOCOL_MISMATCH || code === CloseCode.FORBIDDEN
        ? new RelayError(RelayErrorCode.PROTOCOL_MISMATCH, reason || 'protocol mismatch')
        : undefined);
    // The state moves first, so that whoever hears of the loss sees the connection as it now is:
    // stopped when the node is leaving or retrying cannot help, else waiting for a retry.
    const retry = !this.machine.is('closed') && !this.leaving && fatal === undefined;
    if (!this.machine.is('closed')) this.machine.fire(retry ? 'failed' : 'stopped');
    this.urlStatus.set(url, wasOpen && code === CloseCode.NORMAL ? 'not_connected' : 'error');
    if (wasOpen) {
      this.listener.onLost(lost(), socket);
      this.events.emit('disconnected', this.lastError);
    }
    if (retry) this.scheduleRetry();
    else if (fatal !== undefined && !this.leaving && !this.machine.is('closed')) this.stopFor(fatal);
  }

  /** A failure retrying cannot fix: waiting calls fail with it (the connection has stopped). */
  private stopFor(err: RelayError): void {
    this.logger.error(err.message);
    this.offline.fail(err);
    this.events.emit('error', err);
  }

  /** The current session is over (closed, or moved to the draining set): its timers stop. */
  private endSession(): void {
    clearTimeout(this.handshakeTimer);
    this.heartbeat.stop();
    this.socket = undefined;
  }

  /** The attempt failed: the next attempt after a backoff; none when the node is leaving (drain() was called). */
  private retryLater(): void {
    if (!this.leaving) {
      if (this.machine.fire('failed')) this.scheduleRetry();
      return;
    }
    this.machine.fire('stopped');
    this.urlStatus.set(this.currentUrl, 'not_connected');
  }

  /** The next attempt after a backoff, on the next URL when there are several (the state is `waiting`). */
  private scheduleRetry(): void {
    if (this.config.urls.length > 1) this.urlIndex++;
    const delay = backoffDelay(this.attempt++, this.config.reconnect);
    this.events.emit('reconnecting', this.attempt, delay);
    const epoch = this.machine.epoch;
    this.retryTimer = setTimeout(() => {
      if (this.machine.fire('retry')) void this.open(epoch);
    }, delay);
  }

  private clearTimers(): void {
    clearTimeout(this.retryTimer);
    clearTimeout(this.handshakeTimer);
    this.heartbeat.stop();
    this.retryTimer = undefined;
  }
}
