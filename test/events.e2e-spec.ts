/**
 * Events through a real relay: NATS-style wildcards, queue groups (one copy
 * per group, round-robin within it) and the relay's ack with the recipient count.
 */
import { Controller, Inject } from '@nestjs/common';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { type WsRelayClient, WsRelayContext, type WsRelayEventAck, WsRelayRecordBuilder } from '@wsrelay/transport';
import { firstValueFrom } from 'rxjs';
import { type RunningProvider, type RunningRelay, startClient, startProvider, startRelay, until } from './support/harness.js';

const LABEL = 'LABEL';

interface Seen {
  node: string;
  handler: string;
  subject: string;
  data: unknown;
  caller: string | null;
}
const seen: Seen[] = [];

@Controller()
class StarController {
  constructor(@Inject(LABEL) private readonly label: string) {}
  @EventPattern<string>('orders.*')
  onAny(@Payload() data: unknown, @Ctx() ctx: WsRelayContext) {
    seen.push({ node: this.label, handler: 'orders.*', subject: ctx.getPattern(), data, caller: ctx.getCallerId() });
  }
}

@Controller()
class TailController {
  constructor(@Inject(LABEL) private readonly label: string) {}
  @EventPattern<string>('orders.>')
  onTail(@Payload() data: unknown, @Ctx() ctx: WsRelayContext) {
    seen.push({ node: this.label, handler: 'orders.>', subject: ctx.getPattern(), data, caller: ctx.getCallerId() });
  }
  @EventPattern<string>('orders.created')
  onCreated(@Payload() data: unknown, @Ctx() ctx: WsRelayContext) {
    seen.push({ node: this.label, handler: 'orders.created', subject: ctx.getPattern(), data, caller: ctx.getCallerId() });
  }
}

@Controller()
class WorkerController {
  constructor(@Inject(LABEL) private readonly label: string) {}
  @EventPattern<string>('jobs.run')
  run(@Payload() data: unknown, @Ctx() ctx: WsRelayContext) {
    seen.push({ node: this.label, handler: 'jobs.run', subject: ctx.getPattern(), data, caller: ctx.getCallerId() });
  }
}

describe('events through the relay', () => {
  let relay: RunningRelay;
  let client: WsRelayClient;
  const providers: RunningProvider[] = [];
  const label = (l: string) => [{ provide: LABEL, useValue: l }];

  beforeAll(async () => {
    relay = await startRelay();
    providers.push(await startProvider([StarController], { urls: [relay.url], nodeId: 'star' }, label('star')));
    providers.push(await startProvider([TailController], { urls: [relay.url], nodeId: 'tail' }, label('tail')));
    for (const w of ['w1', 'w2', 'w3']) {
      providers.push(await startProvider([WorkerController], { urls: [relay.url], nodeId: w, queue: 'workers' }, label(w)));
    }
    providers.push(await startProvider([WorkerController], { urls: [relay.url], nodeId: 'audit' }, label('audit')));
    client = await startClient({ urls: [relay.url], nodeId: 'emitter' });
  });

  afterAll(async () => {
    await client.close();
    for (const p of providers) await p.close();
    await relay.close();
  });

  beforeEach(() => {
    seen.length = 0;
  });

  it('delivers to every matching wildcard subscriber and acks the node count', async () => {
    const ack = await firstValueFrom(client.emit<WsRelayEventAck>('orders.created', { id: 1 }));
    expect(ack).toEqual({ recipients: 2 });
    await until(() => seen.length === 3, 5000, 'three handler runs');
    expect(seen.map(s => `${s.node}:${s.handler}`).sort()).toEqual(['star:orders.*', 'tail:orders.>', 'tail:orders.created']);
    expect(seen.every(s => s.subject === 'orders.created' && s.caller === 'emitter')).toBe(true);
    expect(seen[0].data).toEqual({ id: 1 });
  });

  it('matches ">" over several tokens and "*" over exactly one', async () => {
    expect(await firstValueFrom(client.emit('orders.eu.created', { id: 2 }))).toEqual({ recipients: 1 });
    await until(() => seen.length === 1, 5000, 'one handler run');
    expect(seen[0]).toMatchObject({ node: 'tail', handler: 'orders.>', subject: 'orders.eu.created' });
    expect(await firstValueFrom(client.emit('orders', {}))).toEqual({ recipients: 0 });
  });

  it('acks 0 recipients when nobody subscribes', async () => {
    expect(await firstValueFrom(client.emit('nobody.listens', { x: 1 }))).toEqual({ recipients: 0 });
  });

  it('gives one copy per queue group, round-robin within it, and one to each plain subscriber', async () => {
    for (let i = 0; i < 6; i++) {
      expect(await firstValueFrom(client.emit('jobs.run', { i }))).toEqual({ recipients: 2 });
    }
    await until(() => seen.length === 12, 5000, 'twelve handler runs');
    const byNode = seen.reduce<Record<string, number>>((m, s) => ({ ...m, [s.node]: (m[s.node] ?? 0) + 1 }), {});
    expect(byNode).toEqual({ audit: 6, w1: 2, w2: 2, w3: 2 });
    const workerData = seen.filter(s => s.node !== 'audit').map(s => (s.data as { i: number }).i);
    expect(workerData.sort()).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('delivers to one node only with setNodeId', async () => {
    const record = new WsRelayRecordBuilder({ only: true }).setNodeId('w2').build();
    expect(await firstValueFrom(client.emit('jobs.run', record))).toEqual({ recipients: 1 });
    await until(() => seen.length === 1, 5000, 'one handler run');
    expect(seen[0].node).toBe('w2');
  });

  it('fires emit() even when nobody subscribes to its Observable (hot, as in Nest)', async () => {
    client.emit('jobs.run', { fireAndForget: true });
    await until(() => seen.length === 2, 5000, 'delivery without subscription');
  });
});
