import { Capability, type WebSocketMessage } from '@wsrelay/protocol';
import type { Session } from '../session/session.js';
import type { Routable } from './routable.js';
import type { World } from './world.js';

/** What a HELLO announced. */
export interface Announcement {
  nodeId: string;
  service: string | null;
  patterns: readonly string[];
  events: readonly string[];
  queue: string | null;
  /** The capabilities both the node and the relay speak (WELCOME lists them). */
  caps?: readonly string[];
}

/**
 * A session of this relay that said HELLO: a node with an id, what it serves
 * and what it subscribes to, in its tenant's world. It lives as long as its
 * session, in routing or not (after a DRAIN, a lost node id, the relay's drain).
 */
export class LocalNode implements Routable {
  readonly nodeId: string;
  readonly service: string | null;
  readonly queue: string | null;
  patterns: readonly string[];
  serves: ReadonlySet<string>;
  events: readonly string[];
  /** It speaks flow control of streamed results (capability `credit`): REQUEST's window, CREDIT. */
  readonly credit: boolean;

  constructor(
    readonly session: Session,
    readonly world: World,
    announced: Announcement,
    /** When HELLO was accepted: the older claim to a node id wins across the cluster. */
    readonly since: number,
  ) {
    this.nodeId = announced.nodeId;
    this.service = announced.service;
    this.queue = announced.queue;
    this.patterns = [...new Set(announced.patterns)];
    this.serves = new Set(this.patterns);
    this.events = [...new Set(announced.events)];
    this.credit = announced.caps?.includes(Capability.CREDIT) ?? false;
  }

  get isOpen(): boolean {
    return this.session.isOpen;
  }

  get slow(): boolean {
    return this.session.slow;
  }

  /** Not a server connection: it listens to its subscriptions and answers nothing. */
  get passive(): boolean {
    return !this.session.identity.isServer;
  }

  /** Its verified claims as MessagePack, forwarded with its requests and events (null without auth). */
  get claims(): Uint8Array | null {
    return this.session.identity.encodedClaims;
  }

  get routed(): boolean {
    return this.world.routes(this);
  }

  send(bytes: WebSocketMessage): void {
    this.session.send(bytes);
  }

  /** Work it is to answer (a REQUEST, a handler-acked EVENT copy): its answer may come in without a rate token. */
  ask(bytes: WebSocketMessage): void {
    this.session.owed++;
    this.session.send(bytes);
  }

  /** What it may serve and subscribe to now (a token refresh withdrew some); take it out of routing tables first. */
  narrow(patterns: readonly string[], events: readonly string[]): void {
    this.patterns = patterns;
    this.serves = new Set(patterns);
    this.events = events;
  }
}
