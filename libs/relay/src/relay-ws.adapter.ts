import type { INestApplicationContext } from '@nestjs/common';
import { WsAdapter } from '@nestjs/platform-ws';
import type { MessageMappingProperties } from '@nestjs/websockets';
import {
  type Frame,
  FRAME_NAMES,
  FrameCodec,
  FrameError,
  FrameType,
  RelayError,
  RelayErrorCode,
  RelayErrorMessages,
} from '@wsrelay/protocol';
import type { IncomingMessage } from 'node:http';
import { isObservable, type Observable } from 'rxjs';
import type WebSocket from 'ws';
import { RelayAuthService, TokenRefusal } from './auth/relay-auth.service.js';
import { selectProtocol } from './auth/token.js';
import type { RelayRateLimit, ResolvedRelayOptions } from './interfaces/relay-options.interface.js';
import { CONNECTION_IDENTITY, DEFAULT_MAX_PAYLOAD_BYTES, RELAY_ADAPTER_MARK, RELAY_OPTIONS } from './relay.constants.js';
import { RelayRouter } from './routing/relay-router.js';
import { toRelayError } from './filters/relay-exception.filter.js';
import { type HeldFrame, type Session, sessionOf } from './session.js';

/** Gateway message name of a frame the adapter refused before routing. */
export const REFUSED_EVENT = 'refused';

const HELLO_EVENT = FRAME_NAMES[FrameType.Hello];
const SHUTTING_DOWN = 'The relay is shutting down; connect to another relay.';
const SHUTTING_DOWN_RESPONSE =
  `HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain\r\nX-WsRelay-Error: ${RelayErrorCode.RELAY_UNAVAILABLE}\r\n` +
  `Content-Length: ${Buffer.byteLength(SHUTTING_DOWN)}\r\n\r\n${SHUTTING_DOWN}`;
/** Gateway message name → slot in a connection's handler array (the frame type; 0 for refused frames). */
const HANDLER_SLOTS = new Map<string, number>([
  ...Object.entries(FRAME_NAMES).map(([type, name]) => [name, Number(type)] as [string, number]),
  [REFUSED_EVENT, 0],
]);
/** Frames a connection may pipeline behind a HELLO the relay has not handled yet. */
const MAX_HELD_FRAMES = 1024;

/** What the gateway receives for a refused frame. */
export interface RefusedFrame {
  id: number;
  error: RelayError;
}

/** A frame the adapter refused before routing (the `refused` handler answers it). */
class Refusal implements RefusedFrame {
  constructor(
    readonly id: number,
    readonly error: RelayError,
  ) {}
}

const INBOUND = new Set<FrameType>([
  FrameType.Hello,
  FrameType.Request,
  FrameType.Response,
  FrameType.Cancel,
  FrameType.Event,
  FrameType.Ping,
  FrameType.Pong,
  FrameType.Wait,
  FrameType.Discover,
  FrameType.Auth,
  FrameType.Drain,
  FrameType.Handled,
]);

/** Frames that start work at the relay, and so count against the rate limit (answers do not). */
const RATED = new Set<FrameType>([
  FrameType.Hello,
  FrameType.Request,
  FrameType.Event,
  FrameType.Wait,
  FrameType.Discover,
  FrameType.Ping,
  FrameType.Auth,
  FrameType.Drain,
]);

type Callback = (data: unknown, event: string) => unknown;

/** What `ws` hands `verifyClient`. */
interface UpgradeInfo {
  origin: string | undefined;
  req: IncomingMessage;
}
type VerifyCallback = (ok: boolean, status?: number, message?: string, headers?: Record<string, string>) => void;

/** The relay parts the adapter needs, looked up in the app it serves. */
interface RelayParts {
  options: ResolvedRelayOptions;
  auth: RelayAuthService;
  router: RelayRouter;
}

/**
 * The platform-ws adapter, speaking the relay's binary protocol.
 *
 * At the HTTP upgrade it is the relay's gate: a disallowed Origin gets 403,
 * a full relay 503, and (with `auth`) a token that does not verify 401,
 * all before a socket opens; the identity it establishes rides on the
 * request to the gateway. A `access_token.*` subprotocol is never echoed.
 *
 * Then each frame is rate-limited, decoded and validated once, and handed
 * to the gateway handler named after its type (guards, interceptors and
 * filters apply as usual). A frame that cannot be used goes to the
 * `refused` handler instead.
 *
 * `app.useWebSocketAdapter(new RelayWsAdapter(app))`
 */
export class RelayWsAdapter extends WsAdapter {
  private maxPayloadBytes = DEFAULT_MAX_PAYLOAD_BYTES;
  private codec = new FrameCodec({ maxBinBytes: DEFAULT_MAX_PAYLOAD_BYTES * 2 });
  private rate: Required<RelayRateLimit> | false = false;
  private upgrading = 0;
  private router: RelayRouter | undefined;

  constructor(private readonly app?: INestApplicationContext | object) {
    super(app);
  }

  override create(port: number, options: Record<string, unknown> & { path?: string } = {}): unknown {
    const wsOptions: Record<string, unknown> = { ...options };
    const relay = this.relayParts();
    if (relay !== undefined) {
      const o = relay.options;
      this.maxPayloadBytes = o.maxPayloadBytes;
      this.codec = new FrameCodec({ maxBinBytes: o.maxPayloadBytes * 2 });
      this.rate = o.rateLimit;
      this.router = relay.router;
      Object.assign(wsOptions, {
        path: o.path,
        // Frames up to twice the limit are read and answered PAYLOAD_TOO_LARGE;
        // beyond that (also the inflated size with permessage-deflate) ws closes with 1009.
        maxPayload: o.maxPayloadBytes * 2,
        perMessageDeflate: o.perMessageDeflate,
        verifyClient: (info: UpgradeInfo, cb: VerifyCallback) => this.admit(relay, info, cb),
        handleProtocols: selectProtocol,
      });
    }
    const server = super.create(port, wsOptions) as Record<symbol, unknown>;
    server[RELAY_ADAPTER_MARK] = true;
    return server;
  }

  /**
   * Nest closes the WebSocket server a moment before the HTTP server: an
   * upgrade arriving in between would get the HTTP app's 404. It gets the
   * shutdown's 503 instead, so reconnecting nodes read the right reason.
   */
  override async close(server: unknown): Promise<void> {
    // super.close() takes the WebSocket server's upgrade listener off at once; ours goes on right after.
    const closing = super.close(server);
    const http = this.httpServer as import('node:http').Server | undefined;
    if (http !== undefined && typeof http.on === 'function') {
      http.on('upgrade', (_req: IncomingMessage, socket: import('node:stream').Duplex) => {
        if (socket.writable) socket.end(SHUTTING_DOWN_RESPONSE);
        else socket.destroy();
      });
    }
    await closing;
  }

  /** The relay module's parts, when the app has them. */
  private relayParts(): RelayParts | undefined {
    const app = this.app as INestApplicationContext | undefined;
    if (typeof app?.get !== 'function') return undefined;
    try {
      return {
        options: app.get<ResolvedRelayOptions>(RELAY_OPTIONS, { strict: false }),
        auth: app.get(RelayAuthService, { strict: false }),
        router: app.get(RelayRouter, { strict: false }),
      };
    } catch {
      return undefined;
    }
  }

  /** The upgrade gate: origin, connection limit, then the token. */
  private admit(relay: RelayParts, info: UpgradeInfo, cb: VerifyCallback): void {
    const o = relay.options;
    if (o.allowedOrigins !== undefined && info.origin !== undefined && !o.allowedOrigins.includes(info.origin)) {
      cb(false, 403, `Forbidden: origin ${info.origin} is not allowed.`, { 'X-WsRelay-Error': RelayErrorCode.FORBIDDEN });
      return;
    }
    if (!relay.router.accepting) {
      cb(false, 503, SHUTTING_DOWN, { 'X-WsRelay-Error': RelayErrorCode.RELAY_UNAVAILABLE });
      return;
    }
    if (relay.router.connectionCount + this.upgrading >= o.maxConnections) {
      cb(false, 503, `The relay is at its limit of ${o.maxConnections} connections; try another relay or later.`, {
        'X-WsRelay-Error': RelayErrorCode.RELAY_UNAVAILABLE,
      });
      return;
    }
    this.upgrading++;
    relay.auth.authenticate(info.req).then(
      identity => {
        this.upgrading--;
        (info.req as IncomingMessage & Record<symbol, unknown>)[CONNECTION_IDENTITY] = identity;
        cb(true);
      },
      (err: unknown) => {
        this.upgrading--;
        if (!(err instanceof TokenRefusal)) this.logger.error(err);
        const message = err instanceof TokenRefusal ? err.message : RelayErrorMessages.unauthorized('token could not be verified');
        cb(false, 401, message, { 'X-WsRelay-Error': RelayErrorCode.UNAUTHORIZED });
      },
    );
  }

  override bindMessageHandlers(
    client: WebSocket,
    handlers: MessageMappingProperties[],
    _transform: (data: unknown) => Observable<unknown>,
  ): void {
    // By frame type (0: refused); an array costs a connection less than a Map.
    const callbacks: Array<Callback | undefined> = [];
    for (const h of handlers) {
      const slot = HANDLER_SLOTS.get(h.message as string);
      if (slot !== undefined) callbacks[slot] = h.callback as Callback;
    }
    const dispatch = (item: Frame | Refusal): void => {
      const refusal = item instanceof Refusal;
      const event = refusal ? REFUSED_EVENT : FRAME_NAMES[item.type];
      const callback = callbacks[refusal ? 0 : item.type];
      if (callback === undefined) return;
      const owner = sessionOf(client);
      if (event !== HELLO_EVENT || owner === undefined || owner.established) {
        // Counted while in Nest's pipeline: until it has run, later frames of
        // this connection must not overtake it on the hot path.
        if (owner === undefined) {
          this.run(callback, item, event);
          return;
        }
        owner.inNest++;
        this.run(callback, item, event, () => owner.inNest--);
        return;
      }
      const session = owner;
      // Nest runs a frame's guards before the previous frame's handler, so a
      // frame pipelined right after HELLO would be judged before HELLO took
      // effect. Frames wait until HELLO's handler has run, then go in order.
      const held: HeldFrame[] = [];
      session.held = held;
      this.run(callback, item, event, () => {
        session.held = undefined;
        while (held.length > 0) {
          const next = held.shift() as HeldFrame;
          // A second HELLO among them holds the rest again (its handler refuses it).
          const again = session.held as HeldFrame[] | undefined;
          if (again !== undefined) {
            again.push(next, ...held);
            return;
          }
          this.deliver(next, dispatch);
        }
      });
    };
    client.on('message', (data: Buffer, isBinary: boolean) => {
      const session = sessionOf(client);
      if (session !== undefined) session.heard = true;
      const item = this.parse(session, data, isBinary);
      const held = session?.held;
      if (held === undefined) {
        this.deliver(item, dispatch, session);
      } else if (held.length < MAX_HELD_FRAMES) {
        held.push(item);
      } else {
        const id = item instanceof Refusal ? item.id : 'id' in item ? item.id : 0;
        dispatch(new Refusal(id, new RelayError(RelayErrorCode.RATE_LIMITED, RelayErrorMessages.tooManyBeforeWelcome(MAX_HELD_FRAMES))));
      }
    });
  }

  /** A frame the guards have already let through on this connection goes straight to the router; any other to Nest. */
  private deliver(item: Frame | Refusal, dispatch: (item: Frame | Refusal) => void, session?: Session): void {
    if (session === undefined || session.inNest > 0 || item instanceof Refusal || !this.fastRoute(session, item)) dispatch(item);
  }

  /**
   * The hot path: REQUEST, RESPONSE, HANDLED, CANCEL and EVENT whose kind and pattern
   * the gateway's guards have passed before on this connection (GuardMemo),
   * and PING (which has none), routed as the gateway's handlers would route
   * them, without Nest's per-message guards, proxies and rxjs. False when
   * the frame must go through the gateway.
   */
  private fastRoute(session: Session, frame: Frame): boolean {
    const router = this.router;
    if (router === undefined) return false;
    const memo = session.memo;
    try {
      switch (frame.type) {
        case FrameType.Request:
          if (!memo.allowsCall(frame.pattern)) return false;
          router.request(session, frame);
          return true;
        case FrameType.Response:
          if (!memo.answers) return false;
          router.response(session, frame);
          return true;
        case FrameType.Cancel:
          if (!memo.cancels) return false;
          router.cancel(session, frame);
          return true;
        case FrameType.Event: {
          if (!memo.allowsPublish(frame.pattern)) return false;
          // What EventAckInterceptor does on the gateway path.
          const recipients = router.publish(session, frame);
          if (recipients !== undefined) router.ack(session, frame.id, recipients);
          return true;
        }
        case FrameType.Handled:
          if (!memo.answers) return false;
          router.handled(session, frame);
          return true;
        case FrameType.Ping:
          router.pong(session);
          return true;
        default:
          return false;
      }
    } catch (err) {
      router.refuse(session, session.socket, 'id' in frame ? frame.id : 0, toRelayError(err, this.logger));
      return true;
    }
  }

  private parse(session: Session | undefined, data: Buffer, isBinary: boolean): Frame | Refusal {
    if (!isBinary) return new Refusal(0, new FrameError(RelayErrorMessages.textFrame()));
    let frame: Frame;
    try {
      frame = this.codec.decode(data);
    } catch (err) {
      const e = err instanceof FrameError ? err : new FrameError(String(err));
      return new Refusal(e.frameId, e);
    }
    if (data.length > this.maxPayloadBytes) {
      return new Refusal(
        'id' in frame ? frame.id : 0,
        new RelayError(RelayErrorCode.PAYLOAD_TOO_LARGE, RelayErrorMessages.payloadTooLarge(data.length, this.maxPayloadBytes)),
      );
    }
    if (!INBOUND.has(frame.type)) {
      return new Refusal('id' in frame ? frame.id : 0, new FrameError(RelayErrorMessages.notInbound(FRAME_NAMES[frame.type])));
    }
    if (this.rate !== false && session !== undefined && RATED.has(frame.type) && !session.take(this.rate.perSecond, this.rate.burst)) {
      return new Refusal(
        'id' in frame ? frame.id : 0,
        new RelayError(RelayErrorCode.RATE_LIMITED, RelayErrorMessages.rateLimited(this.rate.perSecond)),
      );
    }
    return frame;
  }

  /**
   * Runs a Nest handler; with interceptors it returns an Observable that must
   * be subscribed to run. `done` runs once the handler has (guards, filters and all).
   */
  private run(callback: Callback, payload: unknown, event: string, done?: () => void): void {
    let result: unknown;
    try {
      result = callback(payload, event);
    } catch (err) {
      this.logger.error(err);
      done?.();
      return;
    }
    if (result instanceof Promise) {
      result.then(
        r => {
          this.drain(r);
          done?.();
        },
        err => {
          this.logger.error(err);
          done?.();
        },
      );
    } else {
      this.drain(result);
      done?.();
    }
  }

  private drain(result: unknown): void {
    if (isObservable(result)) result.subscribe({ error: err => this.logger.error(err) });
  }
}
