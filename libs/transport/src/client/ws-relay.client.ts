import { Logger } from '@nestjs/common';
import { ClientProxy, type MsPattern, type ReadPacket, type WritePacket } from '@nestjs/microservices';
import { InvalidMessageException } from '@nestjs/microservices/errors/invalid-message.exception.js';
import { Observable, Subject, throwError } from 'rxjs';
import {
  Capability,
  decodePayload,
  encodePayloadTransient,
  errorFromFrame,
  EventFlag,
  type Frame,
  FrameType,
  type NodeInfo,
  RelayError,
  RelayErrorCode,
  RelayErrorMessages,
  ResponseFlag,
} from '@wsrelay/protocol';
import type WebSocket from 'ws';
import { resolveConnectionConfig } from '../connection/connection-config.js';
import { encodeExt } from '../connection/ext.js';
import { noop, overLimits, unavailable, unencodable } from './call-errors.js';
import { headerProblem } from './header-limits.js';
import type { Pending } from './pending-call.js';
import { ClientMetrics } from '../metrics/client-metrics.js';
import type { WsRelayUrlStatus } from '../connection/url-status.js';
import { RelayLinks } from '../connection/relay-links.js';
import { DEFAULT_CALL_TIMEOUT_MS, DEFAULT_MAX_BUFFERED_BYTES, DEFAULT_MAX_IN_FLIGHT, DEFAULT_STREAM_WINDOW } from '../constants.js';
import { speaks } from '../connection/handshake.js';
import { NodeTracing } from '../tracing/node-tracing.js';
import { type WsRelayEvents, WsRelayStatus } from '../enums.js';
import type { WsRelayClientOptions } from '../interfaces/ws-relay-options.interface.js';
import { validateClientOptions } from '../interfaces/ws-relay-options.validation.js';
import type { WsRelayEventAckMode } from '../record-builders/ws-relay.record-builder.js';
import { serializeOutgoing, type WsRelayOutgoing } from '../serializers/outgoing-packet.js';
import { WsRelayRecordSerializer } from '../serializers/ws-relay-record.serializer.js';

/** Result of an `emit()`: how many nodes the relay delivered the event to. */
export interface WsRelayEventAck {
  recipients: number;
}

const MAX_ID = 0xffff_ffff;
/** How long after a deadline the client waits for the relay's own TIMEOUT before giving up itself. */
const DEADLINE_GRACE_MS = 1000;
const SWEEP_INTERVAL_MS = 500;

/**
 * A Nest `ClientProxy` that sends requests and events through a wsrelay
 * relay. Register it with `ClientsModule.register([{ name, customClass: WsRelayClient, options }])`.
 */
// Status stays `string` (WsRelayStatus values) so the class fits ClientsModule's `customClass: Type<ClientProxy>`.
export class WsRelayClient extends ClientProxy<WsRelayEvents> {
  protected readonly logger = new Logger(WsRelayClient.name);
  protected readonly links: RelayLinks;
  private readonly timeoutMs: number;
  private readonly eventAck: WsRelayEventAckMode;
  private readonly maxInFlight: number;
  private readonly maxBufferedBytes: number;
  /** A call's stream window (0: no flow control), and how many taken values earn a grant of credit. */
  private readonly streamWindow: number;
  private readonly creditBatch: number;
  private readonly pending = new Map<number, Pending>();
  private lastId = 0;
  private sweeper: NodeJS.Timeout | undefined;
  private readonly metrics: ClientMetrics | undefined;
  private readonly tracing: NodeTracing | undefined;

  constructor(protected readonly options: WsRelayClientOptions) {
    super();
    validateClientOptions(options);
    this.timeoutMs = options.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    this.eventAck = options.eventAck ?? 'relay';
    this.maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    this.maxBufferedBytes = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
    this.streamWindow = options.streamWindow ?? DEFAULT_STREAM_WINDOW;
    this.creditBatch = Math.max(1, Math.floor(this.streamWindow / 2));
    this.links = new RelayLinks(
      resolveConnectionConfig(options, () => ({ service: null, patterns: [], events: [], queue: null })),
      options.mode ?? 'failover',
      {
        onFrame: frame => this.onFrame(frame),
        onLost: (err, via) => this.failAll(err, via),
      },
      WsRelayClient.name,
      this.maxBufferedBytes,
    );
    this.links.events.on(WsRelayStatus.CONNECTED, () => this._status$.next(WsRelayStatus.CONNECTED));
    this.links.events.on(WsRelayStatus.DISCONNECTED, () => this._status$.next(WsRelayStatus.DISCONNECTED));
    this.links.events.on(WsRelayStatus.RECONNECTING, () => this._status$.next(WsRelayStatus.RECONNECTING));
    this.links.events.on('error', () => undefined);
    this.initializeSerializer({ serializer: options.serializer ?? new WsRelayRecordSerializer() });
    this.initializeDeserializer(options);
    this.metrics = options.metrics === undefined ? undefined : new ClientMetrics(options.metrics, this.links);
    this.tracing = options.tracing === true ? new NodeTracing() : undefined;
  }

  /** This client's node id as the relay sees it. */
  get nodeId(): string {
    return this.links.nodeId;
  }

  /** Each relay URL's state: `connecting`, `connected`, `error` or `not_connected` (`on('relay_status')` reports changes). */
  relayStatus(): Record<string, WsRelayUrlStatus> {
    return this.links.relayStatus();
  }

  /** Resolves once connected to a relay; rejects with RELAY_UNAVAILABLE after `connectTimeoutMs`. */
  connect(): Promise<void> {
    // The backstop for answers that never come (a relay that cannot read a
    // frame answers with an uncorrelated error); the relay's TIMEOUT normally wins.
    this.sweeper ??= setInterval(() => this.sweep(), SWEEP_INTERVAL_MS).unref();
    return ClientMetrics.afterLoading(this.metrics, () => this.links.ready());
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    this.failAll(new RelayError(RelayErrorCode.CLOSED, RelayErrorMessages.closed()));
    await this.links.close();
    this._status$.next(WsRelayStatus.DISCONNECTED);
  }

  /** The underlying `ws` WebSocket of the current session. */
  unwrap<T = WebSocket>(): T {
    const socket = this.links.webSocket;
    if (socket === undefined) {
      throw new Error('Not initialized. Please call the "connect" method first.');
    }
    return socket as T;
  }

  override on<K extends keyof WsRelayEvents>(event: K, callback: WsRelayEvents[K]): void {
    // WsRelayEvents are the links' events, each with its listener's signature.
    this.links.events.on(event, callback as never);
  }

  /**
   * Nest's `send()`, without its per-call `defer(connect)` + `mergeMap` when
   * a session is already up: the same cold Observable, errors and teardown.
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- ClientProxy's own signature
  override send<TResult = any, TInput = any>(pattern: any, data: TInput): Observable<TResult> {
    if (pattern == null || data == null) return throwError(() => new InvalidMessageException());
    const call = new Observable<TResult>(observer => {
      const callback = this.createObserver(observer);
      if (this.links.isConnected) return this.publish(this.createPacket(pattern, data), callback);
      let teardown: (() => void) | undefined;
      let unsubscribed = false;
      this.connect().then(
        () => {
          if (!unsubscribed) teardown = this.publish(this.createPacket(pattern, data), callback);
        },
        err => observer.error(err),
      );
      return () => {
        unsubscribed = true;
        teardown?.();
      };
    });
    return this.metrics === undefined ? call : this.metrics.call(call);
  }

  /**
   * Nest's `emit()`, without its per-call `defer` + `mergeMap` +
   * `connectable`: the event is dispatched at once, subscribed or not, and
   * the returned Observable gives the relay's ACK (as Nest's hot `emit()` does).
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- ClientProxy's own signature
  override emit<TResult = any, TInput = any>(pattern: any, data: TInput): Observable<TResult> {
    if (pattern == null || data == null) return throwError(() => new InvalidMessageException());
    const result = new Subject<TResult>();
    const dispatched = this.links.isConnected
      ? this.dispatchEvent<TResult>(this.createPacket(pattern, data))
      : this.connect().then(() => this.dispatchEvent<TResult>(this.createPacket(pattern, data)));
    if (this.metrics !== undefined) this.metrics.event(dispatched);
    dispatched.then(
      ack => {
        result.next(ack);
        result.complete();
      },
      err => result.error(err),
    );
    return result.asObservable();
  }

  /**
   * Resolves once at least one provider of `pattern` is online at the relay
   * (at once when one already is); rejects with TIMEOUT after `timeoutMs`.
   */
  async waitFor(pattern: unknown, timeoutMs = this.timeoutMs): Promise<void> {
    await this.connect();
    const normalized = this.normalizePattern(pattern as string);
    const problem = headerProblem(normalized);
    if (problem !== null) throw problem;
    const full = this.overLimits();
    if (full !== null) throw full;
    await this.correlate(normalized, timeoutMs, id => ({ type: FrameType.Wait, id, pattern: normalized, timeoutMs }));
  }

  /** The nodes the relay knows, with their service labels and patterns. */
  async discover(): Promise<NodeInfo[]> {
    await this.connect();
    const full = this.overLimits();
    if (full !== null) throw full;
    const frame = await this.correlate('(discover)', this.timeoutMs, id => ({ type: FrameType.Discover, id }));
    return frame.type === FrameType.Nodes ? frame.nodes : [];
  }

  protected publish(packet: ReadPacket, callback: (packet: WritePacket) => void): () => void {
    // First: a client over its limits does not serialize and encode what it then refuses.
    const full = this.overLimits();
    if (full !== null) {
      callback({ err: full, isDisposed: true });
      return noop;
    }
    let out: WsRelayOutgoing;
    try {
      out = serializeOutgoing(this.serializer, packet);
    } catch (err) {
      // As Nest's TCP client: a serializer that throws fails the call.
      callback({ err, isDisposed: true });
      return noop;
    }
    const { options } = out;
    const pattern = this.normalizePattern(packet.pattern as MsPattern);
    const problem = headerProblem(pattern, options.nodeId);
    if (problem !== null) {
      callback({ err: problem, isDisposed: true });
      return noop;
    }
    let payload: Uint8Array;
    let ext: Uint8Array | null;
    // Traced: the call's span, and its context in the headers.
    const traced = this.tracing?.outgoing('call', pattern, options.headers);
    if (traced !== undefined) callback = traced.work.wrap(callback);
    try {
      ext = encodeExt(traced?.headers ?? options.headers, out.metadata);
      // Transient: the REQUEST below is encoded (and the payload copied) before anything else encodes one.
      payload = encodePayloadTransient(out.data);
    } catch (err) {
      callback({ err: unencodable(err), isDisposed: true });
      return noop;
    }
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const peer = options.nodeId ?? null;
    // A window only on a session whose relay agreed on flow control (another would read the frame the slow way, and ignore it).
    const windowFor = (via: WebSocket) => (this.streamWindow > 0 && speaks(via, Capability.CREDIT) ? this.streamWindow : undefined);
    const entry = this.track(
      pattern,
      timeoutMs,
      frame => this.onResponse(frame.id, frame, callback),
      err => callback({ err, isDisposed: true }),
      (id, via) => ({ type: FrameType.Request, id, pattern, payload, timeoutMs, peer, ext, claims: null, window: windowFor(via) }),
    );
    if (entry === undefined) return noop;
    const { id } = entry;
    return () => {
      traced?.work.end();
      // Still pending means the caller left early: tell the provider.
      if (this.pending.delete(id)) this.links.send({ type: FrameType.Cancel, id }, entry.via);
    };
  }

  protected dispatchEvent<T = WsRelayEventAck>(packet: ReadPacket): Promise<T> {
    const full = this.overLimits();
    if (full !== null) return Promise.reject(full);
    let out: WsRelayOutgoing;
    try {
      out = serializeOutgoing(this.serializer, packet);
    } catch (err) {
      // What the serializer threw, as it is (as send() reports it).
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
      return Promise.reject(err);
    }
    const { options } = out;
    const pattern = this.normalizePattern(packet.pattern as MsPattern);
    const problem = headerProblem(pattern, options.nodeId);
    if (problem !== null) return Promise.reject(problem);
    let payload: Uint8Array;
    let ext: Uint8Array | null;
    const traced = this.tracing?.outgoing('emit', pattern, options.headers);
    try {
      ext = encodeExt(traced?.headers ?? options.headers, out.metadata);
      // Transient: correlate() encodes the EVENT at once.
      payload = encodePayloadTransient(out.data);
    } catch (err) {
      traced?.work.end('BAD_FRAME');
      return Promise.reject(unencodable(err));
    }
    const handlers = (options.ack ?? this.eventAck) === 'handlers';
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const acked = this.correlate(pattern, timeoutMs, id => ({
      type: FrameType.Event,
      id,
      pattern,
      payload,
      peer: options.nodeId ?? null,
      ext,
      claims: null,
      flags: handlers ? EventFlag.ACK_HANDLERS : 0, // 0 and an undefined timeoutMs stay off the wire
      timeoutMs: handlers ? timeoutMs : undefined,
    })).then(frame => ({ recipients: frame.type === FrameType.Ack ? frame.recipients : 0 }) as T);
    return traced === undefined ? acked : traced.work.settle(acked);
  }

  /** Sends a frame with a fresh id and resolves with the relay's answer to it (the caller checked overLimits()). */
  private correlate(pattern: string, timeoutMs: number, build: (id: number) => Frame): Promise<Frame> {
    return new Promise<Frame>((resolve, reject) => {
      const settle = (frame: Frame & { id: number }) => {
        this.pending.delete(frame.id);
        if (frame.type === FrameType.Error) reject(errorFromFrame(frame));
        else resolve(frame);
      };
      this.track(pattern, timeoutMs, settle, reject, build);
    });
  }
  /**
   * Books a call under a fresh id and sends the frame `build` makes for it;
   * `onFrame` gets each frame the relay answers with. When no connection can
   * take it, `onError` gets RELAY_UNAVAILABLE and the result is undefined.
   */
  private track(
    pattern: string,
    timeoutMs: number,
    onFrame: (frame: Frame & { id: number }) => void,
    onError: (err: Error) => void,
    build: (id: number, via: WebSocket) => Frame,
  ): (Pending & { id: number }) | undefined {
    const id = this.nextId();
    const giveUpAt = Date.now() + timeoutMs + DEADLINE_GRACE_MS;
    const entry: Pending & { id: number } = { id, onFrame, onError, giveUpAt, pattern, timeoutMs, via: undefined, taken: -1 };
    this.pending.set(id, entry);
    entry.via = this.links.send(via => {
      const frame = build(id, via);
      // A REQUEST with a window is flow-controlled: its values are counted for credit.
      if (frame.type === FrameType.Request && frame.window !== undefined) entry.taken = 0;
      return frame;
    });
    if (entry.via !== undefined) return entry;
    this.pending.delete(id);
    onError(unavailable());
    return undefined;
  }

  /** Why a new call cannot go out now (too many in flight, or the relay not reading), or null. */
  private overLimits(): RelayError | null {
    return overLimits(this.pending.size, this.maxInFlight, this.links.bufferedAmount, this.maxBufferedBytes);
  }

  private onFrame(frame: Frame): void {
    if (!('id' in frame)) return;
    if (frame.id === 0) {
      if (frame.type === FrameType.Error) {
        this.logger.warn(`Relay reported ${frame.code}: ${frame.message}`);
      }
      return;
    }
    this.pending.get(frame.id)?.onFrame(frame);
  }

  private onResponse(id: number, frame: Frame, callback: (packet: WritePacket) => void): void {
    let packet: WritePacket & { id: number };
    if (frame.type === FrameType.Error) {
      packet = { id, err: errorFromFrame(frame), isDisposed: true };
    } else if (frame.type === FrameType.Response) {
      const done = (frame.flags & (ResponseFlag.DONE | ResponseFlag.ERROR)) !== 0;
      let value: unknown;
      try {
        value = frame.payload === null ? undefined : decodePayload(frame.payload);
      } catch (err) {
        // The provider sent bytes that are not MessagePack: end the call with a typed error.
        const message = RelayErrorMessages.badFrame(`response payload is not MessagePack (${(err as Error).message})`);
        this.abandon(id, done, new RelayError(RelayErrorCode.BAD_FRAME, message), callback);
        return;
      }
      packet = frame.flags & ResponseFlag.ERROR ? { id, err: value, isDisposed: true } : { id, response: value, isDisposed: done };
    } else {
      return;
    }
    const done = packet.isDisposed === true;
    if (done) this.pending.delete(id);
    let deserialized: WritePacket | Promise<WritePacket>;
    try {
      deserialized = this.deserializer.deserialize(packet) as WritePacket | Promise<WritePacket>;
    } catch (err) {
      this.abandon(id, done, err, callback);
      return;
    }
    // What takes credit at the provider and the relay: a RESPONSE with a value.
    const counted = !done && frame.type === FrameType.Response && frame.payload !== null;
    if (deserialized instanceof Promise) {
      deserialized.then(
        p => this.handOver(id, counted, p, callback),
        (err: unknown) => this.abandon(id, done, err, callback),
      );
    } else this.handOver(id, counted, deserialized, callback);
  }

  /**
   * A packet to the caller's subscriber. Once it has taken half a window of a
   * flow-controlled stream's values, the provider is granted as many more.
   */
  private handOver(id: number, counted: boolean, packet: WritePacket, callback: (packet: WritePacket) => void): void {
    callback(packet);
    if (!counted) return;
    const p = this.pending.get(id);
    // Not flow-controlled (taken < 0), or left by its subscriber meanwhile.
    if (p === undefined || p.taken < 0 || ++p.taken < this.creditBatch) return;
    this.links.send({ type: FrameType.Credit, id, credit: p.taken }, p.via);
    p.taken = 0;
  }

  /** Ends a call whose answer cannot be read with `err`, and stops a provider still streaming to it. */
  private abandon(id: number, done: boolean, err: unknown, callback: (packet: WritePacket) => void): void {
    const via = this.pending.get(id)?.via;
    // Not pending any more: the caller left, or an earlier item already failed the call.
    if (!this.pending.delete(id) && !done) return;
    if (!done) this.links.send({ type: FrameType.Cancel, id }, via);
    callback({ err, isDisposed: true });
  }

  private sweep(): void {
    const now = Date.now();
    for (const [id, p] of this.pending) {
      if (p.giveUpAt > now) continue;
      this.pending.delete(id);
      this.links.send({ type: FrameType.Cancel, id }, p.via);
      p.onError(new RelayError(RelayErrorCode.TIMEOUT, `${RelayErrorMessages.timeout(p.pattern, p.timeoutMs)} (no answer from the relay)`));
    }
  }

  /** Fails what is pending on session `via` (every call, without one). */
  private failAll(err: Error, via?: WebSocket): void {
    const failed: Pending[] = [];
    for (const [id, p] of this.pending) {
      if (via !== undefined && p.via !== via) continue;
      this.pending.delete(id);
      failed.push(p);
    }
    for (const p of failed) p.onError(err);
  }

  private nextId(): number {
    this.lastId = this.lastId >= MAX_ID ? 1 : this.lastId + 1;
    return this.lastId;
  }
}
