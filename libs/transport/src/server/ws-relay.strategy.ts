import {
  type CustomTransportStrategy,
  type IncomingRequest,
  type MessageHandler,
  type ReadPacket,
  Server,
  type Transport,
  type WritePacket,
} from '@nestjs/microservices';
// Nest's own wording for a request or event no handler matches.
import { NO_EVENT_HANDLER, NO_MESSAGE_HANDLER } from '@nestjs/microservices/constants.js';
import {
  compileSubject,
  decodePayload,
  EventFlag,
  type EventFrame,
  type Frame,
  FrameType,
  type RequestFrame,
  ResponseFlag,
  subscriptionProblem,
  type SubjectMatcher,
} from '@wsrelay/protocol';
import { IdentitySerializer } from '@nestjs/microservices/serializers/identity.serializer.js';
import { finalize, isObservable, lastValueFrom } from 'rxjs';
import type WebSocket from 'ws';
import { resolveConnectionConfig } from '../connection/connection-config.js';
import { decodeExt } from '../connection/ext.js';
import type { WsRelayUrlStatus } from '../connection/url-status.js';
import { RelayLinks } from '../connection/relay-links.js';
import { DEFAULT_DRAIN_TIMEOUT_MS, DEFAULT_MAX_STREAM_BUFFERED_BYTES } from '../constants.js';
import { WsRelayContext } from '../ctx-host/ws-relay.context.js';
import { HandlerWork } from './handler-work.js';
import type { InFlight } from './in-flight.js';
import { NodeTracing, type TracedWork } from '../tracing/node-tracing.js';
import { describeError } from './describe-error.js';
import { StrategyMetrics } from '../metrics/strategy-metrics.js';
import { handlerError, INTERNAL_ERROR, prepareResponse } from './prepare-response.js';
import { type PreparedResponse, type ResponseSink, ResponseStream } from './response-stream.js';
import { deserializeIncoming } from './incoming-packet.js';
import { type WsRelayEvents, WsRelayStatus } from '../enums.js';
import type { WsRelayStrategyOptions } from '../interfaces/ws-relay-options.interface.js';
import { validateStrategyOptions } from '../interfaces/ws-relay-options.validation.js';

const MAX_CACHED_SUBJECTS = 10_000;
const BAD_REQUEST_MESSAGE = 'The request could not be decoded';
/** Unsent bytes on a session past which, without flow control, an async iterable is pulled no further for now. */
const BACKED_UP_BYTES = 1024 * 1024;

/**
 * wsrelay's transport id, as Nest's `Transport` enum names its own: bind a
 * handler to the relay alone with `@MessagePattern('x', WS_RELAY_TRANSPORT)`;
 * processing hooks are given it. A registered symbol, so that two copies of
 * this package in one app still agree on it.
 */
export const WS_RELAY_TRANSPORT: unique symbol = Symbol.for('@wsrelay/transport');

/**
 * A Nest transport strategy whose `@MessagePattern` and `@EventPattern`
 * handlers are reached through a wsrelay relay:
 * `app.connectMicroservice({ strategy: new WsRelayStrategy({ urls: [...] }) })`.
 *
 * `close()` (Nest's `app.close()`) drains first: the relay stops routing
 * new requests and events here, the handlers in flight finish (up to
 * `drainTimeoutMs`), then the connection closes, so a rolling restart loses
 * no call.
 */
export class WsRelayStrategy extends Server<WsRelayEvents, WsRelayStatus> implements CustomTransportStrategy {
  /** Event handler failures reach the relay (and an emitter asking for handler acks) instead of only Nest's log. */
  override readonly propagatesEventHandlerErrors = true;
  /**
   * Nest registers here only the handlers bound to this id or to no transport
   * (so a handler bound to TCP in a hybrid app is neither announced nor served).
   */
  override transportId: Transport | symbol = WS_RELAY_TRANSPORT;
  protected readonly links: RelayLinks;
  /** Requests and event handlers running. */
  private readonly work = new HandlerWork();
  /** A processing hook was set (or runWithProcessingHooks replaced): handlers then run inside Nest's hooks. */
  private hooked = false;
  private eventMatchers: Array<[pattern: string, match: SubjectMatcher]> = [];
  private readonly subjectCache = new Map<string, string[]>();
  /** Nest's pass-through serializer is in use: responses need no serializing copy. */
  private readonly identitySerializer: boolean;
  private readonly drainTimeoutMs: number;
  private readonly maxStreamBufferedBytes: number;
  private readonly tracing: NodeTracing | undefined;
  private readonly metrics: StrategyMetrics | undefined;

  constructor(protected readonly options: WsRelayStrategyOptions) {
    super();
    validateStrategyOptions(options);
    this.drainTimeoutMs = options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;
    this.maxStreamBufferedBytes = options.maxStreamBufferedBytes ?? DEFAULT_MAX_STREAM_BUFFERED_BYTES;
    this.tracing = options.tracing === true ? new NodeTracing() : undefined;
    this.links = new RelayLinks(
      resolveConnectionConfig(options, () => this.announcement()),
      options.mode ?? 'failover',
      {
        onFrame: (frame, via) => this.onFrame(frame, via),
        onLost: (_err, via) => this.work.cancelAll(via),
      },
      WsRelayStrategy.name,
    );
    this.links.events.on(WsRelayStatus.CONNECTED, () => this._status$.next(WsRelayStatus.CONNECTED));
    this.links.events.on(WsRelayStatus.DISCONNECTED, () => this._status$.next(WsRelayStatus.DISCONNECTED));
    this.links.events.on(WsRelayStatus.RECONNECTING, () => this._status$.next(WsRelayStatus.RECONNECTING));
    this.links.events.on('error', () => undefined);
    this.initializeSerializer(options);
    this.initializeDeserializer(options);
    this.identitySerializer = this.serializer instanceof IdentitySerializer;
    this.metrics = options.metrics === undefined ? undefined : new StrategyMetrics(options.metrics, this.links, this.work);
  }

  /**
   * Callers and the relay carry normalized patterns, which are the handler
   * map's keys: look them up directly. Nest's lookup first runs JSON.parse on
   * every pattern (a plain string throws), which cost a tenth of the
   * provider's CPU per request and per event; it stays as the fallback.
   */
  override getHandlerByPattern(pattern: string): MessageHandler | null {
    return this.messageHandlers.get(pattern) ?? super.getHandlerByPattern(pattern);
  }

  override setOnProcessingStartHook(hook: Parameters<Server['setOnProcessingStartHook']>[0]): void {
    this.hooked = true;
    super.setOnProcessingStartHook(hook);
  }

  override setOnProcessingEndHook(hook: Parameters<Server['setOnProcessingEndHook']>[0]): void {
    this.hooked = true;
    super.setOnProcessingEndHook(hook);
  }

  /** This provider's node id as the relay sees it. */
  get nodeId(): string {
    return this.links.nodeId;
  }

  /** Each relay URL's state: `connecting`, `connected`, `error` or `not_connected`. */
  relayStatus(): Record<string, WsRelayUrlStatus> {
    return this.links.relayStatus();
  }

  listen(callback: (err?: unknown) => void): void {
    const problems = [...this.messageHandlers.entries()]
      .filter(([, h]) => h.isEventHandler)
      .map(([p]) => subscriptionProblem(p))
      .filter(p => p !== null);
    if (problems.length > 0) {
      callback(new TypeError(`WsRelayStrategy: ${problems.join('; ')}`));
      return;
    }
    this.eventMatchers = [...this.messageHandlers.entries()].filter(([, h]) => h.isEventHandler).map(([p]) => [p, compileSubject(p)]);
    // A subclass or instrumentation that replaced runWithProcessingHooks gets it called, hooks or not.

    if (this.runWithProcessingHooks !== Server.prototype['runWithProcessingHooks']) this.hooked = true;
    StrategyMetrics.afterLoading(this.metrics, () => this.links.ready()).then(
      () => callback(),
      async err => {
        await this.links.close();
        callback(err);
      },
    );
  }

  /** Drains (see the class), then closes every relay connection. */
  async close(): Promise<void> {
    // Also between a relay's GOAWAY and the next session: what is in flight on the old one still finishes.
    if (this.drainTimeoutMs > 0 && (this.links.isConnected || !this.work.idle)) {
      const deadline = Date.now() + this.drainTimeoutMs;
      await this.links.drain(this.drainTimeoutMs);
      await this.work.whenIdle(deadline - Date.now());
    }
    this.work.cancelAll();
    await this.links.close();
    this._status$.next(WsRelayStatus.DISCONNECTED);
  }

  /** The underlying `ws` WebSocket of the current session. */
  unwrap<T = WebSocket>(): T {
    const socket = this.links.webSocket;
    if (socket === undefined) {
      throw new Error('Not initialized. Please call the "listen"/"startAllMicroservices" method before accessing the server.');
    }
    return socket as T;
  }

  on<K extends keyof WsRelayEvents>(event: K, callback: WsRelayEvents[K]): void {
    // WsRelayEvents are the links' events, each with its listener's signature.
    this.links.events.on(event, callback as never);
  }

  private announcement() {
    const patterns: string[] = [];
    const events: string[] = [];
    for (const [pattern, handler] of this.messageHandlers) {
      (handler.isEventHandler ? events : patterns).push(pattern);
    }
    return {
      service: this.options.service ?? null,
      patterns,
      events,
      queue: this.options.queue ?? null,
    };
  }

  private onFrame(frame: Frame, via: WebSocket): void {
    switch (frame.type) {
      case FrameType.Request:
        void this.handleRequestFrame(frame, via).catch((err: unknown) => {
          this.logger.error(err);
        });
        return;
      case FrameType.Cancel:
        this.work.cancel(frame.id, via);
        return;
      case FrameType.Credit:
        this.work.credit(frame.id, via, frame.credit);
        return;
      case FrameType.Event:
        void this.handleEventFrame(frame, via);
        return;
      case FrameType.Error:
        this.logger.warn(`Relay reported ${frame.code}: ${frame.message}`);
        return;
    }
  }

  private async handleRequestFrame(frame: RequestFrame, via: WebSocket): Promise<void> {
    const { id, pattern } = frame;
    const entry = this.work.start(id, via, pattern, frame.timeoutMs);
    const sink: ResponseSink = {
      prepare: (packet, keep) => prepareResponse(this.identitySerializer ? undefined : this.serializer, id, packet, keep, this.logger),
      write: response => this.write(id, response, via),
      backedUp: () => via.bufferedAmount > BACKED_UP_BYTES,
    };
    // Made first: a CREDIT or CANCEL may come while the handler runs.
    const stream = new ResponseStream(sink, pattern, frame.window, this.maxStreamBufferedBytes);
    entry.subscription = stream;
    const respond = (packet: WritePacket) => void (entry.cancelled || sink.write(sink.prepare(packet, false)));
    const handler = this.getHandlerByPattern(pattern);
    if (!handler) {
      respond({ err: NO_MESSAGE_HANDLER, status: 'error', isDisposed: true });
      return;
    }
    let context: WsRelayContext;
    let packet: IncomingRequest;
    try {
      const ext = decodeExt(frame.ext);
      const incoming = deserializeIncoming(this.deserializer, {
        id: String(id),
        pattern,
        data: decodePayload(frame.payload),
        metadata: ext.metadata,
      });
      // Nest's own deserializer answers synchronously: no await (and microtask) for it.
      packet = (incoming instanceof Promise ? await incoming : incoming) as IncomingRequest;
      // The metadata as the deserializer left it, as Nest's TCP server takes it.
      context = new WsRelayContext([pattern, id, frame.peer, ext.headers ?? {}, entry.deadline, frame.claims, packet.metadata, 1], entry);
    } catch (err) {
      this.logger.warn(`Refused request ${id} for "${pattern}": ${(err as Error).message}`);
      respond({ err: { status: 'error', message: BAD_REQUEST_MESSAGE }, isDisposed: true });
      return;
    }
    let started = false;
    const traced = this.traceRequest(entry, pattern, context);
    try {
      await this.traced(traced, () =>
        this.processed(context, async runEndHook => {
          const result: unknown = await handler(packet.data, context);
          if (entry.cancelled) {
            runEndHook?.();
            return;
          }
          const results = this.transformToObservable(result);
          started = true;
          // The end hook runs when the stream is over (its last RESPONSE sent, or stopped), generators pulled included.
          stream.start(results, runEndHook);
        }),
      );
    } catch (err) {
      // Nest's handler proxy turns handler errors into error streams; this is
      // what escapes it (a rejecting processing hook or exception filter).
      this.logger.error(err);
      if (!started) respond({ err: INTERNAL_ERROR, isDisposed: true });
    }
  }

  private write(id: number, response: PreparedResponse, via: WebSocket): void {
    // The last RESPONSE settles the request (before it goes out: the caller may answer at once).
    if ((response.flags & (ResponseFlag.DONE | ResponseFlag.ERROR)) !== 0) this.work.settle(id, via, response.flags);
    this.links.send({ type: FrameType.Response, id, flags: response.flags, payload: response.payload }, via);
  }

  /**
   * Runs every handler the subject matches, awaiting each one's result (and
   * stream), so that a failure is seen: answered with HANDLED when the relay
   * asked for handler acks, logged otherwise.
   */
  private async handleEventFrame(frame: EventFrame, via: WebSocket): Promise<void> {
    const wantsAck = ((frame.flags ?? 0) & EventFlag.ACK_HANDLERS) !== 0;
    const patterns = this.matchingEventPatterns(frame.pattern);
    if (patterns.length === 0) {
      if (wantsAck) this.handled(frame.id, undefined, via);
      return;
    }
    let ext: ReturnType<typeof decodeExt>;
    let packet: ReadPacket;
    // Counted from here: a drain must wait for an event still being deserialized too.
    this.work.eventStarted();
    try {
      ext = decodeExt(frame.ext);
      // The deserializer runs for events as for requests (Nest's transports run it on every incoming packet).
      const incoming = deserializeIncoming(this.deserializer, {
        pattern: frame.pattern,
        data: decodePayload(frame.payload),
        metadata: ext.metadata,
      });
      packet = incoming instanceof Promise ? await incoming : incoming;
    } catch (err) {
      this.work.eventDone(true);
      this.logger.warn(`Dropped event "${frame.pattern}": ${(err as Error).message}`);
      if (wantsAck) this.handled(frame.id, { status: 'error', message: BAD_REQUEST_MESSAGE }, via);
      return;
    }
    const context = new WsRelayContext([
      frame.pattern,
      frame.id,
      frame.peer,
      ext.headers ?? {},
      undefined,
      frame.claims,
      packet.metadata,
      frame.attempt ?? 1,
    ]);
    let failure: unknown;
    const traced = this.tracing?.incoming('emit', frame.pattern, ext.headers, frame.peer);
    try {
      failure = await this.traced(traced, () => this.runEventHandlers(patterns, packet, context));
    } catch (err) {
      failure = err;
    } finally {
      this.work.eventDone(failure !== undefined);
      traced?.endWith(failure);
    }
    if (failure !== undefined && !wantsAck) {
      this.logger.error(`Event handler for "${frame.pattern}" failed: ${describeError(failure)}`);
    }
    if (wantsAck) this.handled(frame.id, failure, via);
  }

  /** Runs the handler of each of `patterns`; resolves with the first failure (undefined: none). */
  private async runEventHandlers(patterns: string[], packet: ReadPacket, context: WsRelayContext): Promise<unknown> {
    if (patterns.length === 1) return void (await this.handleEvent(patterns[0], packet, context));
    let failure: unknown;
    await Promise.all(patterns.map(p => this.handleEvent(p, packet, context).catch((err: unknown) => void (failure ??= err))));
    return failure;
  }

  /** A traced request's span, ended when the request settles (with the code that stopped it, or as failed). */
  private traceRequest(entry: InFlight, pattern: string, context: WsRelayContext): TracedWork | undefined {
    const traced = this.tracing?.incoming('call', pattern, context.getHeaders(), context.getCallerId());
    if (traced !== undefined) entry.ended = failed => traced.end(entry.stopCode ?? (failed ? 'handler error' : undefined));
    return traced;
  }

  /** `fn` with the span of `traced` active (as is, untraced). */
  private traced<T>(traced: TracedWork | undefined, fn: () => T): T {
    return traced === undefined ? fn() : this.tracing!.run(traced, fn);
  }

  /** Nest's handleEvent, awaiting the handler's stream (as Nest's Kafka server does), so a failure is not lost. */
  override async handleEvent(pattern: string, packet: ReadPacket, context: WsRelayContext): Promise<void> {
    const handler = this.getHandlerByPattern(pattern);
    if (!handler) {
      this.logger.error(NO_EVENT_HANDLER`${pattern}`);
      return;
    }
    await this.processed(context, async runEndHook => {
      const resultOrStream: unknown = await handler(packet.data, context);
      if (isObservable(resultOrStream)) {
        const stream = runEndHook === undefined ? resultOrStream : resultOrStream.pipe(finalize(runEndHook));
        await lastValueFrom(stream, { defaultValue: undefined });
      } else {
        runEndHook?.();
      }
    });
  }

  /**
   * Nest's runWithProcessingHooks, resolved when `fn` is done: what the
   * processing-start hook returns is not relied on (a hook may return nothing
   * and still run `fn` later). A failure of `fn` ends the processing (the end
   * hook runs) and rejects what this returns; it is not thrown back into the
   * hook, which may not be awaiting `fn` (its rejection would go unhandled).
   * Without any hook there is nothing to run around `fn`, and no end hook to
   * give it (`runEndHook` undefined).
   */
  private processed(context: WsRelayContext, fn: (runEndHook: (() => void) | undefined) => Promise<void>): Promise<void> {
    if (!this.hooked) return fn(undefined);
    return new Promise<void>((resolve, reject) => {
      const ran: unknown = this.runWithProcessingHooks(context, async runEndHook => {
        try {
          await fn(runEndHook);
          resolve();
        } catch (err) {
          runEndHook();
          // What was thrown, as it is (Nest's handlers may throw non-Error values).
          // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
          reject(err);
        }
      });
      // A hook that fails before running `fn` fails the call.
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
      Promise.resolve(ran).catch((err: unknown) => reject(err));
    });
  }

  private handled(id: number, failure: unknown, via: WebSocket): void {
    this.links.send({ type: FrameType.Handled, id, error: handlerError(failure) }, via);
  }

  /** The registered event patterns a published subject matches, cached per subject. */
  private matchingEventPatterns(subject: string): string[] {
    let hit = this.subjectCache.get(subject);
    if (hit === undefined) {
      hit = this.eventMatchers.filter(([, match]) => match(subject)).map(([p]) => p);
      if (this.subjectCache.size >= MAX_CACHED_SUBJECTS) this.subjectCache.clear();
      this.subjectCache.set(subject, hit);
    }
    return hit;
  }
}
