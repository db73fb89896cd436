/**
 * Nest parity: a provider written for Nest TCP moves to wsrelay by changing only its transport options. One module
 * (a controller with pipes, guards, interceptors and exception filters, and a module-level interceptor) runs as a Nest
 * TCP microservice and as a wsrelay provider behind a real relay, the options differing only in `transport` + `options`
 * versus `strategy`; each is called by its own ClientProxy (ClientTCP, WsRelayClient), and every caller must receive
 * the same values and errors. Custom (de)serializers, the same objects on both, and processing hooks are compared too.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { Catch, Controller, Injectable, Module, ParseIntPipe, UseFilters, UseGuards, UseInterceptors } from '@nestjs/common';
import type { ArgumentsHost, CallHandler, CanActivate, ExecutionContext, NestInterceptor } from '@nestjs/common';
import type { PipeTransform, RpcExceptionFilter } from '@nestjs/common';
import { APP_INTERCEPTOR, NestFactory } from '@nestjs/core';
import { BaseRpcExceptionFilter, ClientTCP, Ctx, EventPattern, MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import { type ClientProxy, type Deserializer, type MicroserviceOptions, Transport } from '@nestjs/microservices';
import type { PacketMetadata, ReadPacket, Serializer, Server, WritePacket } from '@nestjs/microservices';
import { WS_RELAY_TRANSPORT, type WsRelayClient, WsRelayContext, WsRelayStrategy } from '@wsrelay/transport';
import { EventEmitter, once } from 'node:events';
import type { AddressInfo, Server as NetServer } from 'node:net';
import { concat, interval, lastValueFrom, map, type Observable, of, take, tap, throwError, toArray } from 'rxjs';
import { startClient, startRelay } from './support/harness.js';

type Side = 'tcp' | 'wsrelay';
/** What the tests use of a ClientProxy (ClientTCP and WsRelayClient differ in their events and statuses). */
type Caller = Pick<ClientProxy, 'send' | 'emit' | 'setOnDispatchHook'>;
const SIDES: Side[] = ['tcp', 'wsrelay'];
/** What TcpContext and WsRelayContext both offer. */
interface RpcCtx {
  getPattern(): string;
  getMetadata(): PacketMetadata | undefined;
}
const sideOf = (ctx: unknown): Side => (ctx instanceof WsRelayContext ? 'wsrelay' : 'tcp');
const patternOf = (ctx: unknown): string => (ctx as RpcCtx).getPattern();

/** What each side's hooks, interceptor and handlers did, in order; each entry is also emitted as `<side> <entry>`. */
const trace: Record<Side, string[]> = { tcp: [], wsrelay: [] };
const transportIds: Record<Side, unknown[]> = { tcp: [], wsrelay: [] };
const events: Record<Side, unknown[]> = { tcp: [], wsrelay: [] };
/** The context the last processing-start hook was given, and whether each later handler or end hook got that same one. */
const started: Record<Side, unknown> = { tcp: undefined, wsrelay: undefined };
const sameContext: Record<Side, boolean[]> = { tcp: [], wsrelay: [] };
const traced = new EventEmitter();
function note(ctx: unknown, entry: string): void {
  trace[sideOf(ctx)].push(entry);
  traced.emit(`${sideOf(ctx)} ${entry}`);
}
const noted = (side: Side, entry: string): Promise<unknown[]> => once(traced, `${side} ${entry}`);

class DomainError extends Error {
  code = '';
}
const domainError = (code: string, message: string) => Object.assign(new DomainError(message), { code });

@Catch(DomainError)
class DomainErrorFilter implements RpcExceptionFilter<DomainError> {
  catch(err: DomainError, host: ArgumentsHost): Observable<never> {
    return throwError(() => ({ code: err.code, message: err.message, pattern: patternOf(host.switchToRpc().getContext()) }));
  }
}

/** Nest's base filter, with RpcExceptions' errors tagged; anything else stays hidden as Nest hides it. */
@Catch()
class TaggingFilter extends BaseRpcExceptionFilter {
  override catch(err: unknown, host: ArgumentsHost): Observable<unknown> {
    return super.catch(err instanceof RpcException ? new RpcException({ tagged: err.getError() }) : err, host);
  }
}

@Injectable()
class SkuPipe implements PipeTransform<unknown, string> {
  transform(value: unknown): string {
    if (typeof value !== 'string' || value.trim() === '') throw new RpcException({ code: 'BAD_SKU', got: typeof value });
    return value.trim().toUpperCase();
  }
}

/** Reads the payload: no tenant is an RpcException of its own, another tenant than acme is refused. */
@Injectable()
class TenantGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const { tenant } = context.switchToRpc().getData<{ tenant?: string }>();
    if (tenant === undefined) throw new RpcException({ code: 'NO_TENANT' });
    return tenant === 'acme';
  }
}

@Injectable()
class WrapInterceptor implements NestInterceptor {
  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(map((result: unknown) => ({ wrapped: result })));
  }
}

@Injectable()
class ContextInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const rpc = context.switchToRpc();
    const seen = {
      type: context.getType(),
      handler: context.getHandler().name,
      controller: context.getClass().name,
      pattern: rpc.getContext<RpcCtx>().getPattern(),
      metadata: rpc.getContext<RpcCtx>().getMetadata(),
      data: rpc.getData<unknown>(),
    };
    return next.handle().pipe(map((result: unknown) => ({ ...seen, result })));
  }
}

/** Module-level (APP_INTERCEPTOR): marks where interceptors run relative to the hooks and the handler. */
@Injectable()
class TracingInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const ctx: unknown = context.switchToRpc().getContext();
    note(ctx, `intercept ${patternOf(ctx)}`);
    return next.handle();
  }
}

@Controller()
@UseFilters(DomainErrorFilter)
class ParityController {
  @MessagePattern('math.double')
  double(@Payload(new ParseIntPipe({ exceptionFactory: (message: string) => new RpcException(message) })) n: number): number {
    return n * 2;
  }

  @MessagePattern('stock.find')
  find(@Payload('sku', SkuPipe) sku: string, @Payload('qty', ParseIntPipe) qty: number) {
    return { sku, qty };
  }

  @MessagePattern('orders.read')
  @UseGuards(TenantGuard)
  read(@Payload() query: { tenant: string; id: number }) {
    return { id: query.id, tenant: query.tenant };
  }

  @MessagePattern('inspect')
  @UseInterceptors(ContextInterceptor, WrapInterceptor)
  inspect(@Payload() data: unknown) {
    return { echoed: data };
  }

  @MessagePattern('orders.lock')
  lock(@Payload() id: number): never {
    throw domainError('ORDER_LOCKED', `order ${id} is locked`);
  }

  @MessagePattern('orders.tagged')
  @UseFilters(TaggingFilter)
  tagged(@Payload() kind: string): never {
    throw kind === 'rpc' ? new RpcException('not yours') : new Error('database password is hunter2');
  }

  @MessagePattern('stream.squares')
  squares(@Payload(ParseIntPipe) n: number, @Ctx() ctx: unknown) {
    return interval(1).pipe(
      take(n),
      map(i => (i + 1) ** 2),
      tap(v => note(ctx, `item ${v}`)),
    );
  }

  @MessagePattern('stream.fails')
  fails() {
    return concat(
      of(1, 2),
      throwError(() => domainError('STREAM_BROKEN', 'after two')),
    );
  }

  /** Results JSON and MessagePack carry alike (not Date, Buffer, NaN or a toJSON method: each encodes those its own way). */
  @MessagePattern('results')
  results(@Payload() kind: string): unknown {
    const table: Record<string, unknown> = { nothing: undefined, null: null, holes: { v: 1, u: undefined, list: [undefined, 1] } };
    return kind === 'error' ? new Error('an Error instance is not sent as JSON') : table[kind];
  }

  @MessagePattern('echo.twice')
  echoTwice(@Payload() data: unknown) {
    return of(data, { again: data });
  }

  @MessagePattern('hooked.call')
  hookedCall(@Ctx() ctx: unknown): string {
    sameContext[sideOf(ctx)].push(ctx === started[sideOf(ctx)]);
    note(ctx, 'handler hooked.call');
    return 'done';
  }

  @EventPattern<string>('audit.logged')
  logged(@Payload() data: unknown, @Ctx() ctx: RpcCtx): void {
    events[sideOf(ctx)].push({ data, pattern: ctx.getPattern(), metadata: ctx.getMetadata() });
    note(ctx, 'handler audit.logged');
  }
}

@Module({ controllers: [ParityController], providers: [{ provide: APP_INTERCEPTOR, useClass: TracingInterceptor }] })
class ParityModule {}

/** The same hooks on either server: the transport id each is given, and the start and end of each request or event. */
function setHooks(server: Server): void {
  // It returns done()'s promise, as Nest's default start hook does (the type says void; Nest uses what is returned).
  // eslint-disable-next-line @typescript-eslint/no-misused-promises
  server.setOnProcessingStartHook((transportId, ctx, done) => {
    transportIds[sideOf(ctx)].push(transportId);
    started[sideOf(ctx)] = ctx;
    note(ctx, `start ${patternOf(ctx)}`);
    return done();
  });
  server.setOnProcessingEndHook((_transportId, ctx) => {
    sameContext[sideOf(ctx)].push(ctx === started[sideOf(ctx)]);
    note(ctx, `end ${patternOf(ctx)}`);
  });
}

type Codec = { serializer?: Serializer; deserializer?: Deserializer };
type Envelope = { by: string; body: unknown };
const opened = (value: unknown, by: string): Envelope | undefined => {
  const e = value as Envelope | null;
  return typeof e === 'object' && e !== null && e.by === by ? e : undefined;
};
const TO_SERVER = 'client.serialize>server.deserialize';
const TO_CLIENT = 'server.serialize>client.deserialize';
const wrapOut = (value: unknown) => (value === undefined || value === null ? value : { by: 'server', body: value });
const unwrapIn = (value: unknown, by: string, mark: string) => {
  const e = opened(value, by);
  return e === undefined ? value : { got: e.body, mark };
};
/** Each leaves a mark: the client wraps the data, the server unwraps it (marked); the server wraps results and errors, the client unwraps them (marked). */
const serverCodec: Codec = {
  // Metadata the deserializer adds is what the handler's context shows, on both.
  deserializer: {
    deserialize: (p: ReadPacket) => ({ ...p, data: unwrapIn(p.data, 'client', TO_SERVER), metadata: { ...p.metadata, codec: 'server' } }),
  },
  serializer: { serialize: (p: WritePacket) => ({ ...p, response: wrapOut(p.response), err: wrapOut(p.err) }) },
};
const clientCodec: Codec = {
  serializer: { serialize: (p: ReadPacket) => ({ ...p, data: { by: 'client', body: p.data as unknown } }) },
  deserializer: {
    deserialize: (p: WritePacket) => ({
      ...p,
      response: unwrapIn(p.response, 'server', TO_CLIENT),
      err: unwrapIn(p.err, 'server', TO_CLIENT),
    }),
  },
};

interface Pair {
  tcp: ClientTCP;
  wsrelay: WsRelayClient;
  close(): Promise<void>;
}

/**
 * The module as a Nest TCP microservice and as a wsrelay provider behind a relay of its own, options differing
 * only in the transport; a client for each.
 */
async function boot(server: Codec = {}, client: Codec = {}): Promise<Pair> {
  const relay = await startRelay();
  const shared = { logger: false as const };
  const overTcp = await NestFactory.createMicroservice<MicroserviceOptions>(ParityModule, {
    ...shared,
    transport: Transport.TCP,
    options: { host: '127.0.0.1', port: 0, ...server },
  });
  const overRelay = await NestFactory.createMicroservice<MicroserviceOptions>(ParityModule, {
    ...shared,
    strategy: new WsRelayStrategy({ urls: [relay.url], ...server }),
  });
  for (const app of [overTcp, overRelay]) setHooks(app.getTransportServer() as Server);
  await overTcp.listen();
  await overRelay.listen();
  const { port } = overTcp.unwrap<NetServer>().address() as AddressInfo;
  const tcp = new ClientTCP({ host: '127.0.0.1', port, ...client });
  await tcp.connect();
  const wsrelay = await startClient({ urls: [relay.url], ...client });
  for (const c of [tcp, wsrelay] as Caller[]) c.setOnDispatchHook(p => void (p.metadata = { trace: 'parity' }));
  const close = async () => {
    tcp.close();
    await wsrelay.close();
    await overTcp.close();
    await overRelay.close();
    await relay.close();
  };
  return { tcp, wsrelay, close };
}

/** What a caller received: every value, then the error if the call failed. */
type Outcome = { values: unknown[] } | { values: unknown[]; error: unknown };

/** The same call through both transports. */
async function both(pair: Pair, pattern: string, data: unknown): Promise<Record<Side, Outcome>> {
  const outcome = async (client: Caller): Promise<Outcome> => {
    const values: unknown[] = [];
    try {
      await lastValueFrom(client.send<unknown>(pattern, data).pipe(tap(v => values.push(v))), { defaultValue: undefined });
      return { values };
    } catch (error) {
      return { values, error };
    }
  };
  const [tcp, wsrelay] = await Promise.all([outcome(pair.tcp), outcome(pair.wsrelay)]);
  return { tcp, wsrelay };
}

/** The same call through both transports: what the WsRelayClient caller got is `expected`, and what the ClientTCP caller got. */
async function agree(pair: Pair, pattern: string, data: unknown, expected: Outcome): Promise<void> {
  const got = await both(pair, pattern, data);
  expect(got.wsrelay).toEqual(expected);
  expect(got.wsrelay).toStrictEqual(got.tcp);
}

/** Emits through both transports and resolves once each side's `entry` was noted. */
async function emitBoth(pair: Pair, pattern: string, data: unknown, entry: string): Promise<void> {
  const seen = Promise.all(SIDES.map(side => noted(side, entry)));
  await Promise.all(SIDES.map(side => lastValueFrom(pair[side].emit(pattern, data), { defaultValue: undefined })));
  await seen;
}

describe('one Nest controller over Nest TCP and over wsrelay', () => {
  let plain: Pair;
  let coded: Pair;

  beforeAll(async () => {
    plain = await boot();
    coded = await boot(serverCodec, clientCodec);
  });

  afterAll(async () => {
    await plain?.close();
    await coded?.close();
  });

  beforeEach(() => {
    for (const side of SIDES) {
      trace[side].length = 0;
      transportIds[side].length = 0;
      events[side].length = 0;
      sameContext[side].length = 0;
    }
  });

  it('pipes: ParseIntPipe and a custom pipe transform the payload, and reject bad input with the same error', async () => {
    await agree(plain, 'math.double', '21', { values: [42] });
    const notNumeric = { status: 'error', message: 'Validation failed (numeric string is expected)' };
    await agree(plain, 'math.double', '2x', { values: [], error: notNumeric });
    await agree(plain, 'stock.find', { sku: ' ab-1 ', qty: '3' }, { values: [{ sku: 'AB-1', qty: 3 }] });
    await agree(plain, 'stock.find', { sku: 5, qty: '3' }, { values: [], error: { code: 'BAD_SKU', got: 'number' } });
    // ParseIntPipe's default BadRequestException is not an RpcException: hidden, as Nest hides it.
    await agree(
      plain,
      'stock.find',
      { sku: 'ab-1', qty: 'three' },
      { values: [], error: { status: 'error', message: 'Internal server error' } },
    );
  });

  it('a guard reading the payload: lets acme through, refuses others with "Forbidden resource", as TCP does', async () => {
    await agree(plain, 'orders.read', { tenant: 'acme', id: 7 }, { values: [{ id: 7, tenant: 'acme' }] });
    await agree(
      plain,
      'orders.read',
      { tenant: 'globex', id: 7 },
      { values: [], error: { status: 'error', message: 'Forbidden resource' } },
    );
    await agree(plain, 'orders.read', { id: 7 }, { values: [], error: { code: 'NO_TENANT' } });
  });

  it('interceptors: one maps the result, one reads the execution context (rpc, handler, pattern, data, metadata)', async () => {
    const seen = { type: 'rpc', handler: 'inspect', controller: 'ParityController', pattern: 'inspect', metadata: { trace: 'parity' } };
    await agree(plain, 'inspect', { n: 1 }, { values: [{ ...seen, data: { n: 1 }, result: { wrapped: { echoed: { n: 1 } } } }] });
  });

  it('exception filters: a custom RpcExceptionFilter and a BaseRpcExceptionFilter subclass give the caller the same error', async () => {
    const locked = { code: 'ORDER_LOCKED', message: 'order 7 is locked', pattern: 'orders.lock' };
    await agree(plain, 'orders.lock', 7, { values: [], error: locked });
    await agree(plain, 'orders.tagged', 'rpc', { values: [], error: { tagged: 'not yours' } });
    await agree(plain, 'orders.tagged', 'plain', { values: [], error: { status: 'error', message: 'Internal server error' } });
  });

  it('plain results: null, nothing, undefined fields and array holes, an Error instance arrive as over TCP', async () => {
    await agree(plain, 'results', 'null', { values: [null] });
    await agree(plain, 'results', 'nothing', { values: [] });
    await agree(plain, 'results', 'holes', { values: [{ v: 1, list: [null, 1] }] });
    await agree(plain, 'results', 'error', { values: [{}] });
  });

  it('a streamed Observable: every value, in order; a stream that fails midway: its values, then the filtered error', async () => {
    const collect = (client: Caller) => lastValueFrom(client.send<number>('stream.squares', '4').pipe(toArray()));
    const [tcp, wsrelay] = await Promise.all([collect(plain.tcp), collect(plain.wsrelay)]);
    expect(wsrelay).toEqual([1, 4, 9, 16]);
    expect(wsrelay).toStrictEqual(tcp);
    const broken = { code: 'STREAM_BROKEN', message: 'after two', pattern: 'stream.fails' };
    await agree(plain, 'stream.fails', {}, { values: [1, 2], error: broken });
  });

  it('an @EventPattern handler gets the emitted event, with its pattern and metadata', async () => {
    await emitBoth(plain, 'audit.logged', { user: 'ada', action: 'login' }, 'end audit.logged');
    expect(events.wsrelay).toEqual([{ data: { user: 'ada', action: 'login' }, pattern: 'audit.logged', metadata: { trace: 'parity' } }]);
    expect(events.wsrelay).toStrictEqual(events.tcp);
  });

  it('custom serializers and deserializers, server side and client side, transform requests, streams, errors and events alike', async () => {
    const arrived = { got: { n: 7 }, mark: TO_SERVER };
    await agree(coded, 'echo.twice', { n: 7 }, { values: [arrived, { again: arrived }].map(got => ({ got, mark: TO_CLIENT })) });
    await agree(
      coded,
      'stream.fails',
      {},
      {
        values: [1, 2].map(got => ({ got, mark: TO_CLIENT })),
        error: { got: { code: 'STREAM_BROKEN', message: 'after two', pattern: 'stream.fails' }, mark: TO_CLIENT },
      },
    );
    await emitBoth(coded, 'audit.logged', { user: 'ada' }, 'end audit.logged');
    expect(events.wsrelay).toEqual([
      { data: { got: { user: 'ada' }, mark: TO_SERVER }, pattern: 'audit.logged', metadata: { trace: 'parity', codec: 'server' } },
    ]);
    expect(events.wsrelay).toStrictEqual(events.tcp);
  });

  it('processing hooks: once per request and per event, around the interceptor and the handler, with its own transport id', async () => {
    /** Runs `call` on one side's client and waits for that side's end hook on `pattern`. */
    const step = async (side: Side, pattern: string, call: (client: Caller) => Observable<unknown>) => {
      const ended = noted(side, `end ${pattern}`);
      await lastValueFrom(call(plain[side]), { defaultValue: undefined }).catch(() => undefined);
      await ended;
    };
    const scenario = async (side: Side) => {
      await step(side, 'hooked.call', client => client.send('hooked.call', {}));
      await step(side, 'audit.logged', client => client.emit('audit.logged', { user: 'ada' }));
      await step(side, 'orders.read', client => client.send('orders.read', { tenant: 'globex' }));
      await step(side, 'stream.squares', client => client.send('stream.squares', 3));
    };
    await Promise.all(SIDES.map(scenario));
    expect(trace.wsrelay).toEqual([
      ...['start hooked.call', 'intercept hooked.call', 'handler hooked.call', 'end hooked.call'],
      ...['start audit.logged', 'intercept audit.logged', 'handler audit.logged', 'end audit.logged'],
      ...['start orders.read', 'end orders.read'], // refused by the guard: no interceptor, no handler
      ...['start stream.squares', 'intercept stream.squares', 'item 1', 'item 4', 'item 9', 'end stream.squares'],
    ]);
    expect(trace.wsrelay).toStrictEqual(trace.tcp);
    expect(transportIds.tcp).toEqual(Array(4).fill(Transport.TCP));
    expect(transportIds.wsrelay).toEqual(Array(4).fill(WS_RELAY_TRANSPORT));
    // The handler and the end hook are given the context the start hook was.
    expect(sameContext.wsrelay).toEqual(Array(5).fill(true));
    expect(sameContext.wsrelay).toStrictEqual(sameContext.tcp);
  });
});
