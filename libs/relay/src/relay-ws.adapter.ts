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
import { type HeldFrame, sessionOf } from './session.js';

/** Gateway message name of a frame the adapter refused before routing. */
export const REFUSED_EVENT = 'refused';

const HELLO_EVENT = FRAME_NAMES[FrameType.Hello];
/** Frames a connection may pipeline behind a HELLO the relay has not handled yet. */
const MAX_HELD_FRAMES = 1024;

/** What the gateway receives for a refused frame. */
export interface RefusedFrame {
  id: number;
  error: RelayError;
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
    const callbacks = new Map<string, Callback>(handlers.map(h => [h.message as string, h.callback as Callback]));
    const dispatch = (event: string, payload: unknown): void => {
      const callback = callbacks.get(event);
      if (callback === undefined) return;
      const session = event === HELLO_EVENT ? sessionOf(client) : undefined;
      if (session === undefined || session.established) {
        this.run(callback, payload, event);
        return;
      }
      // Nest runs a frame's guards before the previous frame's handler, so a
      // frame pipelined right after HELLO would be judged before HELLO took
      // effect. Frames wait until HELLO's handler has run, then go in order.
      const held: HeldFrame[] = [];
      session.held = held;
      this.run(callback, payload, event, () => {
        session.held = undefined;
        while (held.length > 0) {
          const next = held.shift() as HeldFrame;
          // A second HELLO among them holds the rest again (its handler refuses it).
          const again = session.held as HeldFrame[] | undefined;
          if (again !== undefined) {
            again.push(next, ...held);
            return;
          }
          dispatch(next.event, next.payload);
        }
      });
    };
    client.on('message', (data: Buffer, isBinary: boolean) => {
      const { event, payload } = this.parse(client, data, isBinary);
      const held = sessionOf(client)?.held;
      if (held === undefined) {
        dispatch(event, payload);
      } else if (held.length < MAX_HELD_FRAMES) {
        held.push({ event, payload });
      } else {
        const id = event === REFUSED_EVENT ? (payload as RefusedFrame).id : ((payload as { id?: number }).id ?? 0);
        dispatch(...refusedEntry(id, new RelayError(RelayErrorCode.RATE_LIMITED, RelayErrorMessages.tooManyBeforeWelcome(MAX_HELD_FRAMES))));
      }
    });
  }

  private parse(client: WebSocket, data: Buffer, isBinary: boolean): { event: string; payload: unknown } {
    if (!isBinary) return refused(0, new FrameError(RelayErrorMessages.textFrame()));
    let frame: Frame;
    try {
      frame = this.codec.decode(data);
    } catch (err) {
      const e = err instanceof FrameError ? err : new FrameError(String(err));
      return refused(e.frameId, e);
    }
    if (data.length > this.maxPayloadBytes) {
      const id = 'id' in frame ? frame.id : 0;
      return refused(
        id,
        new RelayError(
          RelayErrorCode.PAYLOAD_TOO_LARGE,
          RelayErrorMessages.payloadTooLarge(data.length, this.maxPayloadBytes),
        ),
      );
    }
    if (!INBOUND.has(frame.type)) {
      return refused('id' in frame ? frame.id : 0, new FrameError(RelayErrorMessages.notInbound(FRAME_NAMES[frame.type])));
    }
    if (this.rate !== false && RATED.has(frame.type)) {
      const session = sessionOf(client);
      if (session !== undefined && !session.take(this.rate.perSecond, this.rate.burst)) {
        return refused(
          'id' in frame ? frame.id : 0,
          new RelayError(RelayErrorCode.RATE_LIMITED, RelayErrorMessages.rateLimited(this.rate.perSecond)),
        );
      }
    }
    return { event: FRAME_NAMES[frame.type], payload: frame };
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

function refused(id: number, error: RelayError): { event: string; payload: RefusedFrame } {
  return { event: REFUSED_EVENT, payload: { id, error } };
}

function refusedEntry(id: number, error: RelayError): [string, RefusedFrame] {
  return [REFUSED_EVENT, { id, error }];
}
