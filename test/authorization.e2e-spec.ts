/**
 * What an authenticated connection may do: server/client gating, node ids
 * bound to their connection and subject, per-pattern permissions for call,
 * serve, publish and subscribe, and tenants that never see each other.
 */
import { expect } from '@jest/globals';
import { Controller } from '@nestjs/common';
import { Ctx, EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { CloseCode, encodePayload, FrameType, RelayErrorCode, ResponseFlag } from '@wsrelay/protocol';
import type { RelayCore } from '@wsrelay/relay';
import { RelayCore as RouterToken } from '@wsrelay/relay';
import { type RelayError, type WsRelayClient, WsRelayContext, WsRelayRecordBuilder } from '@wsrelay/transport';
import { firstValueFrom } from 'rxjs';
import { rejection, type RunningRelay, startClient, startProvider, startRelay, until } from './support/harness.js';
import { request } from './support/frames.js';
import { claim, helloFrame, RawNode } from './support/raw-node.js';
import { AUDIENCE, bearer, CLIENT, ISSUER, type Mint, mint, SECRET, SERVER } from './support/tokens.js';

const seen: Array<{ tenant: string; subject: string; data: unknown }> = [];

@Controller()
class TenantController {
  @MessagePattern('echo')
  echo(@Payload() data: unknown, @Ctx() ctx: WsRelayContext) {
    return { data, tenant: ctx.getClaims()?.tenant ?? null };
  }

  @MessagePattern('admin.reset')
  reset() {
    return 'reset';
  }

  @EventPattern<string>('audit.>')
  audit(@Payload() data: unknown, @Ctx() ctx: WsRelayContext) {
    seen.push({ tenant: String(ctx.getClaims()?.tenant), subject: ctx.getPattern(), data });
  }
}

const auth = { secret: SECRET, issuer: ISSUER, audience: AUDIENCE };
const code = async (p: Promise<unknown>) => ((await rejection(p)) as RelayError).code;

describe('authorization', () => {
  let relay: RunningRelay;
  let router: RelayCore;

  beforeAll(async () => {
    relay = await startRelay({ auth });
    router = relay.app.get(RouterToken);
  });

  afterAll(() => relay.close());

  describe('server connections and passive clients', () => {
    it('refuses a passive client that announces patterns or subscriptions (FORBIDDEN, close 4403)', async () => {
      const node = await RawNode.open(relay.url, await bearer({ claims: CLIENT }));
      node.send(helloFrame('sneaky', { patterns: ['echo'] }));
      const err = await node.next(f => f.type === FrameType.Error);
      expect(err).toMatchObject({ code: RelayErrorCode.FORBIDDEN, message: expect.stringMatching(/passive client/) });
      expect((await node.closed()).code).toBe(CloseCode.FORBIDDEN);
    });

    it('fails a provider started with a client token at listen(), without retrying', async () => {
      const err = await rejection(startProvider([TenantController], { urls: [relay.url], token: await mint({ claims: CLIENT }) }));
      expect((err as RelayError).code).toBe(RelayErrorCode.FORBIDDEN);
    });

    it('lets a passive client call and emit, but not answer requests', async () => {
      const provider = await startProvider([TenantController], {
        urls: [relay.url],
        nodeId: 'gate-p',
        token: () => mint({ claims: SERVER }),
      });
      const client = await startClient({ urls: [relay.url], token: await mint({ claims: CLIENT }) });
      try {
        expect(await firstValueFrom(client.send('echo', 1))).toMatchObject({ data: 1 });
        expect(await firstValueFrom(client.emit('audit.gate', 1))).toEqual({ recipients: 1 });
        const raw = await RawNode.hello(relay.url, 'gate-raw', await bearer({ claims: CLIENT }));
        raw.send({ type: FrameType.Response, id: 1, flags: ResponseFlag.DONE, payload: encodePayload({ response: 'forged' }) });
        expect(await raw.next(f => f.type === FrameType.Error)).toMatchObject({ code: RelayErrorCode.FORBIDDEN });
        raw.close();
      } finally {
        await client.close();
        await provider.close();
      }
    });

    it('classifies connections with a custom isServerConnection', async () => {
      const custom = await startRelay({ auth, isServerConnection: claims => claims?.scope === 'mesh' });
      try {
        const server = await RawNode.hello(custom.url, 'custom-s', { ...(await bearer({ claims: { scope: 'mesh' } })), patterns: ['x'] });
        const client = await RawNode.open(custom.url, await bearer({ claims: { role: 'server' } }));
        client.send(helloFrame('custom-c', { patterns: ['x'] }));
        expect(await client.next(f => f.type === FrameType.Error)).toMatchObject({ code: RelayErrorCode.FORBIDDEN });
        server.close();
      } finally {
        await custom.close();
      }
    });
  });

  describe('node identity', () => {
    it('refuses a second connection for a live node id, even with the same subject', async () => {
      const first = await RawNode.hello(relay.url, 'taken', await bearer({ sub: 'svc-a', claims: SERVER }));
      const second = await RawNode.open(relay.url, await bearer({ sub: 'svc-a', claims: SERVER }));
      second.send(helloFrame('taken'));
      expect(await second.next(f => f.type === FrameType.Error)).toMatchObject({ code: RelayErrorCode.NODE_ID_CONFLICT });
      expect((await second.closed()).code).toBe(CloseCode.NODE_ID_CONFLICT);
      first.close();
    });

    it('keeps a node id bound to its token subject after it disconnects; its owner may take it back', async () => {
      const owner = await RawNode.hello(relay.url, 'bound', await bearer({ sub: 'svc-owner', claims: SERVER }));
      owner.close();
      await owner.closed();
      const thief = await RawNode.open(relay.url, await bearer({ sub: 'svc-thief', claims: SERVER }));
      // The relay may not have seen the owner's close yet; either way the thief is refused.
      thief.send(helloFrame('bound'));
      expect(await thief.next(f => f.type === FrameType.Error)).toMatchObject({ code: RelayErrorCode.NODE_ID_CONFLICT });
      await thief.closed();
      const back = await reconnectUntilWelcome(relay.url, 'bound', { sub: 'svc-owner', claims: SERVER });
      back.close();
    });

    it('drops a response from a server the request was not routed to, and a cancel from anyone but its caller, and counts them', async () => {
      const provider = await RawNode.hello(relay.url, 'real', { ...(await bearer({ claims: SERVER })), patterns: ['spoof.me'] });
      const spoofer = await RawNode.hello(relay.url, 'spoofer', await bearer({ claims: SERVER }));
      const caller = await RawNode.hello(relay.url, 'victim', await bearer({ claims: CLIENT }));
      caller.send(request(7, 'spoof.me', 5000, { payload: encodePayload(1) }));
      const req = await provider.next(f => f.type === FrameType.Request);
      const dropped = router.diagnostics().droppedFrames;
      const id = (req as { id: number }).id;
      spoofer.send({ type: FrameType.Response, id, flags: ResponseFlag.DONE, payload: encodePayload({ response: 'forged' }) });
      await until(() => router.diagnostics().droppedFrames === dropped + 1, 2000, 'the spoofed response to be dropped');
      // The caller's id and the relay's id, from a connection that made neither.
      spoofer.send({ type: FrameType.Cancel, id: 7 });
      spoofer.send({ type: FrameType.Cancel, id });
      await until(() => router.diagnostics().droppedFrames === dropped + 3, 2000, 'the spoofed cancels to be dropped');
      provider.send({ type: FrameType.Response, id, flags: ResponseFlag.DONE, payload: encodePayload({ response: 'real' }) });
      const res = await caller.next(f => f.type === FrameType.Response);
      expect(res).toMatchObject({ id: 7, payload: encodePayload({ response: 'real' }) });
      expect(provider.frames.filter(f => f.type === FrameType.Cancel)).toEqual([]);
      for (const n of [provider, spoofer, caller]) n.close();
    });
  });

  describe('permissions', () => {
    it('limits calls to the patterns a token may call', async () => {
      const provider = await startProvider([TenantController], { urls: [relay.url], token: () => mint({ claims: SERVER }) });
      const client = await startClient({ urls: [relay.url], token: await mint({ claims: { ...CLIENT, perms: { call: ['echo'] } } }) });
      try {
        expect(await firstValueFrom(client.send('echo', 'ok'))).toMatchObject({ data: 'ok' });
        const err = (await rejection(firstValueFrom(client.send('admin.reset', {})))) as RelayError;
        expect(err.code).toBe(RelayErrorCode.FORBIDDEN);
        expect(err.message).toMatch(/calling "admin\.reset"/);
        // WAIT counts as a call.
        expect(await code(client.waitFor('admin.reset', 200))).toBe(RelayErrorCode.FORBIDDEN);
        // Nothing of a token's "perms" allows publishing here, so emitting is refused.
        expect(await code(firstValueFrom(client.emit('audit.x', 1)))).toBe(RelayErrorCode.FORBIDDEN);
      } finally {
        await client.close();
        await provider.close();
      }
    });

    it('refuses to announce patterns a token may not serve', async () => {
      const node = await RawNode.open(relay.url, await bearer({ claims: { ...SERVER, perms: { serve: ['orders.*'] } } }));
      node.send(helloFrame('perm-serve', { patterns: ['orders.get', 'admin.reset'] }));
      const err = await node.next(f => f.type === FrameType.Error);
      expect(err).toMatchObject({ code: RelayErrorCode.FORBIDDEN, message: expect.stringMatching(/serving "admin\.reset"/) });
      expect((await node.closed()).code).toBe(CloseCode.FORBIDDEN);
      const ok = await RawNode.hello(relay.url, 'perm-serve-ok', {
        ...(await bearer({ claims: { ...SERVER, perms: { serve: ['orders.*'] } } })),
        patterns: ['orders.get'],
      });
      ok.close();
    });

    it('checks a wildcard subscription as a whole against subscribe permissions', async () => {
      const token = { claims: { ...SERVER, perms: { subscribe: ['audit.eu.*'] } } };
      const wide = await RawNode.open(relay.url, await bearer(token));
      wide.send(helloFrame('sub-wide', { events: ['audit.>'] }));
      expect(await wide.next(f => f.type === FrameType.Error)).toMatchObject({ code: RelayErrorCode.FORBIDDEN });
      const narrow = await RawNode.hello(relay.url, 'sub-narrow', { ...(await bearer(token)), events: ['audit.eu.*'] });
      narrow.close();
    });

    it('limits emits to the subjects a token may publish', async () => {
      const client = await startClient({
        urls: [relay.url],
        token: await mint({ claims: { ...CLIENT, perms: { publish: ['audit.eu.>'] } } }),
      });
      try {
        expect(await firstValueFrom(client.emit('audit.eu.login', 1))).toEqual({ recipients: 0 });
        const err = (await rejection(firstValueFrom(client.emit('audit.us.login', 1)))) as RelayError;
        expect(err.code).toBe(RelayErrorCode.FORBIDDEN);
        expect(err.message).toMatch(/publishing "audit\.us\.login"/);
      } finally {
        await client.close();
      }
    });

    it('applies defaultPermissions to tokens without a permissions claim', async () => {
      const strict = await startRelay({ auth, defaultPermissions: { call: ['public.*'] } });
      try {
        const caller = await RawNode.hello(strict.url, 'default-perms', await bearer({ claims: CLIENT }));
        caller.send(request(1, 'private.x', 1000));
        expect(await caller.next(f => f.type === FrameType.Error)).toMatchObject({ id: 1, code: RelayErrorCode.FORBIDDEN });
        caller.send(request(2, 'public.x', 1000, { payload: encodePayload(1) }));
        expect(await caller.next(f => f.type === FrameType.Error)).toMatchObject({ id: 2, code: RelayErrorCode.MICROSERVICE_OFFLINE });
        caller.close();
      } finally {
        await strict.close();
      }
    });
  });

  describe('tenants', () => {
    let clients: WsRelayClient[] = [];
    const token = (tenant: string, claims: Record<string, unknown> = CLIENT) => mint({ claims: { ...claims, tenant } });

    afterEach(async () => {
      await Promise.all(clients.map(c => c.close()));
      clients = [];
    });

    const client = async (tenant: string, nodeId?: string) => {
      const c = await startClient({ urls: [relay.url], nodeId, token: await token(tenant) });
      clients.push(c);
      return c;
    };

    it('routes RPC, events, targeting and discovery only within a tenant', async () => {
      seen.length = 0;
      const a = await startProvider([TenantController], { urls: [relay.url], nodeId: 'shared-id', token: () => token('acme', SERVER) });
      // The same node id in another tenant is another node.
      const b = await startProvider([TenantController], { urls: [relay.url], nodeId: 'shared-id', token: () => token('globex', SERVER) });
      try {
        const acme = await client('acme');
        const globex = await client('globex');
        const initech = await client('initech');
        expect(await firstValueFrom(acme.send('echo', 1))).toEqual({ data: 1, tenant: 'acme' });
        expect(await firstValueFrom(globex.send('echo', 2))).toEqual({ data: 2, tenant: 'globex' });
        expect(await code(firstValueFrom(initech.send('echo', 3)))).toBe(RelayErrorCode.MICROSERVICE_OFFLINE);

        const targeted = new WsRelayRecordBuilder({}).setNodeId('shared-id').build();
        expect(await firstValueFrom(acme.send('echo', targeted))).toMatchObject({ tenant: 'acme' });
        expect(await code(firstValueFrom(initech.send('echo', targeted)))).toBe(RelayErrorCode.MICROSERVICE_OFFLINE);

        expect(await firstValueFrom(acme.emit('audit.login', 'a'))).toEqual({ recipients: 1 });
        expect(await firstValueFrom(initech.emit('audit.login', 'i'))).toEqual({ recipients: 0 });
        await until(() => seen.length === 1, 2000, 'the acme event');
        expect(seen).toEqual([{ tenant: 'acme', subject: 'audit.login', data: 'a' }]);

        const nodes = await acme.discover();
        expect(nodes.filter(n => n.nodeId === 'shared-id')).toHaveLength(1);
        expect(await initech.discover()).toEqual(expect.not.arrayContaining([expect.objectContaining({ nodeId: 'shared-id' })]));
      } finally {
        await a.close();
        await b.close();
      }
    });
  });
});

/** HELLO until WELCOME: the relay may still be dropping an earlier connection with this node id. */
async function reconnectUntilWelcome(url: string, nodeId: string, m: Mint): Promise<RawNode> {
  for (let attempt = 0; ; attempt++) {
    const { node, answer: first } = await claim(url, nodeId, await bearer(m));
    if (first.type === FrameType.Welcome) return node;
    if (attempt > 50) throw new Error(`node id ${nodeId} never became free: ${JSON.stringify(first)}`);
    await node.closed();
  }
}
