import {
  type AckFrame,
  decodePayload,
  encodePayload,
  errorFromFrame,
  EventFlag,
  type EventFrame,
  FrameType,
  type NodeInfo,
  type NodesFrame,
  RelayError,
  RelayErrorCode,
  ResponseFlag,
} from '@wsrelay/protocol';
import { Connection, type Session } from './connection.js';
import { clientErrors } from './errors.js';
import type { RelayClientEvents, RelayEventListener } from './events.js';
import { type AnswerFrame, Exchange, Exchanges, type ExchangeSpec } from './exchange.js';
import { decodeHeaders, encodeExt } from './ext.js';
import { Listeners } from './listeners.js';
import { type ClientConfig, type RelayClientOptions, resolveOptions, timeoutProblem } from './options.js';
import { normalizePattern, type RelayPattern } from './pattern.js';
import type { ClientState } from './state.js';
import { ResponseStream } from './stream.js';
import type { IncomingFrame } from './wire.js';

/** Options of one call or stream. */
export interface CallOptions {
  /** Its deadline, in ms (the time it waits for a connection included). @default the client's `timeoutMs` */
  timeoutMs?: number;
  /** Aborting it stops the call: the provider is told, and the call rejects with the signal's reason. */
  signal?: AbortSignal;
  /** The node that must answer it. @default any provider of the pattern, in turn */
  nodeId?: string;
  /** Headers the handler reads from its context. */
  headers?: Record<string, string>;
}

/** Options of an event. */
export interface EmitOptions {
  /**
   * `'relay'`: settled once the relay has delivered it; `'handlers'`: once
   * every receiving handler has finished (rejects with HANDLER_FAILED if one threw).
   * @default 'relay'
   */
  ack?: 'relay' | 'handlers';
  /** The only node that gets it (if it subscribes). @default every subscriber */
  nodeId?: string;
  headers?: Record<string, string>;
  /** How long to wait for the acknowledgement, in ms. @default the client's `timeoutMs` */
  timeoutMs?: number;
}

/** The answer to `emit()`: how many nodes the event was delivered to. */
export interface EmitAck {
  recipients: number;
}

/** The error an event handler's failure is reported with, as the Nest transport reports it (an Error's message stays here). */
const INTERNAL_ERROR = { status: 'error', message: 'Internal server error' } as const;

/** Where the answers of a REQUEST go. */
interface RequestSink {
  /** A value; `last` when the stream is complete with it. */
  value(value: unknown, exchange: Exchange, last: boolean): void;
  end(err?: unknown): void;
  /** The request went out with a stream window (the relay agreed on flow control). */
  flowControl?(window: number): void;
}

/**
 * A wsrelay client for browsers, Deno, Bun and Node: calls the relay's
 * providers (`@MessagePattern` handlers), reads their streams, emits events
 * and receives those it subscribes to. It connects on `connect()` or on its
 * first call, and reconnects with backoff until `close()`.
 */
export class RelayClient {
  private readonly config: ClientConfig;
  // A connection listener that throws is reported as the runtime reports an uncaught error; the client carries on.
  private readonly events = new Listeners<RelayClientEvents>(err =>
    setTimeout(() => {
      throw err;
    }),
  );
  private readonly eventListeners = new Set<RelayEventListener>();
  private readonly exchanges = new Exchanges();
  private readonly connection: Connection;

  constructor(options: RelayClientOptions) {
    this.config = resolveOptions(options);
    this.connection = new Connection(
      this.config,
      { onFrame: (frame, session) => this.onFrame(frame, session), onLost: (session, err) => this.exchanges.failAll(err, session) },
      this.events,
    );
  }

  /** `idle`, `connecting`, `connected`, `reconnecting` or `closed`. */
  get state(): ClientState {
    return this.connection.state;
  }

  /** This client's node id, as the relay and the providers see it. */
  get nodeId(): string {
    return this.config.nodeId;
  }

  /**
   * Resolves once connected (at once when already connected). Rejects with a
   * RelayError: RELAY_UNAVAILABLE after `timeoutMs` without a connection, or
   * at once UNAUTHORIZED, FORBIDDEN, PROTOCOL_MISMATCH when the relay refuses.
   */
  async connect(): Promise<void> {
    await this.connection.ready(this.config.timeoutMs);
  }

  /**
   * Calls `pattern` and resolves with its first (or only) value. A handler's
   * error rejects with what the handler sent; the relay's and the client's own
   * failures with a RelayError (TIMEOUT, MICROSERVICE_OFFLINE, RELAY_UNAVAILABLE, ...).
   */
  call<T = unknown>(pattern: RelayPattern, data?: unknown, options: CallOptions = {}): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.request(pattern, data, options, {
        value: (value, exchange, last) => {
          resolve(value as T);
          // The first value is the answer: a stream's others are not wanted.
          if (!last) exchange.abandon();
        },
        // A handler's error is what the handler sent, as it is (as Nest delivers it).
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
        end: err => (err === undefined ? resolve(undefined as T) : reject(err)),
      });
    });
  }

  /**
   * The values of a streaming handler (an Observable or an async generator),
   * read with `for await`. Each iteration makes one call; leaving the loop
   * early (or aborting its signal) stops the handler.
   */
  stream<T = unknown>(pattern: RelayPattern, data?: unknown, options: CallOptions = {}): AsyncIterable<T> {
    return {
      [Symbol.asyncIterator]: () => {
        // eslint-disable-next-line prefer-const -- the stream's callbacks need it before it is made
        let exchange: Exchange | undefined;
        const stream = new ResponseStream<T>({
          grant: credit => exchange?.sendOnSession({ type: FrameType.Credit, id: exchange.id, credit }),
          stop: () => exchange?.abandon(),
        });
        exchange = this.request(pattern, data, options, {
          value: value => stream.push(value as T),
          flowControl: window => stream.flowControl(window),
          // The reader gave up (abort) or the client closed: what waits unread is dropped.
          end: err => stream.close(err, options.signal?.aborted === true || isCode(err, RelayErrorCode.CLOSED)),
        });
        return stream;
      },
    };
  }

  /** Publishes an event; resolves with how many nodes it was delivered to (with `ack: 'handlers'`, once all handled it). */
  async emit(subject: RelayPattern, data?: unknown, options: EmitOptions = {}): Promise<EmitAck> {
    const { pattern, payload, ext, timeoutMs } = this.prepare(subject, data, options);
    const handlers = (options.ack ?? 'relay') === 'handlers';
    const peer = options.nodeId ?? null;
    const ack = (await this.ask({
      pattern,
      timeoutMs,
      cancellable: false,
      build: (id, left) => ({
        type: FrameType.Event,
        id,
        pattern,
        payload,
        peer,
        ext,
        claims: null,
        flags: handlers ? EventFlag.ACK_HANDLERS : 0,
        timeoutMs: handlers ? left : undefined,
      }),
    })) as AckFrame;
    return { recipients: ack.recipients };
  }

  /** Listens to the events of the `subscriptions` option; returns the function that stops it. An async listener is awaited before a handler ack. */
  onEvent(listener: RelayEventListener): () => void {
    this.eventListeners.add(listener);
    return () => void this.eventListeners.delete(listener);
  }

  /** Resolves once a provider of `pattern` is online (at once if one is); rejects with TIMEOUT after `timeoutMs`. */
  async waitFor(pattern: RelayPattern, timeoutMs: number = this.config.timeoutMs): Promise<void> {
    const route = routeOf(pattern);
    checkTimeout(timeoutMs);
    await this.ask({
      pattern: route,
      timeoutMs,
      cancellable: true,
      build: (id, left) => ({ type: FrameType.Wait, id, pattern: route, timeoutMs: left }),
    });
  }

  /** The nodes online at the relay, with the patterns they serve and the events they subscribe to. */
  async discover(): Promise<NodeInfo[]> {
    const frame = (await this.ask({
      pattern: '(discover)',
      timeoutMs: this.config.timeoutMs,
      cancellable: false,
      build: id => ({ type: FrameType.Discover, id }),
    })) as NodesFrame;
    return frame.nodes;
  }

  /** Listens to the client's connection events; returns the function that stops it. */
  on<K extends keyof RelayClientEvents>(event: K, listener: RelayClientEvents[K]): () => void {
    return this.events.add(event, listener);
  }

  /** Closes the connection; what is pending rejects with CLOSED. Resolves once the socket is closed. */
  async close(): Promise<void> {
    this.exchanges.failAll(clientErrors.closed());
    await this.connection.close();
  }

  /** A REQUEST and its answers; undefined (and `sink` ended) when it cannot even be written. */
  private request(pattern: RelayPattern, data: unknown, options: CallOptions, sink: RequestSink): Exchange | undefined {
    let prepared: ReturnType<RelayClient['prepare']>;
    try {
      prepared = this.prepare(pattern, data, options);
    } catch (err) {
      sink.end(err);
      return undefined;
    }
    const { pattern: route, payload, ext, timeoutMs } = prepared;
    const peer = options.nodeId ?? null;
    const streamWindow = this.config.streamWindow;
    return new Exchange(this.connection, this.exchanges, {
      pattern: route,
      timeoutMs,
      signal: options.signal,
      cancellable: true,
      build: (id, left, session) => {
        // A window only where the relay agreed on flow control.
        const window = session.credit && streamWindow > 0 ? streamWindow : undefined;
        if (window !== undefined) sink.flowControl?.(window);
        return { type: FrameType.Request, id, pattern: route, payload, timeoutMs: left, peer, ext, claims: null, window };
      },
      onFrame: (frame, exchange) => onResponse(frame, exchange, sink),
      onEnd: err => sink.end(err),
    });
  }

  /** The pattern, payload, ext and deadline of a call or event; throws what is wrong with them. */
  private prepare(pattern: RelayPattern, data: unknown, options: { headers?: Record<string, string>; timeoutMs?: number }) {
    const route = routeOf(pattern);
    const timeoutMs = options.timeoutMs ?? this.config.timeoutMs;
    checkTimeout(timeoutMs);
    try {
      return { pattern: route, payload: encodePayload(data), ext: encodeExt(options.headers), timeoutMs };
    } catch (err) {
      throw clientErrors.unencodable(err);
    }
  }

  /** A WAIT, DISCOVER or EVENT: resolves with the relay's ACK or NODES, rejects with its ERROR. */
  private ask(spec: Pick<ExchangeSpec, 'pattern' | 'timeoutMs' | 'cancellable' | 'build'>): Promise<AnswerFrame> {
    return new Promise((resolve, reject) => {
      let answer: AnswerFrame | undefined;
      new Exchange(this.connection, this.exchanges, {
        ...spec,
        onFrame: (frame, exchange) => {
          if (frame.type === FrameType.Error) exchange.finish(errorFromFrame(frame));
          else if (frame.type !== FrameType.Response) {
            answer = frame;
            exchange.finish();
          }
        },
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- RelayErrors, or an aborted signal's reason
        onEnd: err => (err === undefined ? resolve(answer!) : reject(err)),
      });
    });
  }

  private onFrame(frame: IncomingFrame, session: Session): void {
    if (frame.type === FrameType.Event) void this.deliver(frame, session);
    else if ('id' in frame) this.exchanges.get(frame.id)?.answer(frame);
  }

  /** An event to the `onEvent` listeners; a copy with handler acks is answered (HANDLED) once they have finished. */
  private async deliver(frame: EventFrame, session: Session): Promise<void> {
    const acked = ((frame.flags ?? 0) & EventFlag.ACK_HANDLERS) !== 0;
    let failure: unknown;
    try {
      const data = decodePayload(frame.payload);
      const meta = { peer: frame.peer, headers: decodeHeaders(frame.ext) };
      const outcomes = [...this.eventListeners].map(listener => new Promise<void>(resolve => resolve(listener(frame.pattern, data, meta))));
      for (const outcome of await Promise.allSettled(outcomes)) {
        if (outcome.status === 'fulfilled') continue;
        failure ??= outcome.reason;
        this.events.emit('error', asError(outcome.reason));
      }
    } catch (err) {
      failure = clientErrors.unreadable(`the data of event ${frame.pattern}`, err);
      this.events.emit('error', failure as Error);
    }
    if (acked) this.connection.send({ type: FrameType.Handled, id: frame.id, error: handlerError(failure) }, session);
  }
}

/** A RESPONSE (or the relay's ERROR) to a REQUEST, for its sink. */
function onResponse(frame: AnswerFrame, exchange: Exchange, sink: RequestSink): void {
  if (frame.type === FrameType.Error) return exchange.finish(errorFromFrame(frame));
  if (frame.type !== FrameType.Response) return;
  const done = (frame.flags & (ResponseFlag.DONE | ResponseFlag.ERROR)) !== 0;
  let value: unknown;
  try {
    value = frame.payload === null ? undefined : decodePayload(frame.payload);
  } catch (err) {
    // Not MessagePack: the call ends, and a provider still streaming is stopped.
    const unreadable = clientErrors.unreadable('a response payload', err);
    return done ? exchange.finish(unreadable) : exchange.abandon(unreadable);
  }
  // A handler's error: what the handler sent, as it is.
  if ((frame.flags & ResponseFlag.ERROR) !== 0) return exchange.finish(value === undefined ? INTERNAL_ERROR : value);
  if (frame.payload !== null) sink.value(value, exchange, done);
  if (done) exchange.finish();
}

function routeOf(pattern: RelayPattern): string {
  const route = normalizePattern(pattern);
  if (typeof route !== 'string' || route.length === 0) throw new TypeError('pattern must be a non-empty string or an object');
  return route;
}

function checkTimeout(timeoutMs: number): void {
  const problem = timeoutProblem('timeoutMs', timeoutMs);
  if (problem !== null) throw new TypeError(problem);
}

function isCode(err: unknown, code: RelayErrorCode): boolean {
  return err instanceof RelayError && err.code === code;
}

/** What a listener threw, as the Error an 'error' listener gets. */
function asError(err: unknown): Error {
  if (err instanceof Error) return err;
  let text: string | undefined;
  try {
    text = JSON.stringify(err);
  } catch {
    // not JSON: said as a string below
  }
  return new Error(`An event listener failed: ${text ?? String(err)}`, { cause: err });
}

/** A listener's failure as HANDLED carries it: an Error as Nest reports it (its message stays here), anything else as it is. */
function handlerError(failure: unknown): Uint8Array | null {
  if (failure === undefined) return null;
  try {
    return encodePayload(failure instanceof Error ? INTERNAL_ERROR : failure);
  } catch {
    return encodePayload(INTERNAL_ERROR);
  }
}
