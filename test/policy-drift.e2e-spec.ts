/**
 * The relay routes its frequent frames (REQUEST, RESPONSE, CANCEL, EVENT,
 * HANDLED, PING) without Nest's per-message pipeline. Pins the rule that
 * keeps that safe: a guard or interceptor added later to the gateway (on a
 * handler, or an app's global one) applies to every frame, not only to the
 * first of each kind and pattern on a connection (as it did when the hot path
 * remembered the guards' first verdicts); and an exception filter of another
 * kind on the gateway makes the relay refuse to start, saying why.
 */
import { describe, expect, it } from '@jest/globals';
import {
  type CallHandler,
  type CanActivate,
  Catch,
  Controller,
  type ExecutionContext,
  type INestApplication,
  Injectable,
  Module,
  type NestInterceptor,
  UseFilters,
  UseGuards,
} from '@nestjs/common';
import { EXCEPTION_FILTERS_METADATA, GUARDS_METADATA } from '@nestjs/common/constants.js';
import { APP_GUARD, NestFactory } from '@nestjs/core';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { encodePayload, type Frame, FrameType, RelayError, RelayErrorCode } from '@wsrelay/protocol';
import { createRelayApp, RelayGateway, RelayModule, RelayWsAdapter } from '@wsrelay/relay';
import type { WsRelayClient } from '@wsrelay/transport';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { firstValueFrom, type Observable, tap } from 'rxjs';
import { rejection, startClient, startProvider, useCleanup } from './support/harness.js';
import { helloFrame, RawNode } from './support/raw-node.js';

@Controller()
class EchoController {
  @MessagePattern('echo')
  echo(@Payload() n: number) {
    return n;
  }
}

/** Counts the frames it judges, by type; refuses every second REQUEST. */
@Injectable()
class EveryOtherRequestGuard implements CanActivate {
  static seen: FrameType[] = [];
  canActivate(context: ExecutionContext): boolean {
    const frame = context.switchToWs().getData<Frame>();
    EveryOtherRequestGuard.seen.push(frame.type);
    const requests = EveryOtherRequestGuard.seen.filter(t => t === FrameType.Request).length;
    if (frame.type === FrameType.Request && requests % 2 === 0)
      throw new RelayError(RelayErrorCode.FORBIDDEN, 'every second request is refused');
    return true;
  }
}

@Injectable()
class CountingInterceptor implements NestInterceptor {
  readonly seen: FrameType[] = [];
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const frame = context.switchToWs().getData<Frame>();
    return next.handle().pipe(tap(() => this.seen.push(frame.type)));
  }
}

@Catch()
class SwallowingFilter {
  catch(): void {}
}

/** Applies a decorator to one gateway handler, as a code change would, until restored. */
function decorate(method: 'onRequest' | 'onEvent', decorator: MethodDecorator, key: string): () => void {
  const proto = RelayGateway.prototype as unknown as Record<string, object>;
  const before = Reflect.getMetadata(key, proto[method]) as unknown;
  decorator(RelayGateway.prototype, method, Object.getOwnPropertyDescriptor(RelayGateway.prototype, method)!);
  return () => {
    if (before === undefined) Reflect.deleteMetadata(key, proto[method]);
    else Reflect.defineMetadata(key, before, proto[method]);
  };
}

/** A logger that keeps the warnings. */
class Warnings {
  readonly lines: string[] = [];
  log(): void {}
  error(): void {}
  warn(message: unknown): void {
    this.lines.push(String(message));
  }
}

async function listen(app: INestApplication): Promise<string> {
  await app.listen(0, '127.0.0.1');
  return `ws://127.0.0.1:${((app.getHttpServer() as Server).address() as AddressInfo).port}/relay`;
}

describe('enhancers added to the relay gateway', () => {
  const { add } = useCleanup();

  /** The app listening, with an echo provider and a client on it (all closed after the test). */
  async function echoMesh(app: INestApplication): Promise<WsRelayClient> {
    add(() => app.close());
    const url = await listen(app);
    const provider = await startProvider([EchoController], { urls: [url] });
    add(() => provider.close());
    const client = await startClient({ urls: [url] });
    add(() => client.close());
    return client;
  }

  /** Four echo calls one after another: each one's answer, or its error code. */
  async function fourEchoes(client: WsRelayClient): Promise<Array<number | string>> {
    const outcomes: Array<number | string> = [];
    for (let i = 1; i <= 4; i++) {
      outcomes.push(await firstValueFrom(client.send<number>('echo', i)).catch((err: RelayError) => err.code));
    }
    return outcomes;
  }

  it('the frequent frames take the hot path when the gateway has only its own enhancers', async () => {
    const warnings = new Warnings();
    const app = await createRelayApp({ drainTimeoutMs: 0 }, { logger: warnings });
    add(() => app.close());
    await listen(app);
    expect(warnings.lines.filter(l => /through Nest's pipeline/.test(l))).toEqual([]);
  });

  it('a guard added to the REQUEST handler judges every request, not only the first', async () => {
    EveryOtherRequestGuard.seen = [];
    add(decorate('onRequest', UseGuards(EveryOtherRequestGuard), GUARDS_METADATA));
    const warnings = new Warnings();
    const client = await echoMesh(await createRelayApp({ drainTimeoutMs: 0, startupGraceMs: 0 }, { logger: warnings }));
    expect(await fourEchoes(client)).toEqual([1, RelayErrorCode.FORBIDDEN, 3, RelayErrorCode.FORBIDDEN]);
    expect(EveryOtherRequestGuard.seen.filter(t => t === FrameType.Request)).toHaveLength(4);
    // Said at start: which frames lost the hot path, and because of what.
    expect(warnings.lines.join('\n')).toMatch(/REQUEST \(RelayGateway\.onRequest: EveryOtherRequestGuard\)/);
  });

  it("an app's global interceptor sees every EVENT and REQUEST, and events are still acknowledged", async () => {
    const counter = new CountingInterceptor();
    const app = await createRelayApp({ drainTimeoutMs: 0, startupGraceMs: 0 }, { logger: false });
    app.useGlobalInterceptors(counter);
    const client = await echoMesh(app);
    for (let i = 0; i < 3; i++) expect(await firstValueFrom(client.emit('nobody.listens', i))).toEqual({ recipients: 0 });
    for (let i = 0; i < 3; i++) expect(await firstValueFrom(client.send<number>('echo', i))).toBe(i);
    expect(counter.seen.filter(t => t === FrameType.Event)).toHaveLength(3);
    expect(counter.seen.filter(t => t === FrameType.Request)).toHaveLength(3);
  });

  it("frames pipelined behind HELLO wait for HELLO's handler itself when a global interceptor defers it", async () => {
    // Bug: with an interceptor, Nest's handler is an Observable that runs once subscribed (a turn later); the frames
    // held behind HELLO went on at the subscription, before HELLO took effect, and were refused as "HELLO first".
    const app = await createRelayApp({ drainTimeoutMs: 0, startupGraceMs: 0 }, { logger: false });
    app.useGlobalInterceptors(new CountingInterceptor());
    add(() => app.close());
    const url = await listen(app);
    const node = await RawNode.open(url);
    add(() => node.close());
    const tcp = node.tcp!;
    tcp.cork();
    node.send(helloFrame('piped'));
    node.send({ type: FrameType.Discover, id: 1 });
    node.send({ type: FrameType.Event, id: 2, pattern: 'nobody.listens', payload: encodePayload(1), peer: null, ext: null, claims: null });
    process.nextTick(() => tcp.uncork());
    expect(await node.next(f => f.type === FrameType.Welcome)).toMatchObject({ nodeId: 'piped' });
    expect(await node.next(f => f.type === FrameType.Nodes)).toMatchObject({ id: 1, nodes: [{ nodeId: 'piped' }] });
    expect(await node.next(f => f.type === FrameType.Ack)).toEqual({ type: FrameType.Ack, id: 2, recipients: 0 });
    expect(node.frames.filter(f => f.type === FrameType.Error)).toEqual([]);
  });

  it('a global guard (APP_GUARD) of an app that embeds the relay judges every request', async () => {
    EveryOtherRequestGuard.seen = [];
    @Module({
      imports: [RelayModule.forRoot({ drainTimeoutMs: 0, startupGraceMs: 0 })],
      providers: [{ provide: APP_GUARD, useClass: EveryOtherRequestGuard }],
    })
    class EmbeddingModule {}
    const app = await NestFactory.create(EmbeddingModule, { logger: false });
    app.useWebSocketAdapter(new RelayWsAdapter(app));
    const client = await echoMesh(app);
    expect(await fourEchoes(client)).toEqual([1, RelayErrorCode.FORBIDDEN, 3, RelayErrorCode.FORBIDDEN]);
  });

  it('an exception filter of another kind on a gateway handler makes the relay refuse to start, saying why', async () => {
    add(decorate('onEvent', UseFilters(SwallowingFilter), EXCEPTION_FILTERS_METADATA));
    const app = await createRelayApp({ drainTimeoutMs: 0 }, { logger: false });
    add(() => app.close());
    const err = (await rejection(app.listen(0, '127.0.0.1'))) as Error;
    expect(err.message).toMatch(/RelayGateway\.onEvent has the exception filter SwallowingFilter/);
  });
});
