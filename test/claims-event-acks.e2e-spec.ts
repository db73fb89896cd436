/**
 * Handler acks as the README states them and no other spec pins: a client
 * created with `eventAck: 'handlers'` makes every plain `emit()` wait for the
 * handlers (a record's `setAck('relay')` still overrides it), and handler acks
 * work across two relays clustered over a real Redis (subscriber on relay B,
 * emitter on relay A).
 */
import { Controller, Inject } from '@nestjs/common';
import { Ctx, EventPattern, Payload, RpcException } from '@nestjs/microservices';
import { RelayErrorCode } from '@wsrelay/protocol';
import { type RelayError, type WsRelayClient, WsRelayContext, WsRelayRecordBuilder } from '@wsrelay/transport';
import { randomBytes } from 'node:crypto';
import { firstValueFrom } from 'rxjs';
import { CLUSTER_TIMING, discoverUntil } from './support/cluster.js';
import { rejection, type RunningRelay, startClient, startProvider, startRelay, until, useCleanup } from './support/harness.js';
import { useTestRedis } from './support/redis.js';
import { RelayCore } from '@wsrelay/relay';

const NODE = Symbol('node');
/** What happened, in order: 'started:<node>', 'handled:<node>', 'ack'. */
const order: string[] = [];
/** Releases of the slow handlers waiting, in the order they started. */
const releases: Array<() => void> = [];

@Controller()
class JobsController {
  constructor(@Inject(NODE) private readonly node: string) {}

  @EventPattern<string>('jobs.*')
  async onJob(@Payload() data: { slow?: boolean; fail?: boolean }, @Ctx() ctx: WsRelayContext) {
    order.push(`started:${this.node}`);
    if (data.slow) await new Promise<void>(resolve => releases.push(resolve));
    order.push(`handled:${this.node}`);
    if (data.fail) throw new RpcException({ code: 'JOB_REJECTED', subject: ctx.getPattern(), node: this.node });
  }
}

/** The ack of an emit, noting 'ack' in `order` when it arrives. */
const acked = (client: WsRelayClient, pattern: string, data: unknown) =>
  firstValueFrom(client.emit<{ recipients: number }>(pattern, data)).then(ack => (order.push('ack'), ack));

describe('handler acks: client-wide and across a Redis cluster', () => {
  afterEach(() => {
    // Handlers still held first: a provider's close() waits for its handlers.
    for (const r of releases.splice(0)) r();
  });
  const { track } = useCleanup();
  afterEach(() => {
    order.length = 0;
  });
  const redis = useTestRedis();

  async function provider(urls: string[], nodeId: string): Promise<void> {
    track(await startProvider([JobsController], { urls, nodeId }, [{ provide: NODE, useValue: nodeId }]));
  }

  it("eventAck: 'handlers' on the client: a plain emit completes only once every handler finished, and fails when one threw", async () => {
    const relay = track(await startRelay());
    await provider([relay.url], 'h-1');
    await provider([relay.url], 'h-2');
    const client = track(await startClient({ urls: [relay.url], eventAck: 'handlers' }));
    const ack = acked(client, 'jobs.build', { slow: true });
    await until(() => releases.length === 2, 5000, 'both handlers to start');
    releases.shift()!();
    releases.shift()!();
    expect(await ack).toEqual({ recipients: 2 });
    // Both handlers finished before the emit completed.
    expect(order.slice(0, 2).sort()).toEqual(['started:h-1', 'started:h-2']);
    expect(order.slice(2, 4).sort()).toEqual(['handled:h-1', 'handled:h-2']);
    expect(order.slice(4)).toEqual(['ack']);
    // A handler's error fails the plain emit, naming the node, as with setAck('handlers').
    const err = (await rejection(firstValueFrom(client.emit('jobs.run', { fail: true })))) as RelayError;
    expect(err.code).toBe(RelayErrorCode.HANDLER_FAILED);
    expect(err.details).toEqual(
      expect.arrayContaining([
        { nodeId: 'h-1', code: 'HANDLER_ERROR', error: { code: 'JOB_REJECTED', subject: 'jobs.run', node: 'h-1' } },
        { nodeId: 'h-2', code: 'HANDLER_ERROR', error: { code: 'JOB_REJECTED', subject: 'jobs.run', node: 'h-2' } },
      ]),
    );
  });

  it("eventAck: 'handlers' on the client: a record's setAck('relay') still completes at the relay, handlers still running", async () => {
    const relay = track(await startRelay());
    await provider([relay.url], 'h-3');
    const client = track(await startClient({ urls: [relay.url], eventAck: 'handlers' }));
    const record = new WsRelayRecordBuilder({ slow: true }).setAck('relay').setTimeout(3000).build();
    expect(await acked(client, 'jobs.quick', record)).toEqual({ recipients: 1 });
    await until(() => releases.length === 1, 5000, 'the handler to start');
    // The handler is held: the ack came without it.
    expect(order).not.toContain('handled:h-3');
    releases.shift()!();
    await until(() => order.includes('handled:h-3'), 5000, 'the handler to finish');
  });

  /** Relays A and B in this process, clustered over the suite's Redis (a channel prefix of their own), once each sees the other. */
  async function redisPair(): Promise<[RunningRelay, RunningRelay]> {
    const settings = { redis: redis.url, channelPrefix: `wsrelay-claims-${randomBytes(4).toString('hex')}`, ...CLUSTER_TIMING };
    const a = track(await startRelay({ relayId: 'A', cluster: settings }));
    const b = track(await startRelay({ relayId: 'B', cluster: settings }));
    const cluster = (r: RunningRelay) => r.app.get(RelayCore).status().cluster;
    await until(() => [a, b].every(r => cluster(r).healthy && cluster(r).relays.length === 1), 10_000, 'the relays to see each other');
    return [a, b];
  }

  it("over Redis: an emit with ack: 'handlers' on relay A completes once the subscriber on relay B has finished", async () => {
    const [a, b] = await redisPair();
    await provider([b.url], 'sub-b');
    const client = track(await startClient({ urls: [a.url] }));
    await discoverUntil(client, ['sub-b']);
    const handlers = (data: unknown) => new WsRelayRecordBuilder(data).setAck('handlers').setTimeout(10_000).build();
    const ack = acked(client, 'jobs.far', handlers({ slow: true }));
    await until(() => releases.length === 1, 10_000, 'the handler on relay B to start');
    releases.shift()!();
    expect(await ack).toEqual({ recipients: 1 });
    expect(order).toEqual(['started:sub-b', 'handled:sub-b', 'ack']);
    // Its error crosses back too, with the node that failed.
    const err = (await rejection(firstValueFrom(client.emit('jobs.far', handlers({ fail: true }))))) as RelayError;
    expect(err.code).toBe(RelayErrorCode.HANDLER_FAILED);
    expect(err.details).toEqual([
      { nodeId: 'sub-b', code: 'HANDLER_ERROR', error: { code: 'JOB_REJECTED', subject: 'jobs.far', node: 'sub-b' } },
    ]);
    // A plain emit is acked by relay A with the remote recipient counted.
    expect(await firstValueFrom(client.emit('jobs.far', {}))).toEqual({ recipients: 1 });
  });
});
