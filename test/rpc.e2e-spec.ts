/**
 * RPC through a real relay: the result matrix Nest users rely on, routing
 * (round-robin, targeting, object patterns), the relay's own failures and
 * cancellation reaching the provider's handler.
 */
import { Controller, Inject } from '@nestjs/common';
import { Ctx, MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import { RelayError, RelayErrorCode, WsRelayContext, WsRelayRecordBuilder } from '@wsrelay/transport';
import { EmptyError, firstValueFrom, lastValueFrom, map, Observable, of, take, timeout, toArray } from 'rxjs';
import type WebSocket from 'ws';
import { type RunningProvider, type RunningRelay, startClient, startProvider, startRelay, rejection, until } from './support/harness.js';
import type { WsRelayClient } from '@wsrelay/transport';

const LABEL = 'LABEL';

/** What handlers saw, for assertions on the provider side. */
const probe = {
  teardowns: new Map<string, number>(),
  started: new Map<string, number>(),
  contexts: [] as WsRelayContext[],
  bump(map: Map<string, number>, key: string) {
    map.set(key, (map.get(key) ?? 0) + 1);
  },
};

@Controller()
class MatrixController {
  constructor(@Inject(LABEL) private readonly label: string) {}

  @MessagePattern('sync')
  sync(@Payload() n: number) {
    return n + 1;
  }

  @MessagePattern('async')
  async asyncValue(@Payload() n: number) {
    await new Promise(r => setImmediate(r));
    return { doubled: n * 2 };
  }

  @MessagePattern('stream')
  stream(@Payload() n: number) {
    return of(...Array.from({ length: n }, (_, i) => i));
  }

  @MessagePattern('void')
  nothing() {
    return undefined;
  }

  @MessagePattern('nil')
  nil() {
    return null;
  }

  @MessagePattern('rpc-error-object')
  rpcErrorObject() {
    throw new RpcException({ code: 'E_NOPE', detail: [1, 2] });
  }

  @MessagePattern('rpc-error-string')
  rpcErrorString() {
    throw new RpcException('nope');
  }

  @MessagePattern('plain-error')
  plainError() {
    throw new Error('secret internals');
  }

  @MessagePattern('stream-error')
  streamError() {
    return new Observable(sub => {
      sub.next(1);
      sub.error(new RpcException({ at: 1 }));
    });
  }

  @MessagePattern('whoami')
  whoami() {
    return this.label;
  }

  @MessagePattern({ cmd: 'sum', v: 1 })
  sum(@Payload() xs: number[]) {
    return xs.reduce((a, b) => a + b, 0);
  }

  @MessagePattern('ctx')
  ctx(@Ctx() ctx: WsRelayContext) {
    probe.contexts.push(ctx);
    return ctx.getPattern();
  }

  @MessagePattern('hang')
  hang(@Payload() key: string) {
    probe.bump(probe.started, key);
    return new Observable(() => () => probe.bump(probe.teardowns, key));
  }

  @MessagePattern('ticks')
  ticks(@Payload() key: string) {
    probe.bump(probe.started, key);
    return new Observable<number>(sub => {
      let i = 0;
      const t = setInterval(() => sub.next(i++), 5);
      return () => {
        clearInterval(t);
        probe.bump(probe.teardowns, key);
      };
    });
  }

  @MessagePattern('double')
  double(@Payload() n: number) {
    return n * 2;
  }
}

async function provider(relay: RunningRelay, label: string): Promise<RunningProvider> {
  return startProvider([MatrixController], { urls: [relay.url], nodeId: label, service: 'matrix' }, [{ provide: LABEL, useValue: label }]);
}

describe('RPC through the relay', () => {
  let relay: RunningRelay;
  let p1: RunningProvider;
  let client: WsRelayClient;

  beforeAll(async () => {
    relay = await startRelay();
    p1 = await provider(relay, 'p1');
    client = await startClient({ urls: [relay.url] });
  });

  afterAll(async () => {
    await client.close();
    await p1.close();
    await relay.close();
  });

  describe('result matrix', () => {
    it('returns a sync value', async () => {
      expect(await firstValueFrom(client.send('sync', 41))).toBe(42);
    });

    it('returns an async value', async () => {
      expect(await firstValueFrom(client.send('async', 21))).toEqual({ doubled: 42 });
    });

    it('streams every Observable value in order, then completes', async () => {
      expect(await lastValueFrom(client.send('stream', 5).pipe(toArray()))).toEqual([0, 1, 2, 3, 4]);
    });

    it('completes without a value when the handler returns nothing, as Nest TCP does', async () => {
      await expect(firstValueFrom(client.send('void', 1))).rejects.toBeInstanceOf(EmptyError);
    });

    it('delivers null as a value', async () => {
      expect(await firstValueFrom(client.send('nil', 1))).toBeNull();
    });

    it("delivers an RpcException's object as the error", async () => {
      expect(await rejection(firstValueFrom(client.send('rpc-error-object', 1)))).toEqual({
        code: 'E_NOPE',
        detail: [1, 2],
      });
    });

    it("delivers an RpcException's message as Nest does", async () => {
      expect(await rejection(firstValueFrom(client.send('rpc-error-string', 1)))).toEqual({
        status: 'error',
        message: 'nope',
      });
    });

    it('hides a plain Error behind "Internal server error"', async () => {
      expect(await rejection(firstValueFrom(client.send('plain-error', 1)))).toEqual({
        status: 'error',
        message: 'Internal server error',
      });
    });

    it('delivers values before an error in a stream', async () => {
      const seen: unknown[] = [];
      const err = await rejection(lastValueFrom(client.send('stream-error', 1).pipe(map(v => seen.push(v)))));
      expect(seen).toEqual([1]);
      expect(err).toEqual({ at: 1 });
    });
  });

  it('normalizes object patterns as Nest does (key order does not matter)', async () => {
    expect(await firstValueFrom(client.send({ v: 1, cmd: 'sum' }, [1, 2, 3]))).toBe(6);
  });

  it('answers MICROSERVICE_OFFLINE at once when nobody serves the pattern', async () => {
    const err = await rejection(firstValueFrom(client.send('nobody.home', 1)));
    expect(err).toBeInstanceOf(RelayError);
    expect(err).toMatchObject({ code: RelayErrorCode.MICROSERVICE_OFFLINE, status: 503 });
    expect((err as Error).message).toContain('nobody.home');
  });

  it('passes caller id, headers, metadata and deadline to the context', async () => {
    client.setOnDispatchHook(packet => {
      packet.metadata = { traceId: 't-1' };
    });
    try {
      const before = Date.now();
      const record = new WsRelayRecordBuilder({ x: 1 }).setHeaders({ tenant: 'a' }).setTimeout(5000).build();
      expect(await firstValueFrom(client.send('ctx', record))).toBe('ctx');
      const ctx = probe.contexts.pop() as WsRelayContext;
      expect(ctx.getCallerId()).toBe(client.nodeId);
      expect(ctx.getHeaders()).toEqual({ tenant: 'a' });
      expect(ctx.getMetadata()).toEqual({ traceId: 't-1' });
      expect(ctx.getClaims()).toBeUndefined();
      expect(typeof ctx.getRequestId()).toBe('number');
      expect(ctx.getDeadline()).toBeGreaterThan(before + 4000);
      expect(ctx.getDeadline()).toBeLessThanOrEqual(Date.now() + 5000);
    } finally {
      client.setOnDispatchHook(() => undefined);
    }
  });

  it('answers TIMEOUT at the deadline and cancels the handler', async () => {
    const record = new WsRelayRecordBuilder('timeout-1').setTimeout(150).build();
    const err = await rejection(firstValueFrom(client.send('hang', record)));
    expect(err).toMatchObject({ code: RelayErrorCode.TIMEOUT, status: 504 });
    await until(() => probe.teardowns.get('timeout-1') === 1, 5000, 'the handler teardown');
  });

  it("runs the handler's teardown when the caller unsubscribes (firstValueFrom of a stream)", async () => {
    expect(await firstValueFrom(client.send('ticks', 'first-1'))).toBe(0);
    await until(() => probe.teardowns.get('first-1') === 1, 5000, 'the handler teardown');
  });

  it("runs the handler's teardown on rxjs timeout and take", async () => {
    await expect(firstValueFrom(client.send('hang', 'rx-timeout').pipe(timeout(50)))).rejects.toThrow();
    expect(await lastValueFrom(client.send('ticks', 'rx-take').pipe(take(3), toArray()))).toEqual([0, 1, 2]);
    await until(() => probe.teardowns.get('rx-timeout') === 1 && probe.teardowns.get('rx-take') === 1, 5000, 'both teardowns');
  });

  it('answers 1,000 concurrent calls, each correctly', async () => {
    const n = 1000;
    const results = await Promise.all(Array.from({ length: n }, (_, i) => firstValueFrom(client.send('double', i))));
    expect(results).toEqual(Array.from({ length: n }, (_, i) => i * 2));
  });

  describe('with three providers', () => {
    let p2: RunningProvider;
    let p3: RunningProvider;

    beforeAll(async () => {
      p2 = await provider(relay, 'p2');
      p3 = await provider(relay, 'p3');
    });

    afterAll(async () => {
      await p2.close();
      await p3.close();
    });

    it('shares requests round-robin', async () => {
      const labels: string[] = [];
      for (let i = 0; i < 9; i++) labels.push(await firstValueFrom(client.send('whoami', i)));
      const counts = labels.reduce<Record<string, number>>((m, l) => ({ ...m, [l]: (m[l] ?? 0) + 1 }), {});
      expect(counts).toEqual({ p1: 3, p2: 3, p3: 3 });
      // strict rotation: no provider twice in a row
      for (let i = 1; i < labels.length; i++) expect(labels[i]).not.toBe(labels[i - 1]);
    });

    it('sends to the chosen node with setNodeId', async () => {
      for (let i = 0; i < 4; i++) {
        const record = new WsRelayRecordBuilder(i).setNodeId('p2').build();
        expect(await firstValueFrom(client.send('whoami', record))).toBe('p2');
      }
    });

    it('answers MICROSERVICE_OFFLINE for a target that is not online', async () => {
      const record = new WsRelayRecordBuilder(1).setNodeId('p9').build();
      const err = await rejection(firstValueFrom(client.send('whoami', record)));
      expect(err).toMatchObject({ code: RelayErrorCode.MICROSERVICE_OFFLINE });
      expect((err as Error).message).toContain('p9');
    });

    it('lists the nodes with their service label in discovery', async () => {
      const nodes = await client.discover();
      const matrix = nodes.filter(n => n.service === 'matrix').map(n => n.nodeId);
      expect(matrix.sort()).toEqual(['p1', 'p2', 'p3']);
      expect(nodes.find(n => n.nodeId === 'p1')?.patterns).toContain('whoami');
    });
  });

  it('fails in-flight requests with PROVIDER_DISCONNECTED when the provider dies', async () => {
    const doomed = await provider(relay, 'doomed');
    const record = new WsRelayRecordBuilder('doomed-1').setNodeId('doomed').setTimeout(20_000).build();
    const call = rejection(firstValueFrom(client.send('hang', record)));
    await until(() => probe.started.get('doomed-1') === 1, 5000, 'the handler to start');
    // An abrupt death: the TCP connection is cut, no close handshake.
    doomed.strategy.unwrap<WebSocket>().terminate();
    const err = await call;
    expect(err).toMatchObject({ code: RelayErrorCode.PROVIDER_DISCONNECTED, status: 502 });
    await doomed.close();
  });
});
