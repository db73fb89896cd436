import {
  type CustomTransportStrategy,
  type IncomingRequest,
  type MessageHandler,
  Server,
  type WritePacket,
} from '@nestjs/microservices';
import {
  compileSubject,
  decodePayload,
  encodePayload,
  encodePayloadTransient,
  type EventFrame,
  type Frame,
  FrameType,
  type RequestFrame,
  ResponseFlag,
  subscriptionProblem,
  type SubjectMatcher,
} from '@wsrelay/protocol';
import { IdentitySerializer } from '@nestjs/microservices/serializers/identity.serializer.js';
import { finalize, type Subscription } from 'rxjs';
import type WebSocket from 'ws';
import { resolveConnectionConfig } from '../connection/connection-config.js';
import { decodeExt } from '../connection/ext.js';
import { RelayConnection } from '../connection/relay-connection.js';
import { NO_MESSAGE_HANDLER } from '../constants.js';
import { WsRelayContext } from '../ctx-host/ws-relay.context.js';
import { type WsRelayEvents, WsRelayStatus } from '../enums.js';
import type { WsRelayStrategyOptions } from '../interfaces/ws-relay-options.interface.js';
import { validateStrategyOptions } from '../interfaces/ws-relay-options.validation.js';

/** A request being handled; `subscription` is set once the handler's stream runs. */
interface InFlight {
  cancelled: boolean;
  subscription?: Subscription;
}

const MAX_CACHED_SUBJECTS = 10_000;
const BAD_REQUEST_MESSAGE = 'The request could not be decoded';

/**
 * A Nest transport strategy whose `@MessagePattern` and `@EventPattern`
 * handlers are reached through a wsrelay relay:
 * `app.connectMicroservice({ strategy: new WsRelayStrategy({ urls: [...] }) })`.
 */
export class WsRelayStrategy
  extends Server<WsRelayEvents, WsRelayStatus>
  implements CustomTransportStrategy
{
  protected readonly connection: RelayConnection;
  private readonly inFlight = new Map<number, InFlight>();
  private eventMatchers: Array<[pattern: string, match: SubjectMatcher]> = [];
  private readonly subjectCache = new Map<string, string[]>();
  /** Nest's pass-through serializer is in use: responses need no serializing copy. */
  private readonly identitySerializer: boolean;

  constructor(protected readonly options: WsRelayStrategyOptions) {
    super();
    validateStrategyOptions(options);
    this.connection = new RelayConnection(
      resolveConnectionConfig(options, () => this.announcement()),
      {
        onFrame: frame => this.onFrame(frame),
        onOpen: () => this._status$.next(WsRelayStatus.CONNECTED),
        onLost: () => this.cancelAll(),
      },
      WsRelayStrategy.name,
    );
    this.connection.events.on(WsRelayStatus.DISCONNECTED, () => this._status$.next(WsRelayStatus.DISCONNECTED));
    this.connection.events.on(WsRelayStatus.RECONNECTING, () => this._status$.next(WsRelayStatus.RECONNECTING));
    this.connection.events.on('error', () => undefined);
    this.initializeSerializer(options);
    this.initializeDeserializer(options);
    this.identitySerializer = this.serializer instanceof IdentitySerializer;
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

  /** This provider's node id as the relay sees it. */
  get nodeId(): string {
    return this.connection.nodeId;
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
    this.eventMatchers = [...this.messageHandlers.entries()]
      .filter(([, h]) => h.isEventHandler)
      .map(([p]) => [p, compileSubject(p)]);
    this.connection.ready().then(
      () => callback(),
      async err => {
        await this.connection.close();
        callback(err);
      },
    );
  }

  async close(): Promise<void> {
    this.cancelAll();
    await this.connection.close();
    this._status$.next(WsRelayStatus.DISCONNECTED);
  }

  /** The underlying `ws` WebSocket of the current session. */
  unwrap<T = WebSocket>(): T {
    const socket = this.connection.webSocket;
    if (socket === undefined) {
      throw new Error('Not initialized. Please call the "listen"/"startAllMicroservices" method before accessing the server.');
    }
    return socket as T;
  }

  on<K extends keyof WsRelayEvents>(event: K, callback: WsRelayEvents[K]): void {
    this.connection.events.on(event, callback as (...args: unknown[]) => void);
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

  private onFrame(frame: Frame): void {
    switch (frame.type) {
      case FrameType.Request:
        void this.handleRequestFrame(frame).catch(err => this.logger.error(err));
        return;
      case FrameType.Cancel:
        this.cancel(frame.id);
        return;
      case FrameType.Event:
        this.handleEventFrame(frame);
        return;
      case FrameType.Error:
        this.logger.warn(`Relay reported ${frame.code}: ${frame.message}`);
        return;
    }
  }

  private async handleRequestFrame(frame: RequestFrame): Promise<void> {
    const { id, pattern } = frame;
    const entry: InFlight = { cancelled: false };
    this.inFlight.set(id, entry);
    const respond = (packet: WritePacket) => {
      if (entry.cancelled) return;
      this.respond(id, packet);
    };
    const handler = this.getHandlerByPattern(pattern);
    if (!handler) {
      respond({ err: NO_MESSAGE_HANDLER, status: 'error', isDisposed: true });
      return;
    }
    let context: WsRelayContext;
    let packet: IncomingRequest;
    try {
      const ext = decodeExt(frame.ext);
      context = new WsRelayContext([
        pattern,
        id,
        frame.peer,
        ext.headers ?? {},
        Date.now() + frame.timeoutMs,
        frame.claims,
        ext.metadata,
      ]);
      const incoming = this.deserializer.deserialize({
        id: String(id),
        pattern,
        data: decodePayload(frame.payload),
        metadata: ext.metadata,
      });
      // Nest's own deserializer answers synchronously: no await (and microtask) for it.
      packet = (incoming instanceof Promise ? await incoming : incoming) as IncomingRequest;
    } catch (err) {
      this.logger.warn(`Refused request ${id} for "${pattern}": ${(err as Error).message}`);
      respond({ err: { status: 'error', message: BAD_REQUEST_MESSAGE }, isDisposed: true });
      return;
    }
    try {
      await this.runWithProcessingHooks(context, async runEndHook => {
        const result = await handler(packet.data, context);
        if (entry.cancelled) {
          runEndHook();
          return;
        }
        entry.subscription = this.send(this.transformToObservable(result).pipe(finalize(runEndHook)), respond);
      });
    } catch (err) {
      // Nest's handler proxy turns handler errors into error streams; this is
      // what escapes it (a rejecting processing hook or exception filter).
      this.logger.error(err);
      if (entry.subscription === undefined) {
        respond({ err: { status: 'error', message: 'Internal server error' }, isDisposed: true });
      }
    }
  }

  private respond(id: number, packet: WritePacket): void {
    const out = this.identitySerializer ? packet : (this.serializer.serialize({ ...packet, id: String(id) }) as WritePacket);
    const isError = out.err !== undefined && out.err !== null;
    if (isError || out.isDisposed) this.inFlight.delete(id);
    let payload: Uint8Array | null = null;
    try {
      // Transient: the RESPONSE is encoded right below.
      if (isError) payload = encodePayloadTransient(out.err);
      else if (out.response !== undefined) payload = encodePayloadTransient(out.response);
    } catch (err) {
      this.logger.error(`Response to request ${id} cannot be encoded as MessagePack: ${(err as Error).message}`);
      payload = encodePayload({ status: 'error', message: 'Internal server error' });
      this.inFlight.delete(id);
      this.connection.send({ type: FrameType.Response, id, flags: ResponseFlag.ERROR | ResponseFlag.DONE, payload });
      return;
    }
    const flags = isError ? ResponseFlag.ERROR | ResponseFlag.DONE : out.isDisposed ? ResponseFlag.DONE : 0;
    this.connection.send({ type: FrameType.Response, id, flags, payload });
  }

  private handleEventFrame(frame: EventFrame): void {
    const patterns = this.matchingEventPatterns(frame.pattern);
    if (patterns.length === 0) return;
    let ext: ReturnType<typeof decodeExt>;
    let data: unknown;
    try {
      ext = decodeExt(frame.ext);
      data = decodePayload(frame.payload);
    } catch (err) {
      this.logger.warn(`Dropped event "${frame.pattern}": ${(err as Error).message}`);
      return;
    }
    const context = new WsRelayContext([
      frame.pattern,
      frame.id,
      frame.peer,
      ext.headers ?? {},
      undefined,
      frame.claims,
      ext.metadata,
    ]);
    for (const pattern of patterns) {
      this.handleEvent(pattern, { pattern: frame.pattern, data, metadata: ext.metadata }, context).catch(err =>
        this.logger.error(err),
      );
    }
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

  private cancel(id: number): void {
    const entry = this.inFlight.get(id);
    if (entry === undefined) return;
    this.inFlight.delete(id);
    entry.cancelled = true;
    entry.subscription?.unsubscribe();
  }

  /** The relay is gone, and with it every caller: stop all running handlers. */
  private cancelAll(): void {
    for (const id of [...this.inFlight.keys()]) this.cancel(id);
  }
}
