import { CloseCode, errorFromFrame, FrameType, type RelayError, RelayErrorCode, type WelcomeFrame } from '@wsrelay/protocol';
import { backoffDelay } from './backoff.js';
import { abortReason, clientErrors, upgradeRefusal } from './errors.js';
import type { RelayClientEvents } from './events.js';
import { agreesOnCredit, fatalClose, helloFrame, refusedForGood, versionRefused } from './handshake.js';
import { Heartbeat } from './heartbeat.js';
import type { Listeners } from './listeners.js';
import { type ClientConfig, HANDSHAKE_TIMEOUT_MS } from './options.js';
import { CLOSED, messageBytes, OPEN, type SocketEvents, subprotocols, type WebSocketLike } from './socket.js';
import { type ClientState, StateMachine } from './state.js';
import { decodeFrame, encodeFrame, type IncomingFrame, type OutgoingFrame } from './wire.js';

/** One WebSocket to the relay: an attempt until WELCOME, then a session. */
export interface Session {
  readonly socket: WebSocketLike;
  /** WELCOME listed `credit`: streams may be flow-controlled. */
  credit: boolean;
  /** The socket closed, or the client stopped listening to it: nothing more comes from it. */
  ended: boolean;
  /** After a GOAWAY: when the client closes it, should the relay not. */
  drainTimer?: ReturnType<typeof setTimeout>;
}

/** Who hears of what a session carries. */
export interface SessionOwner {
  /** A frame the connection does not handle itself (answers, events, NODES). */
  onFrame(frame: IncomingFrame, session: Session): void;
  /** A session ended: what went out on it fails with `err` (RELAY_UNAVAILABLE). */
  onLost(session: Session, err: RelayError): void;
}

/** How long past a GOAWAY's drain time the client waits for the relay to close the old session. */
const DRAIN_GRACE_MS = 2000;
/** How long close() waits for the relay to answer the closing handshake. */
const CLOSE_WAIT_MS = 1000;

interface Waiter {
  resolve(session: Session): void;
  reject(err: unknown): void;
}

/**
 * The client's link to the relay: attempts with backoff and jitter, the
 * HELLO/WELCOME handshake, heartbeats, token refreshes and GOAWAY. It knows
 * nothing of requests; its owner correlates them. Its state changes only
 * along the TRANSITIONS of state.ts.
 */
export class Connection {
  private readonly machine = new StateMachine();
  private readonly heartbeat = new Heartbeat();
  private readonly waiters = new Set<Waiter>();
  /** The current attempt or session. */
  private session: Session | undefined;
  /** Sessions the relay sent GOAWAY on: still delivering answers to what went out on them. */
  private readonly draining = new Set<Session>();
  private attempt = 0;
  /** When the last session was welcomed (undefined: none since the last retry). */
  private welcomedAt: number | undefined;
  private lastError: Error | undefined;
  /** Why the current attempt cannot succeed by retrying, reported when its socket closes. */
  private fatal: RelayError | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** Bumped by start() and close(): an attempt begun under an older epoch is stale. */
  private epoch = 0;
  private handshakeTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly config: ClientConfig,
    private readonly owner: SessionOwner,
    private readonly events: Listeners<RelayClientEvents>,
  ) {}

  get state(): ClientState {
    return this.machine.state;
  }

  /** The established session, if any. */
  get current(): Session | undefined {
    return this.machine.state === 'connected' ? this.session : undefined;
  }

  /**
   * Resolves with the session once there is one (starting the client when
   * idle); rejects with RELAY_UNAVAILABLE after `timeoutMs`, with CLOSED on
   * close(), with the signal's reason on abort, and at once on a failure that
   * waiting cannot fix (a refused token or HELLO, PROTOCOL_MISMATCH).
   */
  ready(timeoutMs: number, signal?: AbortSignal): Promise<Session> {
    const now = this.current;
    if (now !== undefined) return Promise.resolve(now);
    if (this.machine.is('closed')) return Promise.reject(clientErrors.closed());
    if (this.machine.is('idle')) this.start();
    return new Promise<Session>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', aborted);
        this.waiters.delete(waiter);
      };
      const waiter: Waiter = {
        resolve: s => (done(), resolve(s)),
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- RelayErrors, or an aborted signal's reason
        reject: e => (done(), reject(e)),
      };
      const aborted = () => waiter.reject(abortReason(signal));
      const timer = setTimeout(() => waiter.reject(clientErrors.unavailable(this.lastError?.message)), timeoutMs);
      signal?.addEventListener('abort', aborted);
      this.waiters.add(waiter);
    });
  }

  /** Encodes and writes a frame on `session` (the current one by default); false when it is not open. */
  send(frame: OutgoingFrame, session: Session | undefined = this.current): boolean {
    if (session === undefined || session.ended || session.socket.readyState !== OPEN) return false;
    session.socket.send(encodeFrame(frame));
    return true;
  }

  /** Closes every session and stops retrying; resolves once the sockets are closed (or a second has passed). */
  async close(): Promise<void> {
    const wasOpen = this.current !== undefined;
    this.machine.fire('close');
    this.epoch++;
    this.stopTimers();
    this.settleWaiters(undefined, clientErrors.closed());
    const sessions = [this.session, ...this.draining].filter((s): s is Session => s !== undefined);
    this.session = undefined;
    this.draining.clear();
    if (wasOpen) this.events.emit('disconnected');
    await Promise.all(sessions.map(s => this.closeSocket(s)));
  }

  private start(): void {
    this.machine.fire('start');
    this.epoch++;
    this.attempt = 0;
    this.fatal = undefined;
    this.lastError = undefined;
    void this.open();
  }

  /** An attempt: the token, then the upgrade and HELLO. A close() meanwhile makes it stop quietly. */
  private async open(): Promise<void> {
    this.retryTimer = undefined;
    const { token } = this.config;
    const epoch = this.epoch;
    // A close() or a new start() while the token was on its way: this attempt is over.
    const stale = () => epoch !== this.epoch || !this.machine.is('connecting', 'reconnecting');
    let jwt: string | undefined;
    try {
      jwt = typeof token === 'function' ? await token() : token;
    } catch (err) {
      if (stale()) return;
      this.lastError = new Error(`token function failed: ${(err as Error).message}`, { cause: err });
      this.lost();
      return;
    }
    if (stale()) return;
    this.fatal = undefined;
    let socket: WebSocketLike;
    try {
      socket = new this.config.WebSocket(this.config.url, subprotocols(jwt));
    } catch (err) {
      // The runtime refuses the URL itself (a browser: ws:// from an https:// page, a blocked host): retrying cannot help.
      // The runtime may quote the offered subprotocols, the token among them: never repeated.
      const why = (err as Error).message.replace(/access_token\.\S+/g, 'access_token.<redacted>');
      this.stop(clientErrors.refused(RelayErrorCode.RELAY_UNAVAILABLE, `Cannot open ${this.config.url}: ${why}`));
      return;
    }
    socket.binaryType = 'arraybuffer';
    const session: Session = { socket, credit: false, ended: false };
    this.session = session;
    this.handshakeTimer = setTimeout(() => {
      this.lastError = new Error(`relay did not answer HELLO within ${HANDSHAKE_TIMEOUT_MS} ms`);
      this.end(session, CloseCode.HANDSHAKE_TIMEOUT, 'handshake timeout');
    }, HANDSHAKE_TIMEOUT_MS);
    socket.addEventListener('open', () => this.send(helloFrame(this.config), session));
    socket.addEventListener('message', e => this.onMessage(session, (e as SocketEvents['message']).data));
    socket.addEventListener('error', e => this.onSocketError(session, (e as SocketEvents['error']).message));
    socket.addEventListener('close', e =>
      this.onSocketClose(session, (e as SocketEvents['close']).code, (e as SocketEvents['close']).reason),
    );
  }

  private onSocketError(session: Session, message: string | undefined): void {
    if (session !== this.session) return;
    const refused = upgradeRefusal(message);
    this.lastError = refused ?? new Error(message || `cannot connect to ${this.config.url}`);
    // Waiting cannot help (retries go on: a token function may yield a better token).
    if (refused !== undefined && refused.code !== RelayErrorCode.RELAY_UNAVAILABLE) this.settleWaiters(undefined, refused);
  }

  private onMessage(session: Session, data: unknown): void {
    if (session.ended) return;
    const bytes = messageBytes(data);
    if (bytes === undefined) return; // text is not part of the protocol
    let frame: IncomingFrame | undefined;
    try {
      frame = decodeFrame(bytes);
    } catch (err) {
      this.events.emit('error', clientErrors.unreadable('a frame from the relay', err));
      return;
    }
    if (frame === undefined) return;
    const current = session === this.session;
    if (current) this.heartbeat.heard(frame.type === FrameType.Pong);
    if (current && this.machine.state !== 'connected') this.onHandshakeFrame(session, frame);
    else if (!this.onSessionFrame(session, frame, current)) this.owner.onFrame(frame, session);
  }

  /** The frames the connection handles itself; false for those its owner gets. */
  private onSessionFrame(session: Session, frame: IncomingFrame, current: boolean): boolean {
    switch (frame.type) {
      case FrameType.Ping:
        this.send({ type: FrameType.Pong }, session);
        return true;
      case FrameType.Pong:
      case FrameType.Welcome:
        return true;
      case FrameType.TokenExpiring:
        if (current) void this.refreshToken(session, frame.expiresAt);
        return true;
      case FrameType.Authorized:
        if (current) this.events.emit('token_refreshed', frame.expiresAt);
        return true;
      case FrameType.GoAway:
        if (current) this.onGoAway(session, frame.drainMs);
        return true;
      case FrameType.Error:
        if (frame.id !== 0) return false;
        // Uncorrelated: a refused AUTH (the connection keeps its old token), or a frame the relay could not read.
        this.events.emit('error', errorFromFrame(frame));
        return true;
      default:
        return false;
    }
  }

  private onHandshakeFrame(session: Session, frame: IncomingFrame): void {
    if (frame.type === FrameType.Error) {
      const err = errorFromFrame(frame);
      this.lastError = err;
      if (!refusedForGood(err)) return; // the relay closes the socket next, and the client retries
      this.fatal = err;
      this.end(session, CloseCode.NORMAL, 'HELLO refused');
    } else if (frame.type === FrameType.GoAway) {
      this.lastError = new Error('the relay is going away');
      this.end(session, CloseCode.NORMAL, 'relay going away');
    } else if (frame.type === FrameType.Welcome) {
      this.onWelcome(session, frame);
    } else if (frame.type === FrameType.Ping) {
      this.send({ type: FrameType.Pong }, session);
    }
  }

  private onWelcome(session: Session, welcome: WelcomeFrame): void {
    const refused = versionRefused(welcome);
    if (refused !== undefined) {
      // Nothing such a relay says can be read as meant: no retry.
      this.fatal = this.lastError = refused;
      this.end(session, CloseCode.PROTOCOL_MISMATCH, 'protocol version not spoken');
      return;
    }
    clearTimeout(this.handshakeTimer);
    session.credit = agreesOnCredit(welcome);
    this.machine.fire('welcomed');
    // The backoff starts over only once this session has lasted (see retryLater): a relay that welcomes and then closes is not hammered.
    this.welcomedAt = Date.now();
    this.lastError = undefined;
    this.heartbeat.start(
      welcome.heartbeatIntervalMs > 0
        ? Math.min(this.config.heartbeatIntervalMs, welcome.heartbeatIntervalMs)
        : this.config.heartbeatIntervalMs,
      () => this.send({ type: FrameType.Ping }, session),
      silentMs => {
        this.lastError = new Error(`relay silent for ${silentMs} ms`);
        this.end(session, CloseCode.HEARTBEAT_TIMEOUT, 'relay silent');
      },
    );
    this.settleWaiters(session);
    this.events.emit('connected');
  }

  /** TOKEN_EXPIRING: a fresh token from the token function, sent in-band (a fixed token cannot be refreshed). */
  private async refreshToken(session: Session, expiresAt: number): Promise<void> {
    const { token } = this.config;
    if (typeof token !== 'function') {
      const when = new Date(expiresAt).toISOString();
      this.events.emit('error', new Error(`The token expires at ${when} and is a fixed string: the relay will close the connection then.`));
      return;
    }
    let fresh: string;
    try {
      fresh = await token();
    } catch (err) {
      this.events.emit('error', new Error(`Token refresh failed: ${(err as Error).message}`, { cause: err }));
      return;
    }
    if (session === this.session) this.send({ type: FrameType.Auth, token: new TextEncoder().encode(fresh) }, session);
  }

  /**
   * The relay is going away: the session drains (what went out on it is still
   * answered there, until the relay closes it) and a new one opens at once.
   */
  private onGoAway(session: Session, drainMs: number): void {
    this.heartbeat.stop();
    this.session = undefined;
    this.draining.add(session);
    // The relay closes it after its drain; should it not, the client does.
    session.drainTimer = setTimeout(() => this.end(session, CloseCode.NORMAL, 'drained'), drainMs + DRAIN_GRACE_MS);
    this.machine.fire('lost');
    this.events.emit('disconnected', new Error('the relay is going away'));
    this.events.emit('reconnecting', this.attempt, 0);
    void this.open();
  }

  /** Stops listening to a session at once (a dead relay may never complete the closing handshake) and closes its socket. */
  private end(session: Session, code: number, reason: string): void {
    if (session.ended) return;
    this.onSocketClose(session, code, reason);
    session.socket.close(code >= 4000 || code === CloseCode.NORMAL ? code : CloseCode.NORMAL, reason);
  }

  private onSocketClose(session: Session, code: number, reason: string): void {
    if (session.ended) return;
    session.ended = true;
    clearTimeout(session.drainTimer);
    if (this.draining.delete(session)) {
      this.owner.onLost(session, clientErrors.lost(code, reason));
      return;
    }
    if (session !== this.session) return;
    const wasOpen = this.machine.is('connected');
    this.session = undefined;
    clearTimeout(this.handshakeTimer);
    this.heartbeat.stop();
    if (reason && this.lastError === undefined) this.lastError = new Error(`relay closed the connection (${code}: ${reason})`);
    const fatal = this.fatal ?? fatalClose(code, reason);
    // The state moves first, so that whoever hears of the loss sees the client as it now is.
    const moved = this.machine.fire(fatal === undefined ? 'lost' : 'stopped');
    if (wasOpen) {
      this.owner.onLost(session, clientErrors.lost(code, reason));
      this.events.emit('disconnected', this.lastError);
    }
    if (!moved) return;
    if (fatal === undefined) this.retryLater();
    else this.stopped(fatal);
  }

  /** The attempt or session ended and retrying may help: the next attempt after a backoff. */
  private lost(): void {
    if (this.machine.fire('lost')) this.retryLater();
  }

  private retryLater(): void {
    if (this.welcomedAt !== undefined && Date.now() - this.welcomedAt >= this.config.heartbeatIntervalMs) this.attempt = 0;
    this.welcomedAt = undefined;
    const delay = backoffDelay(this.attempt++, this.config.reconnect);
    this.events.emit('reconnecting', this.attempt, delay);
    this.retryTimer = setTimeout(() => void this.open(), delay);
  }

  /** A failure retrying cannot fix: the client stops (idle), and whoever waits for a session fails with it. */
  private stop(err: RelayError): void {
    if (this.machine.fire('stopped')) this.stopped(err);
  }

  private stopped(err: RelayError): void {
    this.settleWaiters(undefined, err);
    this.events.emit('error', err);
  }

  private settleWaiters(session: Session | undefined, err?: unknown): void {
    for (const w of [...this.waiters]) {
      if (session !== undefined) w.resolve(session);
      else w.reject(err);
    }
  }

  private stopTimers(): void {
    clearTimeout(this.retryTimer);
    clearTimeout(this.handshakeTimer);
    this.heartbeat.stop();
  }

  private closeSocket(session: Session): Promise<void> {
    const { socket } = session;
    session.ended = true;
    clearTimeout(session.drainTimer);
    if (socket.readyState === CLOSED) return Promise.resolve();
    return new Promise<void>(resolve => {
      const timer = setTimeout(resolve, CLOSE_WAIT_MS);
      socket.addEventListener('close', () => (clearTimeout(timer), resolve()));
      socket.close(CloseCode.NORMAL, 'client closing');
    });
  }
}
