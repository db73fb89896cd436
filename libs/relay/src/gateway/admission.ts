import { Logger } from '@nestjs/common';
import { quote, RelayErrorCode, RelayErrorMessages } from '@wsrelay/protocol';
import type { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type WebSocket from 'ws';
import { type ConnectionIdentity, type RelayAuthService, TokenRefusal } from '../auth/relay-auth.service.js';
import type { ResolvedRelayOptions } from '../interfaces/relay-options.interface.js';
import { refusalReasonOf } from '../observe/codes.js';
import type { RelayObserver } from '../observe/relay-observer.js';
import { CONNECTION_IDENTITY } from '../relay.constants.js';
import type { Session } from '../session/session.js';

export const SHUTTING_DOWN = 'The relay is shutting down; connect to another relay.';

/** What `ws` hands `verifyClient`. */
export interface UpgradeInfo {
  origin: string | undefined;
  req: IncomingMessage;
}
export type VerifyCallback = (ok: boolean, status?: number, message?: string, headers?: Record<string, string>) => void;

/** The relay parts admission reads: whether it accepts, how many it holds, and whether a socket's HELLO was accepted. */
export interface AdmissionCore {
  readonly accepting: boolean;
  readonly connectionCount: number;
  sessionOf(socket: WebSocket): Session | undefined;
  readonly membership: { nodeOf(session: Session): unknown };
}

/** An upgrade refused: HTTP status, the `X-WsRelay-Error` code and the reason (the body). */
interface Refused {
  status: number;
  code: RelayErrorCode;
  message: string;
}

/** One admitted (or still upgrading) connection, counted against its address and, once known, its subject. */
class Ticket {
  subject: string | null = null;
  socket: WebSocket | undefined;
  /** Its HELLO was accepted (it stays so: a connection never goes back to its handshake). */
  established = false;
  released = false;

  constructor(readonly address: string) {}
}

/** The connections of one source (an address or a token subject): all of them, and those still in their handshake. */
interface Count {
  total: number;
  handshaking: Set<Ticket>;
}

/**
 * Connections per source (IP address or token subject), with two caps: all
 * of its connections, and those still in their handshake (upgrading,
 * verifying the token, or open without an accepted HELLO), so that sockets
 * that never say HELLO cannot squat slots however fast they reconnect.
 */
class SourceQuota {
  private readonly counts = new Map<string, Count>();

  constructor(
    private readonly maxConnections: number,
    private readonly maxHandshakes: number,
    private readonly name: (key: string) => string,
    private readonly settled: (ticket: Ticket) => boolean,
  ) {}

  /** Why one more connection of `key` is refused, or undefined. */
  problem(key: string): string | undefined {
    const count = this.counts.get(key);
    if (count === undefined) return undefined;
    if (count.total >= this.maxConnections) return RelayErrorMessages.tooManyConnectionsFrom(this.name(key), this.maxConnections);
    // Only the handshaking set is walked, and it is bounded by the cap.
    for (const t of count.handshaking) if (this.settled(t)) count.handshaking.delete(t);
    if (count.handshaking.size >= this.maxHandshakes) return RelayErrorMessages.tooManyHandshakesFrom(this.name(key), this.maxHandshakes);
    return undefined;
  }

  add(key: string, ticket: Ticket): void {
    let count = this.counts.get(key);
    if (count === undefined) this.counts.set(key, (count = { total: 0, handshaking: new Set() }));
    count.total++;
    count.handshaking.add(ticket);
  }

  remove(key: string, ticket: Ticket): void {
    const count = this.counts.get(key);
    if (count === undefined) return;
    count.handshaking.delete(ticket);
    if (--count.total === 0) this.counts.delete(key);
  }

  /** Sources counted (for tests and diagnostics). */
  get size(): number {
    return this.counts.size;
  }
}

/**
 * The relay's upgrade gate, before a socket opens: the Origin (403), the
 * relay draining or full (503), per-address and per-subject quotas (429
 * RATE_LIMITED), then the token (401). A connection counts against its
 * quotas from its upgrade until its TCP connection closes, and as
 * handshaking until its HELLO is accepted.
 */
export class Admission {
  private readonly log = new Logger(Admission.name);
  private upgrading = 0;
  private readonly byAddress: SourceQuota;
  private readonly bySubject: SourceQuota;
  private readonly tickets = new WeakMap<IncomingMessage, Ticket>();
  private readonly settled = (t: Ticket): boolean => this.isEstablished(t);

  constructor(
    private readonly options: ResolvedRelayOptions,
    private readonly auth: RelayAuthService,
    private readonly core: AdmissionCore,
    /** Hears of every refused upgrade. */
    private readonly observer?: Pick<RelayObserver, 'connectionRefused'>,
  ) {
    const o = options;
    this.byAddress = new SourceQuota(o.maxConnectionsPerIp, o.maxHandshakesPerIp, a => `address ${a}`, this.settled);
    this.bySubject = new SourceQuota(o.maxConnectionsPerSubject, o.maxHandshakesPerSubject, s => `token subject ${quote(s)}`, this.settled);
  }

  /** Learns which socket an admitted upgrade became (`ws` emits 'connection' with the upgrade request). */
  watch(server: EventEmitter): void {
    server.on('connection', (socket: WebSocket, req: IncomingMessage) => {
      const ticket = this.tickets.get(req);
      if (ticket !== undefined) ticket.socket = socket;
    });
  }

  admit(info: UpgradeInfo, cb: VerifyCallback): void {
    const req = info.req;
    const address = clientAddress(req, this.options.trustProxy);
    const refuse = (r: Refused): void => {
      this.observer?.connectionRefused({ reason: refusalReasonOf(r.code), status: r.status, code: r.code, message: r.message, address });
      cb(false, r.status, r.message, { 'X-WsRelay-Error': r.code });
    };
    const refused = this.gate(info);
    if (refused !== undefined) return refuse(refused);
    const ticket = new Ticket(address);
    const over = this.byAddress.problem(ticket.address);
    if (over !== undefined) return refuse(rateLimited(over));
    this.byAddress.add(ticket.address, ticket);
    this.tickets.set(req, ticket);
    this.releaseOnClose(req.socket, ticket);
    this.upgrading++;
    this.auth.authenticate(req).then(
      identity => {
        this.upgrading--;
        const problem = this.identify(ticket, identity);
        if (problem !== undefined) {
          this.release(ticket);
          return refuse(rateLimited(problem));
        }
        (req as IncomingMessage & Record<symbol, unknown>)[CONNECTION_IDENTITY] = identity;
        cb(true);
      },
      (err: unknown) => {
        this.upgrading--;
        this.release(ticket);
        if (!(err instanceof TokenRefusal)) this.log.error(err);
        const message = err instanceof TokenRefusal ? err.message : RelayErrorMessages.unauthorized('token could not be verified');
        refuse({ status: 401, code: RelayErrorCode.UNAUTHORIZED, message });
      },
    );
  }

  /**
   * Releases the ticket when the TCP connection closes. A method of its own:
   * a listener made in admit() would share its scope, and so keep the upgrade
   * request (headers, buffers) alive for as long as the connection lives.
   */
  private releaseOnClose(socket: Socket, ticket: Ticket): void {
    socket.once('close', () => this.release(ticket));
    if (socket.destroyed) this.release(ticket);
  }

  /** Addresses and subjects with connections counted (to see that nothing leaks). */
  get counted(): { addresses: number; subjects: number } {
    return { addresses: this.byAddress.size, subjects: this.bySubject.size };
  }

  /** What is refused before anything is counted: the Origin, a draining relay, a full one. */
  private gate(info: UpgradeInfo): Refused | undefined {
    const o = this.options;
    if (info.origin !== undefined && !this.originAllowed(info.origin, info.req)) {
      const message = RelayErrorMessages.originNotAllowed(info.origin, o.allowedOrigins === undefined);
      return { status: 403, code: RelayErrorCode.FORBIDDEN, message };
    }
    if (!this.core.accepting) return { status: 503, code: RelayErrorCode.RELAY_UNAVAILABLE, message: SHUTTING_DOWN };
    if (this.core.connectionCount + this.upgrading >= o.maxConnections) {
      const message = `The relay is at its limit of ${o.maxConnections} connections; try another relay or later.`;
      return { status: 503, code: RelayErrorCode.RELAY_UNAVAILABLE, message };
    }
    return undefined;
  }

  /**
   * `allowedOrigins` when given. Otherwise, with auth on, any origin (a page
   * cannot borrow a token: the relay takes none from cookies); with auth off,
   * only a page served from the relay's own host, so that no other site can
   * make a visitor's browser join routing.
   */
  private originAllowed(origin: string, req: IncomingMessage): boolean {
    const allowed = this.options.allowedOrigins;
    if (allowed !== undefined) return allowed.includes(origin);
    return this.auth.enabled || sameHost(origin, req.headers.host);
  }

  /** Counts the ticket against its subject, unless that is over a quota (a token without `sub` has none). */
  private identify(ticket: Ticket, identity: ConnectionIdentity): string | undefined {
    const subject = identity.subject;
    // Its socket closed while the token was checked: nothing to count (`ws` drops the upgrade).
    if (subject === null || ticket.released) return undefined;
    const over = this.bySubject.problem(subject);
    if (over !== undefined) return over;
    ticket.subject = subject;
    this.bySubject.add(subject, ticket);
    return undefined;
  }

  private release(ticket: Ticket): void {
    if (ticket.released) return;
    ticket.released = true;
    this.byAddress.remove(ticket.address, ticket);
    if (ticket.subject !== null) this.bySubject.remove(ticket.subject, ticket);
  }

  private isEstablished(ticket: Ticket): boolean {
    if (!ticket.established && ticket.socket !== undefined) {
      const session = this.core.sessionOf(ticket.socket);
      ticket.established = session !== undefined && this.core.membership.nodeOf(session) !== undefined;
    }
    return ticket.established;
  }
}

function rateLimited(message: string): Refused {
  return { status: 429, code: RelayErrorCode.RATE_LIMITED, message };
}

/**
 * The address a connection counts against: the peer's, or with `trustProxy`
 * the last `X-Forwarded-For` entry (the one the proxy in front of the relay
 * appended; earlier entries are the client's to write). IPv4-mapped IPv6
 * addresses count as their IPv4 address.
 */
export function clientAddress(req: IncomingMessage, trustProxy: boolean): string {
  let address: string | undefined;
  if (trustProxy) {
    const forwarded = req.headers['x-forwarded-for'];
    address = (Array.isArray(forwarded) ? forwarded.join(',') : forwarded)?.split(',').at(-1)?.trim() || undefined;
  }
  address ??= req.socket.remoteAddress ?? 'unknown';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/** Whether an Origin names the host the request was sent to (the Host header), default ports included. */
export function sameHost(origin: string, host: string | undefined): boolean {
  if (host === undefined || host === '') return false;
  try {
    const o = new URL(origin);
    if (o.protocol !== 'http:' && o.protocol !== 'https:') return false;
    return o.host === new URL(`${o.protocol}//${host}`).host;
  } catch {
    return false;
  }
}
