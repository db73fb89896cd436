/**
 * Authentication at the relay with real signed tokens: every refusal is an
 * HTTP 401 before the socket opens, each token carrier works, each key kind
 * (HS256 secret, RS256/ES256 PEM, JWKS file and URL with rotation), the
 * caller's claims reach the provider, and a token expiring on a live
 * connection is refreshed in-band or closes the connection.
 */
import { expect } from '@jest/globals';
import { Controller } from '@nestjs/common';
import { Ctx, MessagePattern, Payload } from '@nestjs/microservices';
import { CloseCode, FrameType, RelayErrorCode } from '@wsrelay/protocol';
import { createRelayApp, type RelayModuleOptions } from '@wsrelay/relay';
import { RelayError, WsRelayClient, WsRelayContext, WsRelayStatus } from '@wsrelay/transport';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { firstValueFrom } from 'rxjs';
import { rejection, type RunningProvider, type RunningRelay, startClient, startProvider, startRelay, until } from './support/harness.js';
import { RawNode, refusal } from './support/raw-node.js';
import { AUDIENCE, bearer, CLIENT, ISSUER, keyPair, mint, SECRET, SERVER, unsigned } from './support/tokens.js';

/** What `whoami` answers. */
interface WhoAmI {
  claims: Record<string, unknown> | null;
  caller: string | null;
}

@Controller()
class WhoAmIController {
  @MessagePattern('whoami')
  whoami(@Payload() _: unknown, @Ctx() ctx: WsRelayContext): WhoAmI {
    return { claims: ctx.getClaims() ?? null, caller: ctx.getCallerId() };
  }
}

const hs = { secret: SECRET, issuer: ISSUER, audience: AUDIENCE };

/** Sends a bare upgrade request and resolves with the 101 response's headers. */
function upgradeHeaders(url: string, extra: Record<string, string>): Promise<IncomingHttpHeaders> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: u.hostname,
      port: u.port,
      path: u.pathname,
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': randomBytes(16).toString('base64'),
        ...extra,
      },
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve(res.headers);
    });
    req.on('response', res => reject(new Error(`upgrade refused with ${res.statusCode}`)));
    req.on('error', reject);
    req.end();
  });
}

describe('authentication', () => {
  let relay: RunningRelay;
  let provider: RunningProvider;

  beforeAll(async () => {
    relay = await startRelay({ auth: hs });
    provider = await startProvider([WhoAmIController], {
      urls: [relay.url],
      nodeId: 'whoami-provider',
      token: () => mint({ sub: 'svc-whoami', claims: SERVER }),
    });
  });

  afterAll(async () => {
    await provider.close();
    await relay.close();
  });

  describe('refuses with HTTP 401 before the socket opens', () => {
    it.each<[string, () => Promise<{ headers?: Record<string, string> }>, RegExp]>([
      ['no token', async () => ({}), /no token/],
      ['a malformed token', async () => bearer('not-a-jwt'), /malformed token/],
      ['an expired token', async () => bearer({ expiresIn: -60 }), /token expired/],
      ['a token not yet valid', async () => bearer({ notBefore: 120 }), /not yet valid/],
      ['a wrongly signed token', async () => bearer(await mint({}, new TextEncoder().encode(`${SECRET}-other`))), /signature/],
      ['a wrong issuer', async () => bearer({ issuer: 'https://evil.test' }), /issuer/],
      ['a wrong audience', async () => bearer({ audience: 'someone-else' }), /audience/],
      ['alg: none', async () => bearer(unsigned({ role: 'server' })), /algorithm|malformed/],
      ['an algorithm not accepted (HS512 where HS256 is configured)', async () => bearer({ alg: 'HS512' }), /algorithm/],
      ['a malformed permissions claim', async () => bearer({ claims: { perms: { call: 'x' } } }), /perms/],
    ])('%s', async (_what, options, reason) => {
      const r = await refusal(relay.url, await options());
      expect(r.status).toBe(401);
      expect(r.headers['x-wsrelay-error']).toBe(RelayErrorCode.UNAUTHORIZED);
      expect(r.body).toMatch(reason);
    });
  });

  it('accepts the token as a Bearer header, a ?token= query parameter or a subprotocol', async () => {
    const token = await mint({ sub: 'carrier', claims: CLIENT });
    for (const tokenCarrier of ['header', 'query', 'protocol'] as const) {
      const client = await startClient({ urls: [relay.url], token, tokenCarrier });
      const result = await firstValueFrom(client.send<WhoAmI>('whoami', {}));
      expect(result.claims).toMatchObject({ sub: 'carrier', role: 'client' });
      if (tokenCarrier === 'protocol') expect(client.unwrap().protocol).toBe('wsrelay.v1');
      await client.close();
    }
  });

  it('never echoes a token subprotocol back', async () => {
    const token = await mint({ claims: CLIENT });
    const node = await RawNode.open(relay.url, { protocols: [`access_token.${token}`, 'wsrelay.v1'] });
    expect(node.socket.protocol).toBe('wsrelay.v1');
    node.close();
    // Offered alone, the token is accepted and no subprotocol is selected at all.
    const headers = await upgradeHeaders(relay.url, { 'sec-websocket-protocol': `access_token.${token}` });
    expect(headers['sec-websocket-protocol']).toBeUndefined();
  });

  it("hands the caller's verified claims to the provider", async () => {
    const client = await startClient({
      urls: [relay.url],
      nodeId: 'claims-caller',
      token: await mint({ sub: 'alice', claims: { ...CLIENT, tenant: undefined, plan: 'gold' } }),
    });
    const result = await firstValueFrom(client.send<WhoAmI>('whoami', {}));
    expect(result).toMatchObject({ caller: 'claims-caller', claims: { sub: 'alice', plan: 'gold', iss: ISSUER } });
    await client.close();
  });

  it('fails connect() at once with UNAUTHORIZED and the reason, not after the 60 s connect timeout', async () => {
    // The node keeps retrying in the background (its token function may yield a
    // better token) until it is closed, as ClientsModule does on shutdown.
    const client = new WsRelayClient({ urls: [relay.url], token: await mint({ expiresIn: -60 }), connectTimeoutMs: 60_000 });
    try {
      const err = (await rejection(client.connect())) as RelayError;
      expect(err).toBeInstanceOf(RelayError);
      expect(err.code).toBe(RelayErrorCode.UNAUTHORIZED);
      expect(err.message).toMatch(/token expired/);
    } finally {
      await client.close();
    }
  });
});

describe('the relay at start', () => {
  /** Boots a relay with `options`, and returns what it warned about. */
  async function warningsOf(options: RelayModuleOptions): Promise<string[]> {
    const warnings: string[] = [];
    const quiet = () => undefined;
    const logger = { log: quiet, error: quiet, debug: quiet, verbose: quiet, warn: (m: unknown) => void warnings.push(String(m)) };
    const app = await createRelayApp(options, { logger });
    await app.listen(0, '127.0.0.1');
    await app.close();
    return warnings;
  }

  it('warns that any client can join routing when auth is off, and not when it is on', async () => {
    expect(await warningsOf({})).toEqual([expect.stringMatching(/Authentication is off: any client .* can join routing/)]);
    expect(await warningsOf({ auth: hs })).toEqual([]);
  });
});

describe('keys', () => {
  it.each(['RS256', 'ES256'] as const)('verifies %s tokens against a PEM public key', async alg => {
    const keys = await keyPair(alg);
    const relay = await startRelay({ auth: { publicKey: keys.publicPem, issuer: ISSUER } });
    try {
      const node = await RawNode.hello(relay.url, 'pem', await bearer(await mint({ alg }, keys.privateKey)));
      node.close();
      // An HS256 token made with the public key as its secret (the classic confusion attack) is refused.
      const confused = await mint({}, new TextEncoder().encode(keys.publicPem));
      expect((await refusal(relay.url, await bearer(confused))).status).toBe(401);
    } finally {
      await relay.close();
    }
  });

  it('verifies against a JWKS file and picks up a rotated key by kid', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wsrelay-jwks-'));
    const file = join(dir, 'jwks.json');
    const first = await keyPair('ES256', 'k1');
    const second = await keyPair('RS256', 'k2');
    writeFileSync(file, JSON.stringify({ keys: [first.jwk] }));
    const relay = await startRelay({ auth: { jwks: file, jwksCooldownMs: 0 } });
    try {
      const a = await RawNode.hello(relay.url, 'file-k1', await bearer(await mint({ alg: 'ES256', kid: 'k1' }, first.privateKey)));
      a.close();
      const k2 = await mint({ alg: 'RS256', kid: 'k2' }, second.privateKey);
      expect((await refusal(relay.url, await bearer(k2))).body).toMatch(/no key/);
      writeFileSync(file, JSON.stringify({ keys: [first.jwk, second.jwk] }));
      const b = await RawNode.hello(relay.url, 'file-k2', await bearer(k2));
      b.close();
    } finally {
      await relay.close();
    }
  });

  it('fetches a JWKS URL and refetches it when a token names an unknown kid', async () => {
    const first = await keyPair('RS256', 'old');
    const second = await keyPair('ES256', 'new');
    let keys = [first.jwk];
    let fetches = 0;
    const server: Server = createServer((_req, res) => {
      fetches++;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys }));
    });
    await new Promise<void>(r => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
    const relay = await startRelay({ auth: { jwks: url, jwksCooldownMs: 0 } });
    try {
      const a = await RawNode.hello(relay.url, 'url-old', await bearer(await mint({ alg: 'RS256', kid: 'old' }, first.privateKey)));
      a.close();
      expect(fetches).toBe(1);
      keys = [second.jwk];
      const b = await RawNode.hello(relay.url, 'url-new', await bearer(await mint({ alg: 'ES256', kid: 'new' }, second.privateKey)));
      b.close();
      expect(fetches).toBe(2);
    } finally {
      await relay.close();
      await new Promise(r => server.close(r));
    }
  });
});

describe('token expiry on a live connection', () => {
  it('warns, takes a fresh token in-band with its new permissions, without reconnecting', async () => {
    // expiryWarningMs is longer than the token's life, so the warning comes at once.
    const relay = await startRelay({ auth: { ...hs, expiryWarningMs: 3_600_000 } });
    const provider = await startProvider([WhoAmIController], {
      urls: [relay.url],
      token: () => mint({ claims: SERVER }),
    });
    let round = 0;
    const perms = [{ call: ['nothing'] }, { call: ['whoami'] }];
    let client: WsRelayClient | undefined;
    try {
      client = await startClient({
        urls: [relay.url],
        nodeId: 'refresher',
        token: () => mint({ sub: 'refresher', expiresIn: 600, claims: { ...CLIENT, perms: perms[Math.min(round++, 1)] } }),
      });
      const socket = client.unwrap();
      const refreshed = new Promise<number>(resolve => client?.on('token_refreshed', resolve));
      // The first token may not call whoami; the refreshed one may.
      expect(((await rejection(firstValueFrom(client.send('whoami', {})))) as RelayError).code).toBe(RelayErrorCode.FORBIDDEN);
      expect(await refreshed).toBeGreaterThan(Date.now());
      const result = await firstValueFrom(client.send<WhoAmI>('whoami', {}));
      expect(result.claims?.perms).toEqual({ call: ['whoami'] });
      expect(client.unwrap()).toBe(socket);
    } finally {
      await client?.close();
      await provider.close();
      await relay.close();
    }
  });

  it('refuses a refreshed token for another subject and keeps the connection until expiry', async () => {
    const relay = await startRelay({ auth: hs });
    try {
      const node = await RawNode.hello(relay.url, 'swapper', await bearer({ sub: 'alice' }));
      node.send({ type: FrameType.Auth, token: new TextEncoder().encode(await mint({ sub: 'mallory' })) });
      const err = await node.next(f => f.type === FrameType.Error);
      expect(err).toMatchObject({ code: RelayErrorCode.UNAUTHORIZED, message: expect.stringMatching(/different subject/) });
      node.send({ type: FrameType.Discover, id: 1 });
      await node.next(f => f.type === FrameType.Nodes);
      node.close();
    } finally {
      await relay.close();
    }
  });

  it('closes a connection whose token expires unrefreshed (4401), and the node reconnects with a fresh token', async () => {
    const relay = await startRelay({ auth: { ...hs, expiryWarningMs: 500 } });
    try {
      // A raw node never answers TOKEN_EXPIRING.
      const raw = await RawNode.hello(relay.url, 'expiring', await bearer({ expiresIn: 1 }));
      const warning = await raw.next(f => f.type === FrameType.TokenExpiring);
      expect(warning).toMatchObject({ expiresAt: expect.any(Number) });
      expect(await raw.closed()).toEqual({ code: CloseCode.UNAUTHORIZED, reason: 'token expired' });

      // A provider whose token source fails at refresh time is closed at expiry, then
      // reconnects with a fresh token (its token function is asked on every attempt).
      let asked = 0;
      const provider = await startProvider([WhoAmIController], {
        urls: [relay.url],
        nodeId: 'short-lived',
        token: async () => {
          asked++;
          if (asked === 1) return mint({ expiresIn: 1, claims: SERVER });
          if (asked === 2) throw new Error('token issuer unavailable');
          return mint({ claims: SERVER });
        },
      });
      const states: string[] = [];
      provider.strategy.status.subscribe(s => states.push(s));
      await until(() => asked >= 3 && states.at(-1) === WsRelayStatus.CONNECTED, 5000, 'the provider to reconnect');
      expect(states).toContain(WsRelayStatus.DISCONNECTED);
      const client = await startClient({ urls: [relay.url], token: await mint({ claims: CLIENT }) });
      const result = await firstValueFrom(client.send<WhoAmI>('whoami', {}));
      expect(result.claims?.role).toBe('client');
      await client.close();
      await provider.close();
    } finally {
      await relay.close();
    }
  });
});
