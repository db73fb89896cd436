import { EXCEPTION_FILTERS_METADATA, GUARDS_METADATA, INTERCEPTORS_METADATA, PIPES_METADATA } from '@nestjs/common/constants.js';
import { ApplicationConfig } from '@nestjs/core';
import { MESSAGE_METADATA, PARAM_ARGS_METADATA } from '@nestjs/websockets/constants.js';
import { FRAME_NAMES, FrameType } from '@wsrelay/protocol';
import { FramePolicyGuard } from './frame-policy.guard.js';
import { RelayExceptionFilter } from './relay-exception.filter.js';

/** Frame types the adapter may route without Nest's per-message pipeline: the frequent ones. */
const HOT_FRAMES: readonly FrameType[] = [
  FrameType.Request,
  FrameType.Response,
  FrameType.Cancel,
  FrameType.Event,
  FrameType.Handled,
  FrameType.Ping,
];

type Enhancer = object;

/**
 * The hot path reproduces exactly these enhancers: FramePolicyGuard (the
 * same FramePolicy.check) and RelayExceptionFilter (the same Refusals.refuse).
 */
const REPRODUCED = { guards: [FramePolicyGuard], filters: [RelayExceptionFilter] } as const;

/** What the adapter may call directly, and what it must leave to Nest. */
export interface HotPathPlan {
  /** Frame type → the gateway method Nest would call for it, for the types the hot path takes. */
  readonly methods: ReadonlyMap<FrameType, string>;
  /** Why a hot frame type goes through Nest instead (extra guards, interceptors or pipes), for the startup log. */
  readonly throughNest: readonly string[];
}

/**
 * Reads the enhancers that apply to each of the gateway's hot handlers (the
 * app's global ones, the gateway class's, the handler's) the way Nest's
 * WebSocket context does. A handler with only those the hot path reproduces
 * is called directly; one with any other guard, interceptor or pipe goes
 * through Nest for every frame, so that what was added applies to every
 * frame. An exception filter other than the relay's refuses to start: it
 * would answer the relay's nodes in a format they cannot read and disarm the
 * bad-frame limit. Without the app's configuration nothing takes the hot path.
 */
export function planHotPath(app: object, gateway: object): HotPathPlan {
  const config = (app as { config?: unknown }).config;
  if (!(config instanceof ApplicationConfig)) {
    return { methods: new Map(), throughNest: ["every frame: the app's global enhancers cannot be read (not a Nest application)"] };
  }
  const metatypes = (wrappers: Array<{ metatype: unknown }>) =>
    wrappers.map(w => w.metatype).filter((m): m is Enhancer => typeof m === 'function');
  const global = {
    guards: [...config.getGlobalGuards(), ...metatypes(config.getGlobalRequestGuards())],
    interceptors: [...config.getGlobalInterceptors(), ...metatypes(config.getGlobalRequestInterceptors())],
    pipes: [...config.getGlobalPipes(), ...metatypes(config.getGlobalRequestPipes())],
  };
  const proto = Object.getPrototypeOf(gateway) as Record<string, unknown>;
  const ctor = gateway.constructor;
  const methods = new Map<FrameType, string>();
  const throughNest: string[] = [];
  for (const [name, handler] of handlers(proto)) {
    const extraFilters = enhancers(EXCEPTION_FILTERS_METADATA, ctor, handler).filter(e => !isOneOf(e, REPRODUCED.filters));
    if (extraFilters.length > 0) {
      throw new Error(
        `${ctor.name}.${name} has the exception filter ${names(extraFilters)}: the relay answers every refused frame itself ` +
          '(a binary ERROR its nodes read, and a bad-frame count that closes a flooding connection). Remove the filter.',
      );
    }
    const type = frameType(handler);
    if (type === undefined || !HOT_FRAMES.includes(type)) continue;
    const extra = [
      ...[...global.guards, ...enhancers(GUARDS_METADATA, ctor, handler)].filter(e => !isOneOf(e, REPRODUCED.guards)),
      ...global.interceptors,
      ...enhancers(INTERCEPTORS_METADATA, ctor, handler),
      ...(hasParams(proto, name) ? [...global.pipes, ...enhancers(PIPES_METADATA, ctor, handler)] : []),
    ];
    if (extra.length === 0) methods.set(type, name);
    else throughNest.push(`${FRAME_NAMES[type].toUpperCase()} (${ctor.name}.${name}: ${names(extra)})`);
  }
  return { methods, throughNest };
}

/** The gateway's message handlers, by method name. */
function handlers(proto: Record<string, unknown>): Array<[string, (...args: unknown[]) => unknown]> {
  return Object.getOwnPropertyNames(proto)
    .filter(name => name !== 'constructor' && typeof proto[name] === 'function')
    .map(name => [name, proto[name] as (...args: unknown[]) => unknown] as [string, (...args: unknown[]) => unknown])
    .filter(([, fn]) => Reflect.getMetadata(MESSAGE_METADATA, fn) !== undefined);
}

function frameType(handler: object): FrameType | undefined {
  const message = Reflect.getMetadata(MESSAGE_METADATA, handler) as unknown;
  const entry = Object.entries(FRAME_NAMES).find(([, name]) => name === message);
  return entry === undefined ? undefined : Number(entry[0]);
}

/** Class-level, then handler-level enhancers of one kind. */
function enhancers(key: string, ctor: object, handler: object): Enhancer[] {
  return [
    ...((Reflect.getMetadata(key, ctor) as Enhancer[] | undefined) ?? []),
    ...((Reflect.getMetadata(key, handler) as Enhancer[] | undefined) ?? []),
  ];
}

/** Pipes apply to a WebSocket handler's decorated parameters only. */
function hasParams(proto: object, name: string): boolean {
  const params = Reflect.getMetadata(PARAM_ARGS_METADATA, proto.constructor, name) as object | undefined;
  return params !== undefined && Object.keys(params).length > 0;
}

function classOf(e: Enhancer): unknown {
  return typeof e === 'function' ? e : e.constructor;
}

function isOneOf(e: Enhancer, known: readonly unknown[]): boolean {
  return known.includes(classOf(e));
}

function names(list: Enhancer[]): string {
  return list.map(e => (classOf(e) as { name?: string }).name ?? 'anonymous').join(', ');
}
