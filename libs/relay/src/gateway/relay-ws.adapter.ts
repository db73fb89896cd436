import { type INestApplicationContext, Logger } from '@nestjs/common';
import { WsAdapter } from '@nestjs/platform-ws';
import type { MessageMappingProperties } from '@nestjs/websockets';
import {
  CloseCode,
  type Frame,
  FRAME_NAMES,
  FrameCodec,
  FrameError,
  FrameType,
  peekFrameHead,
  RelayError,
  refusalError,
  RelayErrorCode,
  RelayErrorMessages,
} from '@wsrelay/protocol';
import type { EventEmitter } from 'node:events';
import type { Server as HttpServer, IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { isObservable, type Observable } from 'rxjs';
import type WebSocket from 'ws';
import { RelayAuthService } from '../auth/relay-auth.service.js';
import { selectProtocol } from '../auth/token.js';
import { RelayCore } from '../core/relay-core.js';
import type { ResolvedRelayOptions } from '../interfaces/relay-options.interface.js';
import { RefusalReason, type RelayObserver } from '../observe/relay-observer.js';
import { RelayTally } from '../observe/relay-tally.js';
import { DEFAULT_MAX_PAYLOAD_BYTES, RELAY_ADAPTER_MARK, RELAY_OPTIONS } from '../relay.constants.js';
import type { Session } from '../session/session.js';
import { Admission, SHUTTING_DOWN, type UpgradeInfo, type VerifyCallback } from './admission.js';
import { FramePolicy } from './frame-policy.js';
import { FrameIntake, type NestCallback } from './frame-intake.js';
import { planHotPath } from './hot-path.js';
import { InboundGate } from './inbound-gate.js';
import { Refusals } from './refusals.js';
import { REFUSED_EVENT, Refusal } from './refused.js';
import { RelayGateway } from './relay.gateway.js';
import { toRelayError } from './relay-exception.filter.js';
import { UpgradeDeadline } from './upgrade-deadline.js';

const SHUTTING_DOWN_RESPONSE =
  `HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain\r\nX-WsRelay-Error: ${RelayErrorCode.RELAY_UNAVAILABLE}\r\n` +
  `Content-Length: ${Buffer.byteLength(SHUTTING_DOWN)}\r\n\r\n${SHUTTING_DOWN}`;
/** Gateway message name → slot in a connection's handler array (the frame type; 0 for refused frames). */
const HANDLER_SLOTS = new Map<string, number>([
  ...Object.entries(FRAME_NAMES).map(([type, name]) => [name, Number(type)] as [string, number]),
  [REFUSED_EVENT, 0],
]);

/**
 * The frames a node may send, each with whether it starts work at the relay
 * (and so is refused once the relay has let go of the connection) or answers
 * work the relay gave (dropped then: nobody waits for it here).
 */
const INBOUND: Readonly<Partial<Record<FrameType, { readonly startsWork: boolean }>>> = {
  [FrameType.Hello]: { startsWork: true },
  [FrameType.Request]: { startsWork: true },
  [FrameType.Response]: { startsWork: false },
  [FrameType.Cancel]: { startsWork: false },
  [FrameType.Credit]: { startsWork: false },
  [FrameType.Event]: { startsWork: true },
  [FrameType.Ping]: { startsWork: true },
  [FrameType.Pong]: { startsWork: false },
  [FrameType.Wait]: { startsWork: true },
  [FrameType.Discover]: { startsWork: true },
  [FrameType.Auth]: { startsWork: true },
  [FrameType.Drain]: { startsWork: true },
  [FrameType.Handled]: { startsWork: false },
};

/** Most messages a connection paused for its rate may have waiting (one socket read of the smallest frames fits). */
const MAX_HELD_FRAMES = 16_384;

/** Frame types that answer work the relay gave a node. */
const ANSWERS = new Set<number>([FrameType.Response, FrameType.Handled]);

/** Whether `data` is an answer `session` owes the relay (one of them is then paid). */
function owedAnswer(session: Session, data: Buffer): boolean {
  const type = session.owed === 0 || !session.identity.isServer ? undefined : peekFrameHead(data)?.type;
  if (type === undefined || !ANSWERS.has(type)) return false;
  session.owed--;
  return true;
}

/** Closes a connection far past its rate: the close frame goes out, it reads again to finish closing, and it is cut after a second. */
function giveUp(socket: WebSocket, session: Session, reason: string, observer: RelayObserver): void {
  observer.frameRefused(RefusalReason.Rate, RelayErrorCode.RATE_LIMITED, reason, session);
  socket.close(CloseCode.RATE_LIMITED, reason);
  socket.resume();
  setTimeout(() => socket.terminate(), 1000).unref();
}

/** The relay parts the adapter needs, looked up in the app it serves. */
interface RelayParts {
  options: ResolvedRelayOptions;
  auth: RelayAuthService;
  core: RelayCore;
  policy: FramePolicy;
  refusals: Refusals;
  gateway: RelayGateway;
  observer: RelayTally;
}

type HotHandler = (socket: WebSocket, frame: Frame) => unknown;

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
 * filters apply as usual); a frame that cannot be used goes to the
 * `refused` handler instead. The frequent frames (REQUEST, RESPONSE, CANCEL,
 * EVENT, HANDLED, PING) take a hot path: judged by the same FramePolicy as
 * the gateway's guard, then handed to the same gateway handler, without
 * Nest's per-message pipeline (see hot-path.ts for when it steps aside).
 *
 * `app.useWebSocketAdapter(new RelayWsAdapter(app))`
 */
export class RelayWsAdapter extends WsAdapter {
  private readonly log = new Logger(RelayWsAdapter.name);
  private maxPayloadBytes = DEFAULT_MAX_PAYLOAD_BYTES;
  /** The relay core's codec; one of its own only in an app without the relay module. */
  private codec: FrameCodec | undefined;
  private admission: Admission | undefined;
  private relay: RelayParts | undefined;
  /** Counts every frame taken in (the relay's; none in an app without the relay module). */
  private observer: RelayObserver | undefined;
  /** Messages `ws` read before the rate limit paused the socket, held undecoded: past these the connection is closed. */
  private gateLimits = { maxHeldBytes: 0, maxHeldFrames: MAX_HELD_FRAMES };
  /** The gateway handlers the hot path calls, by frame type. */
  private hot: Array<HotHandler | undefined> = [];

  constructor(private readonly app?: INestApplicationContext | object) {
    super(app);
  }

  override create(port: number, options: Record<string, unknown> & { path?: string } = {}): unknown {
    const wsOptions: Record<string, unknown> = { ...options };
    const relay = this.relayParts();
    if (relay !== undefined) {
      const o = relay.options;
      this.relay = relay;
      this.observer = relay.observer;
      this.admission = new Admission(o, relay.auth, relay.core, relay.observer);
      this.maxPayloadBytes = o.maxPayloadBytes;
      this.codec = relay.core.codec;
      // One read of the socket (64 KiB) of the smallest frames, or a whole message up to twice the limit (inflated).
      this.gateLimits = { maxHeldBytes: Math.max(o.maxPayloadBytes * 4, 1024 * 1024), maxHeldFrames: MAX_HELD_FRAMES };
      this.planHotPath(relay.gateway);
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
    if (relay !== undefined) {
      this.admission?.watch(server as unknown as EventEmitter);
      new UpgradeDeadline(relay.options.upgradeTimeoutMs).attach(this.httpServer as HttpServer | undefined);
    }
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
    const http = this.httpServer as HttpServer | undefined;
    if (http !== undefined && typeof http.on === 'function') {
      http.on('upgrade', (_req: IncomingMessage, socket: Duplex) => {
        if (socket.writable) socket.end(SHUTTING_DOWN_RESPONSE);
        else socket.destroy();
      });
    }
    await closing;
  }

  override bindMessageHandlers(
    client: WebSocket,
    handlers: MessageMappingProperties[],
    _transform: (data: unknown) => Observable<unknown>,
  ): void {
    // By frame type (0: refused); an array costs a connection less than a Map.
    const callbacks: Array<NestCallback | undefined> = [];
    for (const h of handlers) {
      const slot = HANDLER_SLOTS.get(h.message as string);
      if (slot !== undefined) callbacks[slot] = h.callback as NestCallback;
    }
    const relay = this.relay;
    // The gateway's handleConnection has run: the session (if the relay took the socket) is there, for the connection's life.
    const session = relay?.core.sessionOf(client);
    const intake = new FrameIntake(callbacks, {
      established: () => session === undefined || relay?.core.membership.nodeOf(session) !== undefined,
      fast: item => this.fast(client, session, item),
      nest: (callback, item, event, done) => this.run(callback, item, event, done),
    });
    const read = (data: Buffer, isBinary: boolean): void => {
      // Heard from when its frame is taken in: a connection the rate limit holds back is not silent.
      if (session !== undefined) session.heard = true;
      const item = this.parse(session, data, isBinary);
      if (item !== undefined) intake.receive(item);
    };
    const rate = session?.rate;
    const gate =
      rate === undefined
        ? undefined
        : new InboundGate(
            client,
            rate,
            read,
            // Answers the relay is owed take no token (its callers' buckets limit how many it asks for); any other frame does.
            { ...this.gateLimits, exempt: data => owedAnswer(session as Session, data) },
            (frames, bytes) =>
              giveUp(client, session as Session, `over the rate limit: ${frames} frames (${bytes} bytes) unread`, relay!.observer),
          );
    client.on('message', gate === undefined ? read : (data: Buffer, isBinary: boolean) => gate.receive(data, isBinary));
  }

  /** Which gateway handlers the hot path calls directly; the others' frames go through Nest. */
  private planHotPath(gateway: RelayGateway): void {
    const plan = planHotPath(this.app ?? {}, gateway);
    const methods = gateway as unknown as Record<string, HotHandler>;
    this.hot = [];
    for (const [type, method] of plan.methods) this.hot[type] = methods[method].bind(gateway);
    if (plan.throughNest.length > 0) {
      this.log.warn(
        `Frames that go through Nest's pipeline each time (slower) because of enhancers added to the gateway: ${plan.throughNest.join('; ')}`,
      );
    }
  }

  /**
   * The hot path: the frame is judged by the FramePolicy the gateway's guard
   * applies and handed to the gateway handler Nest would call; a refusal is
   * answered as RelayExceptionFilter answers it (a frame the adapter refused
   * is answered at once: no handler of Nest's is needed for it). False when
   * the frame must go through Nest.
   */
  private fast(socket: WebSocket, session: Session | undefined, item: Frame | Refusal): boolean {
    const relay = this.relay;
    if (session === undefined || relay === undefined) return false;
    if (item instanceof Refusal) {
      relay.refusals.refuse(session, socket, item.id, item.error);
      return true;
    }
    const handler = this.hot[item.type];
    if (handler === undefined) return false;
    try {
      relay.policy.check(session, item);
      handler(socket, item);
    } catch (err) {
      relay.refusals.refuse(session, socket, 'id' in item ? item.id : 0, toRelayError(err, this.log));
    }
    return true;
  }

  /** The relay module's parts, when the app has them. */
  private relayParts(): RelayParts | undefined {
    const app = this.app as INestApplicationContext | undefined;
    if (typeof app?.get !== 'function') return undefined;
    try {
      return {
        options: app.get<ResolvedRelayOptions>(RELAY_OPTIONS, { strict: false }),
        auth: app.get(RelayAuthService, { strict: false }),
        core: app.get(RelayCore, { strict: false }),
        policy: app.get(FramePolicy, { strict: false }),
        refusals: app.get(Refusals, { strict: false }),
        gateway: app.get(RelayGateway, { strict: false }),
        observer: app.get(RelayTally, { strict: false }),
      };
    } catch {
      return undefined;
    }
  }

  /** The upgrade gate (see Admission): origin, relay full or draining, per-address and per-subject quotas, then the token. */
  private admit(_relay: RelayParts, info: UpgradeInfo, cb: VerifyCallback): void {
    this.admission?.admit(info, cb);
  }

  /**
   * The frame, its refusal, or nothing when it is to be dropped. What is
   * refused for its size or kind is refused before any decoding (its id read
   * from its first bytes, for the answer), and decoding checks the frame's
   * structure before it builds anything.
   */
  private parse(session: Session | undefined, data: Buffer, isBinary: boolean): Frame | Refusal | undefined {
    if (!isBinary) return new Refusal(0, new FrameError(RelayErrorMessages.textFrame()));
    if (data.length > this.maxPayloadBytes) {
      return new Refusal(
        peekFrameHead(data)?.id ?? 0,
        refusalError(RelayErrorCode.PAYLOAD_TOO_LARGE, RelayErrorMessages.payloadTooLarge(data.length, this.maxPayloadBytes)),
      );
    }
    let frame: Frame;
    try {
      frame = (this.codec ??= new FrameCodec({ maxBinBytes: DEFAULT_MAX_PAYLOAD_BYTES * 2 })).decode(data);
    } catch (err) {
      const e = err instanceof FrameError ? err : new FrameError(String(err));
      return new Refusal(e.frameId, e);
    }
    this.observer?.frameIn(frame.type);
    const id = 'id' in frame ? frame.id : 0;
    const inbound = INBOUND[frame.type];
    if (inbound === undefined) return new Refusal(id, new FrameError(RelayErrorMessages.notInbound(FRAME_NAMES[frame.type])));
    if (session === undefined || this.relay === undefined) return frame;
    // The relay let go of it in its shutdown (its socket not closed yet): nothing is routed for it any more.
    // Work it asks for is refused; answers to work it was given are dropped (nobody waits for them here).
    // (A relay lets go of open sessions only once it no longer accepts: until then no lookup per frame.)
    const core = this.relay.core;
    if (!core.accepting && !core.holds(session)) {
      if (!inbound.startsWork) return undefined;
      return new Refusal(
        id,
        new RelayError(RelayErrorCode.RELAY_UNAVAILABLE, RelayErrorMessages.relayUnavailable(RelayErrorMessages.goingAway())),
      );
    }
    return frame;
  }

  /**
   * Runs a Nest handler; with interceptors it returns an Observable that runs
   * the handler only once subscribed to. `done` runs once, when the handler
   * has run (guards, filters and all): its first value, its end or its error.
   */
  private run(callback: NestCallback, payload: unknown, event: string, done: () => void): void {
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      done();
    };
    const fail = (err: unknown): void => {
      this.log.error(err);
      finish();
    };
    let result: unknown;
    try {
      result = callback(payload, event);
    } catch (err) {
      fail(err);
      return;
    }
    if (result instanceof Promise) result.then((r: unknown) => this.settle(r, finish, fail), fail);
    else this.settle(result, finish, fail);
  }

  private settle(result: unknown, finish: () => void, fail: (err: unknown) => void): void {
    if (!isObservable(result)) {
      finish();
      return;
    }
    result.subscribe({ next: finish, complete: finish, error: fail });
  }
}
