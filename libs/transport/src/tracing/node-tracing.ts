import { createRequire } from 'node:module';

/**
 * OpenTelemetry tracing for a client or a provider, through
 * `@opentelemetry/api` (an optional peer dependency, loaded only when the
 * `tracing` option is on). Without an SDK registered by the app, the API's
 * spans are no-ops. Its types stay out of this package's declarations (an
 * app without it must compile), so the part used is described here.
 */

type Attributes = Record<string, string | number | boolean>;

export interface SpanLike {
  setAttribute(key: string, value: string | number | boolean): unknown;
  setStatus(status: { code: number; message?: string }): unknown;
  end(): void;
}

interface TracerLike {
  startSpan(name: string, options: { kind: number; attributes?: Attributes }, context?: unknown): SpanLike;
}

interface OtelApi {
  trace: { getTracer(name: string): TracerLike; setSpan(context: unknown, span: SpanLike): unknown };
  context: { active(): unknown; with<T>(context: unknown, fn: () => T): T };
  propagation: {
    inject(context: unknown, carrier: Record<string, string>): void;
    extract(context: unknown, carrier: Record<string, string>): unknown;
  };
  ROOT_CONTEXT: unknown;
}

/** OpenTelemetry's SpanKind and SpanStatusCode values (stable parts of its API). */
const KIND = { SERVER: 1, CLIENT: 2, PRODUCER: 3, CONSUMER: 4 } as const;
const STATUS_ERROR = 2;

/** Loads `@opentelemetry/api`; throws, saying what to install, when it is missing. */
export function loadOpenTelemetry(): OtelApi {
  try {
    return createRequire(import.meta.url)('@opentelemetry/api') as OtelApi;
  } catch (err) {
    throw new Error(
      'The "tracing" option needs the "@opentelemetry/api" package, which is not installed: run "npm install @opentelemetry/api"',
      {
        cause: err,
      },
    );
  }
}

/** A span that ends once, with an error status when it failed. */
export class TracedWork {
  private ended = false;

  constructor(
    readonly span: SpanLike,
    /** The context to run the work in (the span active), for a provider's handler. */
    readonly context: unknown,
  ) {}

  /** `failure`: the RelayError code or why it failed; undefined when it succeeded. */
  end(failure?: string): void {
    if (this.ended) return;
    this.ended = true;
    if (failure !== undefined) this.span.setStatus({ code: STATUS_ERROR, message: failure });
    this.span.end();
  }

  /** Ends with `err`'s code (a RelayError's, else "handler error"), or as a success without one. */
  endWith(err: unknown): void {
    this.end(
      err == null ? undefined : typeof (err as { code?: unknown }).code === 'string' ? (err as { code: string }).code : 'handler error',
    );
  }

  /** `done`, ending the span as it settles. */
  settle<T>(done: Promise<T>): Promise<T> {
    return done.then(
      value => {
        this.end();
        return value;
      },
      (err: unknown) => {
        this.endWith(err);
        throw err;
      },
    );
  }

  /** A call's packet callback that ends the span with the call's last packet. */
  wrap<P extends { err?: unknown; isDisposed?: boolean }>(callback: (packet: P) => void): (packet: P) => void {
    return packet => {
      // First: the subscriber's teardown (run inside the callback for a last packet) would end it as a success.
      if (packet.isDisposed === true || packet.err != null) this.endWith(packet.err);
      callback(packet);
    };
  }
}

/**
 * The spans of a node: a caller's for each call and emit (its context goes
 * with the call in the W3C `traceparent` / `tracestate` headers), a
 * provider's for each request and event it handles (a child of the caller's).
 */
export class NodeTracing {
  private readonly tracer: TracerLike;

  constructor(private readonly api: OtelApi = loadOpenTelemetry()) {
    this.tracer = api.trace.getTracer('@wsrelay/transport');
  }

  /** A caller's span for `send()` (a call) or `emit()`, a child of the active span, and `headers` with its context added (a copy). */
  outgoing(kind: 'call' | 'emit', pattern: string, headers: Readonly<Record<string, string>> | undefined) {
    const active = this.api.context.active();
    const span = this.tracer.startSpan(
      `${kind === 'call' ? 'send' : 'emit'} ${pattern}`,
      { kind: kind === 'call' ? KIND.CLIENT : KIND.PRODUCER, attributes: attributes(kind, pattern) },
      active,
    );
    const carried: Record<string, string> = { ...headers };
    const context = this.api.trace.setSpan(active, span);
    this.api.propagation.inject(context, carried);
    return { work: new TracedWork(span, context), headers: carried };
  }

  /** A provider's span for a request or an event it handles, a child of the caller's span its headers carry. */
  incoming(
    kind: 'call' | 'emit',
    pattern: string,
    headers: Readonly<Record<string, string>> | undefined,
    nodeId: string | null,
  ): TracedWork {
    const parent = this.api.propagation.extract(this.api.ROOT_CONTEXT, { ...headers });
    const attrs = attributes(kind, pattern);
    if (nodeId !== null) attrs['wsrelay.peer'] = nodeId;
    const span = this.tracer.startSpan(
      `handle ${pattern}`,
      { kind: kind === 'call' ? KIND.SERVER : KIND.CONSUMER, attributes: attrs },
      parent,
    );
    return new TracedWork(span, this.api.trace.setSpan(parent, span));
  }

  /** Runs `fn` with `work`'s span active (spans the handler starts are its children). */
  run<T>(work: TracedWork, fn: () => T): T {
    return this.api.context.with(work.context, fn);
  }
}

function attributes(kind: 'call' | 'emit', pattern: string): Attributes {
  return kind === 'call'
    ? { 'rpc.system': 'wsrelay', 'rpc.method': pattern }
    : { 'messaging.system': 'wsrelay', 'messaging.destination.name': pattern };
}
