import type { Frame, WelcomeFrame } from '@wsrelay/protocol';
import { EventEmitter } from 'node:events';
import type WebSocket from 'ws';
import type { WsRelayMode } from '../interfaces/ws-relay-options.interface.js';
import type { RelayConnectionConfig } from './connection-config.js';
import type { RelayConnectionEvents, RelayConnectionListener } from './connection-events.js';
import { RelayConnection } from './relay-connection.js';
import type { WsRelayUrlStatus } from './url-status.js';

/**
 * A node's relay connections: one that fails over from URL to URL
 * (`'failover'`), or one per URL (`'all'`, for redundant independent relays).
 * Frames go out on a connected one, in turn; an answer goes back on the
 * session (`via`) its request came in on. The node counts as connected while
 * any connection is.
 */
export class RelayLinks {
  readonly events = new EventEmitter<RelayConnectionEvents>();
  readonly connections: readonly RelayConnection[];
  private turn = 0;
  private connected = false;

  /**
   * `sendBudget`: unsent bytes past which a connection is passed over for new
   * frames while another connected one can take them (`'all'` mode).
   */
  constructor(
    config: RelayConnectionConfig,
    mode: WsRelayMode,
    listener: RelayConnectionListener,
    owner: string,
    private readonly sendBudget = Infinity,
  ) {
    this.connections =
      mode === 'all'
        ? config.urls.map(url => new RelayConnection({ ...config, urls: [url] }, listener, owner))
        : [new RelayConnection(config, listener, owner)];
    for (const c of this.connections) {
      c.events.on('connected', welcome => this.update(welcome));
      c.events.on('disconnected', reason => this.update(undefined, reason));
      c.events.on('reconnecting', (attempt, delayMs) => {
        this.update();
        if (!this.connected) this.events.emit('reconnecting', attempt, delayMs);
      });
      c.events.on('error', err => this.events.emit('error', err));
      c.events.on('token_refreshed', expiresAt => this.events.emit('token_refreshed', expiresAt));
      c.events.on('relay_status', (url, status) => this.events.emit('relay_status', url, status));
    }
  }

  /**
   * The node is connected while any connection is: only changes of that are
   * reported, with the arguments of the event that brought the change.
   */
  private update(welcome?: WelcomeFrame, reason?: Error): void {
    const now = this.connections.some(c => c.isConnected);
    if (now === this.connected) return;
    this.connected = now;
    if (now) this.events.emit('connected', welcome);
    else this.events.emit('disconnected', reason);
  }

  get nodeId(): string {
    return this.connections[0].nodeId;
  }

  get isConnected(): boolean {
    return this.connected;
  }

  /** The socket of a connected session (the first), for `unwrap()`. */
  get webSocket(): WebSocket | undefined {
    return (this.connections.find(c => c.isConnected) ?? this.connections[0]).webSocket;
  }

  /** Each relay URL's state. */
  relayStatus(): Record<string, WsRelayUrlStatus> {
    const out: Record<string, WsRelayUrlStatus> = {};
    for (const c of this.connections) for (const [url, status] of c.urlStatus.entries()) out[url] = status;
    return out;
  }

  /**
   * Resolves once a connection is up (in `'all'` mode the first of them; the
   * others keep connecting). Rejects as RelayConnection#ready does when none comes up.
   */
  ready(): Promise<void> {
    if (this.connections.length === 1) return this.connections[0].ready();
    // Not a waiter (and its timer) per call on every relay that is down, while one is up.
    if (this.connected) return Promise.resolve();
    const attempts = this.connections.map(c => c.ready());
    return Promise.any(attempts).catch((err: AggregateError) => {
      throw err.errors[0];
    });
  }

  /**
   * Writes a frame on `via` (a session of one of these connections), or on a
   * connected connection in turn. Returns the socket it went out on, or
   * undefined when none could take it. A frame given as a function is made
   * for the session it goes out on (what that session agreed on may shape it).
   */
  send(frame: Frame | ((session: WebSocket) => Frame), via?: WebSocket): WebSocket | undefined {
    if (via !== undefined) {
      // An answer goes back on the session its request came in on (no closure per answer: this runs for each one).
      for (const c of this.connections)
        if (c.owns(via)) return c.send(typeof frame === 'function' ? frame(via) : frame, via) ? via : undefined;
      return undefined;
    }
    const n = this.connections.length;
    for (let pass = 0; pass < 2; pass++) {
      for (let i = 0; i < n; i++) {
        const c = this.connections[(this.turn + i) % n];
        // First pass: only connections not backed up; second: any connected one.
        const session = c.webSocket;
        if (!c.isConnected || session === undefined || (pass === 0 && n > 1 && c.bufferedAmount > this.sendBudget)) continue;
        if (c.send(typeof frame === 'function' ? frame(session) : frame)) {
          this.turn = (this.turn + i + 1) % n;
          return c.webSocket;
        }
      }
    }
    return undefined;
  }

  /** Bytes unsent on the least backed-up connected session (what a new frame would wait behind at best). */
  get bufferedAmount(): number {
    let least = Infinity;
    for (const c of this.connections) if (c.isConnected) least = Math.min(least, c.bufferedAmount);
    return least === Infinity ? 0 : least;
  }

  /** Asks the relays to stop routing to this node; resolves when each answered (or after `timeoutMs`). */
  async drain(timeoutMs: number): Promise<void> {
    await Promise.all(this.connections.map(c => c.drain(timeoutMs)));
  }

  async close(): Promise<void> {
    await Promise.all(this.connections.map(c => c.close()));
  }
}
