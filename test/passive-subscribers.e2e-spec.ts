/**
 * Passive subscribers: a passive (non-server) connection, such as a browser,
 * may subscribe to the event subjects its token's `subscribe` permission
 * covers, and to nothing else, without becoming able to serve or answer.
 * Before, any subscription from a passive client was refused; now it is
 * judged as a server's is, its handler-acked copies are plain ones it need
 * not (and cannot) answer, and its queue groups are apart from servers'.
 */
import { expect } from '@jest/globals';
import { Controller } from '@nestjs/common';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { CloseCode, decodePayload, encodePayload, type EventFrame, FrameType, RelayErrorCode, ResponseFlag } from '@wsrelay/protocol';
import { RelayCore } from '@wsrelay/relay';
import { type WsRelayClient, WsRelayContext, type WsRelayEventAck, WsRelayRecordBuilder } from '@wsrelay/transport';
import { firstValueFrom } from 'rxjs';
import { inProcessCluster } from './support/cluster.js';
import { type RunningRelay, startClient, startProvider, startRelay, until, useCleanup } from './support/harness.js';
import { helloFrame, RawNode } from './support/raw-node.js';
import { AUDIENCE, bearer, CLIENT, ISSUER, mint, SECRET, SERVER } from './support/tokens.js';

const handled: Array<{ subject: string; attempt: number; data: unknown }> = [];

@Controller()
class OrdersController {
  @EventPattern<string>('orders.*')
  onOrder(@Payload() data: unknown, @Ctx() ctx: WsRelayContext) {
    handled.push({ subject: ctx.getPattern(), attempt: ctx.getAttempt(), data });
  }
}

const auth = { secret: SECRET, issuer: ISSUER, audience: AUDIENCE };
/** A browser's claims: passive, subscribing where `subscribe` says (and calling and emitting nothing). */
const browserClaims = (subscribe: string[], extra: Record<string, unknown> = {}) => ({ ...CLIENT, perms: { subscribe }, ...extra });
const handlersAck = <T>(data: T) => new WsRelayRecordBuilder(data).setAck('handlers').build();
const eventsOf = (node: RawNode) => node.frames.filter((f): f is EventFrame => f.type === FrameType.Event);

describe('passive subscribers', () => {
  let relay: RunningRelay;
  const { add, track } = useCleanup();

  beforeAll(async () => {
    relay = await startRelay({ auth });
  });

  afterAll(() => relay.close());

  afterEach(async () => {
    handled.length = 0;
    // A subscriber of one test still in routing would be counted by the next one's emits.
    const core = relay.app.get(RelayCore);
    await until(() => core.status().connections === 0, 5000, "the test's connections to be gone");
  });

  /** A passive client that said HELLO subscribing to `events` (WELCOME had), closed after the test. */
  async function browser(nodeId: string, events: string[], claims: Record<string, unknown>, queue?: string): Promise<RawNode> {
    return track(await RawNode.hello(relay.url, nodeId, { ...(await bearer({ sub: nodeId, claims })), events, queue }));
  }

  async function emitter(claims: Record<string, unknown>): Promise<WsRelayClient> {
    return track(await startClient({ urls: [relay.url], token: await mint({ claims }) }));
  }

  /** A passive client's HELLO that the relay refuses: the ERROR, then the close code. */
  async function refusedHello(claims: Record<string, unknown>, hello: Parameters<typeof helloFrame>[1]) {
    const node = track(await RawNode.open(relay.url, await bearer({ claims })));
    node.send(helloFrame('refused', hello));
    const error = await node.next(f => f.type === FrameType.Error);
    return { error, close: (await node.closed()).code };
  }

  describe('what a passive client may announce', () => {
    it('receives what a server and another passive client publish to its subjects, and nothing else', async () => {
      const tab = await browser('tab', ['orders.>'], browserClaims(['orders.>']));
      const server = await emitter(SERVER);
      const publisher = await emitter({ ...CLIENT, perms: { publish: ['orders.>', 'audit.>'] } });
      expect(await firstValueFrom(server.emit('audit.x', { secret: true }))).toEqual({ recipients: 0 });
      expect(await firstValueFrom(server.emit('orders.created', { by: 'server' }))).toEqual({ recipients: 1 });
      expect(await firstValueFrom(publisher.emit('audit.x', { secret: true }))).toEqual({ recipients: 0 });
      expect(await firstValueFrom(publisher.emit('orders.eu.created', { by: 'client' }))).toEqual({ recipients: 1 });
      await until(() => eventsOf(tab).length === 2, 5000, 'both events');
      // In order, per emitter: an audit.x delivered would have come before each.
      const events = eventsOf(tab);
      expect(events.map(e => [e.pattern, decodePayload(e.payload), e.flags])).toEqual([
        ['orders.created', { by: 'server' }, undefined],
        ['orders.eu.created', { by: 'client' }, undefined],
      ]);
    });

    it("is not given the emitter's verified claims, which a server subscriber gets", async () => {
      const tab = await browser('tab', ['orders.>'], browserClaims(['orders.>']));
      const service = track(await RawNode.hello(relay.url, 'service', { ...(await bearer({ claims: SERVER })), events: ['orders.>'] }));
      const server = await emitter({ ...SERVER, email: 'ops@example.com' });
      expect(await firstValueFrom(server.emit('orders.created', 1))).toEqual({ recipients: 2 });
      await until(() => eventsOf(tab).length === 1 && eventsOf(service).length === 1, 5000, 'both copies');
      expect(eventsOf(tab)[0].claims).toBeNull();
      expect(decodePayload(eventsOf(service)[0].claims!)).toMatchObject({ email: 'ops@example.com' });
    });

    it('is listed by DISCOVER without the service label it chose (it cannot pass itself off as a service)', async () => {
      const tab = track(
        await RawNode.hello(relay.url, 'labelled-tab', {
          ...(await bearer({ claims: browserClaims(['orders.>']) })),
          events: ['orders.>'],
          service: 'payments',
        }),
      );
      const service = track(
        await RawNode.hello(relay.url, 'billing-service', {
          ...(await bearer({ claims: SERVER })),
          events: ['orders.>'],
          service: 'billing',
        }),
      );
      service.send({ type: FrameType.Discover, id: 1 });
      const nodes = (await service.next(f => f.type === FrameType.Nodes)) as { nodes: Array<{ nodeId: string; service: string | null }> };
      expect(nodes.nodes.map(n => [n.nodeId, n.service]).sort()).toEqual([
        ['billing-service', 'billing'],
        ['labelled-tab', null],
      ]);
      expect(tab.closeCode).toBeUndefined();
    });

    it('may announce at most 32 subscriptions (FORBIDDEN, close 4403)', async () => {
      const many = Array.from({ length: 33 }, (_, i) => `orders.${i}`);
      const refused = await refusedHello(browserClaims(['orders.>']), { events: many });
      expect(refused.error).toMatchObject({
        code: RelayErrorCode.FORBIDDEN,
        message: expect.stringMatching(/at most 32 subjects; this HELLO has 33/),
      });
      expect(refused.close).toBe(CloseCode.FORBIDDEN);
      track(
        await RawNode.hello(relay.url, 'enough', { ...(await bearer({ claims: browserClaims(['orders.>']) })), events: many.slice(1) }),
      );
    });

    it('refuses a subscription its token does not cover (FORBIDDEN naming the subject, close 4403)', async () => {
      const wider = await refusedHello(browserClaims(['orders.>', 'audit.eu.*']), { events: ['orders.>', 'audit.>'] });
      expect(wider.error).toMatchObject({ code: RelayErrorCode.FORBIDDEN, message: expect.stringMatching(/subscribing to "audit\.>"/) });
      expect(wider.close).toBe(CloseCode.FORBIDDEN);
      // No permissions claim: the relay's default permissions never let a passive client subscribe.
      const unclaimed = await refusedHello(CLIENT, { events: ['orders.>'] });
      expect(unclaimed.error).toMatchObject({ code: RelayErrorCode.FORBIDDEN, message: expect.stringMatching(/"orders\.>"/) });
      expect(unclaimed.close).toBe(CloseCode.FORBIDDEN);
    });

    it('refuses patterns from a passive client, whatever its token grants (FORBIDDEN, close 4403)', async () => {
      const claims = { ...CLIENT, perms: { serve: ['>'], subscribe: ['>'] } };
      const serving = await refusedHello(claims, { patterns: ['orders.get'], events: ['orders.>'] });
      expect(serving.error).toMatchObject({ code: RelayErrorCode.FORBIDDEN, message: expect.stringMatching(/passive client/) });
      expect(serving.close).toBe(CloseCode.FORBIDDEN);
    });

    it('refuses RESPONSE and HANDLED from a passive subscriber, which keeps its subscription', async () => {
      const tab = await browser('answering-tab', ['orders.>'], browserClaims(['orders.>']));
      tab.send({ type: FrameType.Response, id: 1, flags: ResponseFlag.DONE, payload: encodePayload('forged') });
      expect(await tab.next(f => f.type === FrameType.Error)).toMatchObject({ id: 1, code: RelayErrorCode.FORBIDDEN });
      tab.send({ type: FrameType.Handled, id: 2, error: null });
      expect(await tab.next(f => f.type === FrameType.Error)).toMatchObject({ id: 2, code: RelayErrorCode.FORBIDDEN });
      const server = await emitter(SERVER);
      expect(await firstValueFrom(server.emit('orders.created', 1))).toEqual({ recipients: 1 });
      await tab.next(f => f.type === FrameType.Event);
    });
  });

  describe('events with handler acks', () => {
    it('give a passive subscriber a plain copy, and wait for and count the handlers only', async () => {
      const provider = await startProvider([OrdersController], { urls: [relay.url], token: () => mint({ claims: SERVER }) });
      add(() => provider.close());
      const tab = await browser('acked-tab', ['orders.>'], browserClaims(['orders.>']));
      const server = await emitter(SERVER);
      expect(await firstValueFrom(server.emit<WsRelayEventAck>('orders.created', handlersAck({ n: 1 })))).toEqual({ recipients: 1 });
      expect(handled).toEqual([{ subject: 'orders.created', attempt: 1, data: { n: 1 } }]);
      const plain = (await tab.next(f => f.type === FrameType.Event)) as EventFrame;
      expect(plain).toMatchObject({ pattern: 'orders.created', id: expect.any(Number) });
      expect([plain.flags, plain.attempt]).toEqual([undefined, undefined]);
      // Only the browser receives it: the emitter is answered at once, with no handler counted.
      expect(await firstValueFrom(server.emit<WsRelayEventAck>('orders.eu.created', handlersAck({ n: 2 })))).toEqual({ recipients: 0 });
      expect(await tab.next(f => f.type === FrameType.Event)).toMatchObject({ pattern: 'orders.eu.created' });
    });

    it("keep a passive queue group apart from a server's of the same name: the service gets every event", async () => {
      const worker = track(
        await RawNode.hello(relay.url, 'worker', { ...(await bearer({ claims: SERVER })), events: ['orders.*'], queue: 'g' }),
      );
      const tabs = [await browser('g-tab-1', ['orders.*'], browserClaims(['orders.>']), 'g')];
      tabs.push(await browser('g-tab-2', ['orders.*'], browserClaims(['orders.>']), 'g'));
      const server = await emitter(SERVER);
      for (let i = 0; i < 4; i++) expect(await firstValueFrom(server.emit('orders.created', i))).toEqual({ recipients: 2 });
      await until(() => eventsOf(worker).length === 4, 5000, 'the worker to get every event');
      await until(() => tabs.every(t => eventsOf(t).length === 2), 5000, 'the tabs to share the events');
      const acked = firstValueFrom(server.emit<WsRelayEventAck>('orders.created', handlersAck(4)));
      const copy = (await worker.next(f => f.type === FrameType.Event && f.attempt === 1)) as EventFrame;
      worker.send({ type: FrameType.Handled, id: copy.id, error: null });
      expect(await acked).toEqual({ recipients: 1 });
      await until(() => tabs.some(t => eventsOf(t).length === 3), 5000, "a tab's plain copy");
      expect(tabs.flatMap(eventsOf).every(e => e.flags === undefined)).toBe(true);
    });
  });

  it('stops delivering once a token refresh withdraws the grant', async () => {
    const tab = await browser('refreshing-tab', ['orders.>'], browserClaims(['orders.>']));
    const server = await emitter(SERVER);
    expect(await firstValueFrom(server.emit('orders.created', 1))).toEqual({ recipients: 1 });
    await tab.next(f => f.type === FrameType.Event);
    const narrower = await mint({ sub: 'refreshing-tab', claims: browserClaims(['audit.eu.*']) });
    tab.send({ type: FrameType.Auth, token: new TextEncoder().encode(narrower) });
    await tab.next(f => f.type === FrameType.Authorized);
    expect(await firstValueFrom(server.emit('orders.created', 2))).toEqual({ recipients: 0 });
    expect(eventsOf(tab)).toEqual([]);
  });

  it('keeps tenants apart: a passive subscriber hears only its own tenant', async () => {
    const acmeTab = await browser('tenant-tab', ['orders.>'], browserClaims(['orders.>'], { tenant: 'acme' }));
    // The same node id in another tenant is another node.
    const globexTab = await browser('tenant-tab', ['orders.>'], browserClaims(['orders.>'], { tenant: 'globex' }));
    const acme = await emitter({ ...SERVER, tenant: 'acme' });
    const initech = await emitter({ ...SERVER, tenant: 'initech' });
    expect(await firstValueFrom(initech.emit('orders.created', 'initech'))).toEqual({ recipients: 0 });
    expect(await firstValueFrom(acme.emit('orders.created', 'acme'))).toEqual({ recipients: 1 });
    expect(decodePayload(((await acmeTab.next(f => f.type === FrameType.Event)) as EventFrame).payload)).toBe('acme');
    expect(eventsOf(globexTab)).toEqual([]);
  });
});

describe('passive subscribers across relays', () => {
  it('get plain copies of handler-acked events published on another relay, which counts the handlers only', async () => {
    const cluster = await inProcessCluster();
    const cleanup: Array<() => unknown> = [];
    try {
      await cluster.ready();
      const provider = await startProvider([OrdersController], { urls: [cluster.urls[2]], token: () => mint({ claims: SERVER }) });
      cleanup.push(() => provider.close());
      const open = { ...(await bearer({ claims: browserClaims(['orders.>']) })), events: ['orders.>'] };
      const tab = await RawNode.hello(cluster.urls[1], 'far-tab', open);
      cleanup.push(() => tab.close());
      const server = await startClient({ urls: [cluster.urls[0]], token: await mint({ claims: SERVER }) });
      cleanup.push(() => server.close());
      const near = cluster.relays[0].app.get(RelayCore);
      await until(() => near.status().cluster.relays.every(r => r.nodes >= 1), 5000, 'presence of both nodes');
      expect(await firstValueFrom(server.emit<WsRelayEventAck>('orders.created', handlersAck({ n: 1 })))).toEqual({ recipients: 1 });
      expect(handled).toEqual([{ subject: 'orders.created', attempt: 1, data: { n: 1 } }]);
      const plain = (await tab.next(f => f.type === FrameType.Event)) as EventFrame;
      expect([plain.pattern, plain.flags, plain.attempt]).toEqual(['orders.created', undefined, undefined]);
    } finally {
      for (const fn of cleanup.reverse()) await fn();
      await cluster.close();
      handled.length = 0;
    }
  });
});
