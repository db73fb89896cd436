/**
 * One routing suite, run against every backplane: one relay on the default
 * in-memory backplane, three relays sharing an in-memory hub in this
 * process, and three `apps/relay` processes joined over Redis. Clients and
 * providers sit on different relays wherever the cluster has several, so
 * each scenario crosses relays: RPC, round-robin across relays, targeting,
 * streaming, cancel, timeout, events with wildcards and queue groups, ack
 * counts, WAIT and discovery, tenant isolation.
 */
import { Controller, Inject } from '@nestjs/common';
import { Ctx, EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { RelayErrorCode } from '@wsrelay/protocol';
import { type WsRelayClient, WsRelayContext, WsRelayRecordBuilder } from '@wsrelay/transport';
import { firstValueFrom, interval, map, Observable, take, toArray } from 'rxjs';
import { discoverUntil, type TestCluster, inProcessCluster, redisCluster, singleRelay } from './support/cluster.js';
import { rejection, type RunningProvider, startClient, startProvider, until, useCleanup } from './support/harness.js';
import { mint } from './support/tokens.js';

const NODE = Symbol('node');
/** Events handled, by every provider of this file. */
const handled: Array<{ node: string; subject: string; data: unknown }> = [];
/** Handler starts and teardowns of 'forever', by node. */
const started = new Map<string, number>();
const teardowns = new Map<string, number>();
const bump = (m: Map<string, number>, node: string) => m.set(node, (m.get(node) ?? 0) + 1);

@Controller()
class ClusterController {
  constructor(@Inject(NODE) private readonly node: string) {}

  @MessagePattern('whoami')
  whoami(@Payload() _: unknown, @Ctx() ctx: WsRelayContext) {
    return {
      node: this.node,
      caller: ctx.getCallerId(),
      tenant: (ctx.getClaims() as { tenant?: string } | undefined)?.tenant ?? null,
      headers: ctx.getHeaders(),
    };
  }

  @MessagePattern('count')
  count(@Payload() n: number) {
    return interval(5).pipe(
      take(n),
      map(i => i + 1),
    );
  }

  @MessagePattern('forever')
  forever() {
    return new Observable(() => {
      bump(started, this.node);
      return () => bump(teardowns, this.node);
    });
  }

  @EventPattern<string>('orders.*')
  onOrder(@Payload() data: unknown, @Ctx() ctx: WsRelayContext) {
    handled.push({ node: this.node, subject: ctx.getPattern(), data });
  }
}

const backends: Array<[string, () => Promise<TestCluster>]> = [
  ['in-memory backplane, one relay', () => singleRelay()],
  ['in-memory hub, three relays in one process', () => inProcessCluster()],
  ['Redis, three relays in separate processes', () => redisCluster()],
];

describe.each(backends)('cluster routing: %s', (_name, make) => {
  let cluster: TestCluster;
  const { add } = useCleanup();

  beforeAll(async () => {
    cluster = await make();
    await cluster.ready();
  }, 60_000);

  afterEach(() => {
    handled.length = 0;
    started.clear();
    teardowns.clear();
  });

  afterAll(async () => {
    await cluster?.close();
  });

  async function provider(at: 0 | 1 | 2, nodeId: string, o: { tenant?: string; queue?: string } = {}): Promise<RunningProvider> {
    const p = await startProvider(
      [ClusterController],
      {
        urls: [cluster.urls[at]],
        nodeId,
        queue: o.queue,
        token: () => mint({ sub: nodeId, claims: { role: 'server', ...(o.tenant ? { tenant: o.tenant } : {}) } }),
      },
      [{ provide: NODE, useValue: nodeId }],
    );
    add(() => p.close());
    return p;
  }

  async function client(at: 0 | 1 | 2, nodeId: string, tenant?: string): Promise<WsRelayClient> {
    const c = await startClient({
      urls: [cluster.urls[at]],
      nodeId,
      token: () => mint({ sub: nodeId, claims: { role: 'client', ...(tenant ? { tenant } : {}) } }),
    });
    add(() => c.close());
    return c;
  }

  it('calls a provider on another relay, with the caller id, headers and claims', async () => {
    await provider(2, 'rpc-far');
    const c = await client(0, 'rpc-caller');
    await c.waitFor('whoami', 5000);
    const record = new WsRelayRecordBuilder({}).setHeaders({ 'x-trace': 't-1' }).build();
    expect(await firstValueFrom(c.send('whoami', record))).toEqual({
      node: 'rpc-far',
      caller: 'rpc-caller',
      tenant: null,
      headers: { 'x-trace': 't-1' },
    });
  });

  it('shares calls round-robin between providers on different relays', async () => {
    await provider(1, 'rr-1');
    await provider(2, 'rr-2');
    const c = await client(0, 'rr-caller');
    await discoverUntil(c, ['rr-1', 'rr-2']);
    const nodes: string[] = [];
    for (let i = 0; i < 8; i++) nodes.push((await firstValueFrom(c.send<{ node: string }>('whoami', i))).node);
    expect(nodes.filter(n => n === 'rr-1')).toHaveLength(4);
    expect(nodes.filter(n => n === 'rr-2')).toHaveLength(4);
  });

  it('sends to a chosen node on another relay, and answers MICROSERVICE_OFFLINE for one that is nowhere', async () => {
    await provider(1, 'target-1');
    await provider(2, 'target-2');
    const c = await client(0, 'target-caller');
    await discoverUntil(c, ['target-1', 'target-2']);
    for (let i = 0; i < 3; i++) {
      const reply = await firstValueFrom(c.send<{ node: string }>('whoami', new WsRelayRecordBuilder(i).setNodeId('target-2').build()));
      expect(reply.node).toBe('target-2');
    }
    const err = await rejection(firstValueFrom(c.send('whoami', new WsRelayRecordBuilder(1).setNodeId('target-9').build())));
    expect(err).toMatchObject({ code: RelayErrorCode.MICROSERVICE_OFFLINE });
    expect(await rejection(firstValueFrom(c.send('nobody.serves', 1)))).toMatchObject({ code: RelayErrorCode.MICROSERVICE_OFFLINE });
  });

  it('streams every value of a remote Observable in order', async () => {
    await provider(2, 'stream-far');
    const c = await client(0, 'stream-caller');
    await c.waitFor('count', 5000);
    expect(await firstValueFrom(c.send<number>('count', 5).pipe(toArray()))).toEqual([1, 2, 3, 4, 5]);
  });

  it("runs a remote handler's teardown when the caller unsubscribes, and at the deadline (TIMEOUT)", async () => {
    await provider(2, 'cancel-far');
    const c = await client(0, 'cancel-caller');
    await c.waitFor('forever', 5000);
    const sub = c.send('forever', 1).subscribe();
    await until(() => started.get('cancel-far') === 1, 5000, 'the handler to start');
    sub.unsubscribe();
    await until(() => teardowns.get('cancel-far') === 1, 5000, 'the teardown after unsubscribe');
    const err = await rejection(firstValueFrom(c.send('forever', new WsRelayRecordBuilder(1).setTimeout(300).build())));
    expect(err).toMatchObject({ code: RelayErrorCode.TIMEOUT });
    await until(() => teardowns.get('cancel-far') === 2, 5000, 'the teardown at the deadline');
  });

  it('fans events out across relays with wildcards: one copy per queue group cluster-wide, every plain subscriber, acked with the count', async () => {
    await provider(1, 'sub-plain-1');
    await provider(2, 'sub-plain-2');
    await provider(1, 'sub-q-1', { queue: 'billing' });
    await provider(2, 'sub-q-2', { queue: 'billing' });
    const c = await client(0, 'emitter');
    await discoverUntil(c, ['sub-plain-1', 'sub-plain-2', 'sub-q-1', 'sub-q-2']);
    const acks = [];
    for (let i = 0; i < 6; i++) acks.push(await firstValueFrom(c.emit('orders.created', { i })));
    expect(acks).toEqual(Array(6).fill({ recipients: 3 }));
    await until(() => handled.length === 18, 5000, '18 deliveries');
    const by = (node: string) => handled.filter(h => h.node === node).length;
    expect([by('sub-plain-1'), by('sub-plain-2')]).toEqual([6, 6]);
    expect(by('sub-q-1') + by('sub-q-2')).toBe(6);
    expect(by('sub-q-1')).toBeGreaterThan(0);
    expect(by('sub-q-2')).toBeGreaterThan(0);
    expect(handled.every(h => h.subject === 'orders.created')).toBe(true);
    // A subject no pattern matches reaches nobody.
    expect(await firstValueFrom(c.emit('orders.eu.created', 1))).toEqual({ recipients: 0 });
  });

  it('waits (waitFor) for a provider that comes online on another relay', async () => {
    const c = await client(0, 'waiter');
    const waiting = c.waitFor('whoami', 10_000);
    await provider(2, 'late-far');
    await waiting;
    expect(await firstValueFrom(c.send<{ node: string }>('whoami', 1))).toMatchObject({ node: 'late-far' });
  });

  it('keeps tenants apart across relays: RPC, targeting, events and discovery', async () => {
    await provider(1, 'acme-provider', { tenant: 'acme' });
    const acme = await client(2, 'acme-caller', 'acme');
    const globex = await client(0, 'globex-caller', 'globex');
    await discoverUntil(acme, ['acme-provider']);
    expect(await firstValueFrom(acme.send('whoami', 1))).toMatchObject({ node: 'acme-provider', tenant: 'acme' });
    expect(await rejection(firstValueFrom(globex.send('whoami', 1)))).toMatchObject({ code: RelayErrorCode.MICROSERVICE_OFFLINE });
    expect(
      await rejection(firstValueFrom(globex.send('whoami', new WsRelayRecordBuilder(1).setNodeId('acme-provider').build()))),
    ).toMatchObject({ code: RelayErrorCode.MICROSERVICE_OFFLINE });
    expect(await firstValueFrom(globex.emit('orders.created', 1))).toEqual({ recipients: 0 });
    expect(await firstValueFrom(acme.emit('orders.created', 2))).toEqual({ recipients: 1 });
    expect((await globex.discover()).map(n => n.nodeId)).toEqual(['globex-caller']);
    // The same node id in another tenant is another node.
    await provider(0, 'acme-provider', { tenant: 'globex' });
    await discoverUntil(globex, ['acme-provider']);
    expect(await firstValueFrom(globex.send('whoami', 1))).toMatchObject({ node: 'acme-provider', tenant: 'globex' });
    await until(() => handled.length === 1, 5000, 'the acme event');
    expect(handled).toEqual([{ node: 'acme-provider', subject: 'orders.created', data: 2 }]);
  });

  it('lists the nodes of every relay in discovery, and forgets a provider that closed', async () => {
    const p = await provider(1, 'disc-1');
    await provider(2, 'disc-2');
    const c = await client(0, 'disc-caller');
    await discoverUntil(c, ['disc-1', 'disc-2', 'disc-caller']);
    await p.close();
    const nodes = await discoverUntil(c, ids => !ids.includes('disc-1'), 'disc-1 gone');
    expect(nodes).toContain('disc-2');
  });
});
