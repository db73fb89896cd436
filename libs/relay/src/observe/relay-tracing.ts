import { decode } from '@msgpack/msgpack';
import { createRequire } from 'node:module';

/**
 * OpenTelemetry spans of the relay's routing, through `@opentelemetry/api`
 * (an optional peer dependency, loaded only when the `tracing` option is
 * on; without an SDK registered by the app its spans are no-ops). A span is
 * made only for a call or event that carries a W3C trace context in its
 * headers (`traceparent`): it is a child of the caller's span, so the
 * caller's, each relay's and the provider's spans make one trace. Its types
 * stay out of this package's declarations, so the part used is described
 * here.
 */

type Attributes = Record<string, string | number | boolean>;

export interface RouteSpan {
  setAttribute(key: string, value: string | number | boolean): unknown;
  setStatus(status: { code: number; message?: string }): unknown;
  end(): void;
}

interface OtelApi {
  trace: {
    getTracer(name: string): { startSpan(name: string, options: { kind: number; attributes?: Attributes }, context?: unknown): RouteSpan };
  };
  propagation: { extract(context: unknown, carrier: Record<string, string>): unknown };
  ROOT_CONTEXT: unknown;
}

const KIND_SERVER = 1;
const KIND_CONSUMER = 4;
const STATUS_ERROR = 2;

/** Loads `@opentelemetry/api`; throws, saying what to install, when it is missing. */
function loadOpenTelemetry(): OtelApi {
  try {
    return createRequire(import.meta.url)('@opentelemetry/api') as OtelApi;
  } catch (err) {
    throw new Error('RelayModule: the "tracing" option needs the "@opentelemetry/api" package: run "npm install @opentelemetry/api"', {
      cause: err,
    });
  }
}

/** The headers a frame's `ext` carries (`{ h: { name: value } }`), or undefined; never throws (ext is the nodes' business). */
function headersOf(ext: Uint8Array | null): Record<string, string> | undefined {
  if (ext === null) return undefined;
  try {
    const h = (decode(ext) as { h?: unknown } | null)?.h;
    return typeof h === 'object' && h !== null ? (h as Record<string, string>) : undefined;
  } catch {
    return undefined;
  }
}

export class RelayTracing {
  private readonly tracer: ReturnType<OtelApi['trace']['getTracer']>;

  constructor(
    private readonly relayId: string,
    private readonly api: OtelApi = loadOpenTelemetry(),
  ) {
    this.tracer = api.trace.getTracer('@wsrelay/relay');
  }

  /**
   * The span of a call routed here (`from`: the relay that forwarded it, for
   * a call from another relay's node), or undefined when it carries no trace
   * context. It ends when the call does (see `ended`).
   */
  route(pattern: string, ext: Uint8Array | null, caller: string | null, provider: string, from?: string): RouteSpan | undefined {
    const parent = this.parentOf(ext);
    if (parent === undefined) return undefined;
    const attributes: Attributes = {
      'rpc.system': 'wsrelay',
      'rpc.method': pattern,
      'wsrelay.relay': this.relayId,
      'wsrelay.provider': provider,
    };
    if (caller !== null) attributes['wsrelay.caller'] = caller;
    if (from !== undefined) attributes['wsrelay.forwarded_by'] = from;
    return this.tracer.startSpan(`route ${pattern}`, { kind: KIND_SERVER, attributes }, parent);
  }

  /** A published event's span here: its copies counted (`recipients`), ended at once. */
  published(subject: string, ext: Uint8Array | null, emitter: string | null, recipients: number, from?: string): void {
    const parent = this.parentOf(ext);
    if (parent === undefined) return;
    const attributes: Attributes = {
      'messaging.system': 'wsrelay',
      'messaging.destination.name': subject,
      'wsrelay.relay': this.relayId,
      'wsrelay.recipients': recipients,
    };
    if (emitter !== null) attributes['wsrelay.emitter'] = emitter;
    if (from !== undefined) attributes['wsrelay.forwarded_by'] = from;
    this.tracer.startSpan(`publish ${subject}`, { kind: KIND_CONSUMER, attributes }, parent).end();
  }

  /** Ends a call's span; `failure`: the code it failed with (undefined: it succeeded). */
  static ended(span: RouteSpan, failure?: string): void {
    if (failure !== undefined) span.setStatus({ code: STATUS_ERROR, message: failure });
    span.end();
  }

  private parentOf(ext: Uint8Array | null): unknown {
    const headers = headersOf(ext);
    if (headers?.traceparent === undefined) return undefined;
    return this.api.propagation.extract(this.api.ROOT_CONTEXT, headers);
  }
}
