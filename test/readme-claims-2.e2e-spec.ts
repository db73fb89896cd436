/**
 * README claims of the relay (option defaults, auth, a cluster over Redis,
 * the executable and the repository's commands) and of the nodes' connection
 * options that no other spec backs; real relays, sockets, processes and Redis.
 * The README line each test backs is in its name.
 */
import { expect } from '@jest/globals';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { decodePayload, encodePayload, FrameType, RelayErrorCode, ResponseFlag } from '@wsrelay/protocol';
import { createRelayApp, RELAY_OPTIONS, RelayCore, RelayModule, type ResolvedRelayOptions, RelayWsAdapter, runRelay } from '@wsrelay/relay';
import { WsRelayClient, type WsRelayClientOptions } from '@wsrelay/transport';
import { exportSPKI, generateKeyPair, type JWK } from 'jose';
import { type ChildProcess, spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { RELAY_BIN } from '../scripts/processes.js';
import { CLUSTER_TIMING } from './support/cluster.js';
import { answerTo, request } from './support/frames.js';
import { rejection, type RunningRelay, settlesWithin, startClient, startRelay, until, untilAsync, useCleanup } from './support/harness.js';
import { RawNode, refusal } from './support/raw-node.js';
import { CutOffProxy, useTestRedis } from './support/redis.js';
import { spawnRelay } from './support/relay-process.js';
import { TEST_CERT } from './support/tls-relay.js';
import { AUDIENCE, bearer, CLIENT, ISSUER, keyPair, mint, SECRET, SERVER } from './support/tokens.js';

const ROOT = new URL('..', import.meta.url).pathname;
const hs = { secret: SECRET, issuer: ISSUER, audience: AUDIENCE };
const isExpiring = (f: { type: FrameType }) => f.type === FrameType.TokenExpiring;

/** A process of ours in a process group of its own (npm runs children), its output lines, and how it ends. */
function launch(command: string, args: string[], env: Record<string, string> = {}) {
  const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, NO_COLOR: '1', ...env }, detached: true });
  const lines: string[] = [];
  for (const stream of [child.stdout, child.stderr]) createInterface({ input: stream }).on('line', l => lines.push(l));
  const exit = once(child, 'exit') as Promise<[number | null, string | null]>;
  const line = async (re: RegExp, timeoutMs = 60_000) => {
    await until(() => lines.some(l => re.test(l)) || child.exitCode !== null, timeoutMs, `${re} from ${command} ${args.join(' ')}`);
    const m = lines.map(l => re.exec(l)).find(Boolean);
    if (!m) throw new Error(`${command} ${args.join(' ')} exited: ${lines.slice(-20).join('\n')}`);
    return m;
  };
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGTERM');
    await exit;
  };
  return { child, lines, exit, line, stop };
}

/** The exit code of `wsrelay-relay healthcheck` against 127.0.0.1:`port`. */
async function healthcheck(port: number): Promise<number | null> {
  const child: ChildProcess = spawn(process.execPath, [RELAY_BIN, 'healthcheck'], {
    cwd: ROOT,
    env: { ...process.env, RELAY_PORT: String(port), RELAY_HOST: '127.0.0.1' },
    stdio: 'ignore',
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  return code;
}

/** The relayId a client is welcomed with at `url`. */
async function welcomedBy(url: string, tls?: WsRelayClientOptions['tls'], connectTimeoutMs = 5000): Promise<string> {
  const client = new WsRelayClient({ urls: [url], tls, connectTimeoutMs });
  const welcomed = new Promise<string>(resolve => client.on('connected', ((w: { relayId: string }) => resolve(w.relayId)) as () => void));
  try {
    await client.connect();
    return await welcomed;
  } finally {
    await client.close();
  }
}

describe('README claims: relay options and auth', () => {
  const { add, track } = useCleanup();

  it('L474-525: a relay started without options resolves the defaults of the table; perMessageDeflate stays off', async () => {
    const app = await createRelayApp({}, { logger: false });
    add(() => app.close());
    await app.listen(0, '127.0.0.1');
    const { port } = (app.getHttpServer() as Server).address() as AddressInfo;
    expect(app.get<symbol, ResolvedRelayOptions>(RELAY_OPTIONS)).toMatchObject({
      ...{ maxConnections: 50_000, maxConnectionsPerSubject: 1000, maxConnectionsPerIp: 10_000 },
      ...{ maxHandshakesPerSubject: 32, maxHandshakesPerIp: 1000, trustProxy: false, upgradeTimeoutMs: 10_000 },
      ...{ rateLimit: { perSecond: 100_000, burst: 100_000 }, maxInFlightPerConnection: 10_000, perMessageDeflate: false },
      ...{ nodeIdReservationMs: 60_000, drainTimeoutMs: 10_000, maxBufferedBytes: 16 * 1024 * 1024, eventAckTimeoutMs: 10_000 },
      ...{ maxEventAttempts: 3, startupGraceMs: 5000, permissionsClaim: 'perms', tenantClaim: 'tenant' },
      defaultPermissions: { call: ['>'], serve: ['>'], publish: ['>'], subscribe: ['>'] },
    });
    const node = track(await RawNode.hello(`ws://127.0.0.1:${port}/relay`, 'deflater', { perMessageDeflate: true }));
    expect(node.socket.extensions).toBe('');
  });

  it('L154: RelayModule.forRootAsync() takes imports and inject as any configurable module', async () => {
    @Module({ providers: [{ provide: 'RELAY_ID', useValue: 'injected-id' }], exports: ['RELAY_ID'] })
    class SettingsModule {}
    const relayModule = RelayModule.forRootAsync({
      imports: [SettingsModule],
      inject: ['RELAY_ID'],
      useFactory: (id: string) => ({ relayId: id }),
    });
    @Module({ imports: [relayModule] })
    class AppModule {}
    const app = await NestFactory.create(AppModule, { logger: false });
    add(() => app.close());
    app.useWebSocketAdapter(new RelayWsAdapter(app));
    await app.listen(0, '127.0.0.1');
    const { port } = (app.getHttpServer() as Server).address() as AddressInfo;
    expect(await welcomedBy(`ws://127.0.0.1:${port}/relay`)).toBe('injected-id');
  });

  it('L137-139: runRelay() starts the relay configured by the environment it is given, else by process.env', async () => {
    const given = await runRelay({
      env: { RELAY_PORT: '0', RELAY_HOST: '127.0.0.1', RELAY_ID: 'from-env', RELAY_PATH: '/given' },
      handleSignals: false,
    });
    add(() => given.close());
    expect(given.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/given$/);
    expect(await welcomedBy(given.url)).toBe('from-env');
    const set = { RELAY_PORT: '0', RELAY_HOST: '127.0.0.1', RELAY_ID: 'from-process-env' };
    const saved = Object.keys(set).map(k => [k, process.env[k]] as const);
    Object.assign(process.env, set);
    try {
      const fromProcess = await runRelay({ handleSignals: false });
      add(() => fromProcess.close());
      expect(await welcomedBy(fromProcess.url)).toBe('from-process-env');
    } finally {
      for (const [k, v] of saved)
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
    }
  });

  it("L661-663: a relay's shutdown drain ends as soon as nothing is in flight", async () => {
    const relay = await startRelay({ drainTimeoutMs: 10_000 });
    add(() => relay.close());
    track(await RawNode.hello(relay.url, 'idle'));
    const at = Date.now();
    await relay.close();
    expect(Date.now() - at).toBeLessThan(2000);
  });

  it('L483, L486: auth.publicKey verifies EdDSA PEM tokens; an RSA PEM verifies PS256 tokens when auth.algorithms lists PS256', async () => {
    const ed = await generateKeyPair('EdDSA', { extractable: true });
    const rsa = await generateKeyPair('PS256', { extractable: true });
    const cases = [
      { alg: 'EdDSA', publicKey: await exportSPKI(ed.publicKey), privateKey: ed.privateKey, algorithms: undefined },
      { alg: 'PS256', publicKey: await exportSPKI(rsa.publicKey), privateKey: rsa.privateKey, algorithms: ['PS256'] },
    ];
    for (const { alg, publicKey, privateKey, algorithms } of cases) {
      const relay = track(await startRelay({ auth: { publicKey, issuer: ISSUER, algorithms } }));
      track(await RawNode.hello(relay.url, `pem-${alg}`, await bearer(await mint({ alg }, privateKey))));
      expect((await refusal(relay.url, await bearer({}))).status).toBe(401);
    }
  });

  it('an RSA-PSS public key is refused at startup, naming what to give instead (it could verify no token)', async () => {
    const pss = generateKeyPairSync('rsa-pss', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    for (const algorithms of [undefined, ['PS256']]) {
      const err = await rejection(startRelay({ auth: { publicKey: pss, issuer: ISSUER, algorithms } }));
      expect(err).toBeInstanceOf(TypeError);
      expect((err as Error).message).toMatch(/RSA-PSS key.*RSA public key with auth.algorithms: \['PS256'\]/);
    }
  });

  it('L486: auth.algorithms lists the accepted alg values', async () => {
    const relay = track(await startRelay({ auth: { ...hs, algorithms: ['HS512'] } }));
    track(await RawNode.hello(relay.url, 'hs512', await bearer({ alg: 'HS512' })));
    const refused = await refusal(relay.url, await bearer({ alg: 'HS256' }));
    expect([refused.status, refused.body]).toEqual([401, expect.stringMatching(/algorithm/)]);
  });

  it('L487: a clock skew of 5 s is allowed on exp and nbf by default, not more', async () => {
    const relay = track(await startRelay({ auth: hs }));
    track(await RawNode.open(relay.url, await bearer({ expiresIn: -2 })));
    track(await RawNode.open(relay.url, await bearer({ notBefore: 2 })));
    expect((await refusal(relay.url, await bearer({ expiresIn: -30 }))).body).toMatch(/expired/);
    expect((await refusal(relay.url, await bearer({ notBefore: 30 }))).body).toMatch(/not yet valid/);
  });

  it('L484, L488: an unknown kid does not refetch the JWKS within jwksCooldownMs (30 s by default)', async () => {
    const [oldKey, newKey] = [await keyPair('RS256', 'old'), await keyPair('ES256', 'new')];
    let keys: JWK[] = [oldKey.jwk];
    let fetches = 0;
    const server = createServer(
      (_req, res) => (fetches++, res.setHeader('content-type', 'application/json'), res.end(JSON.stringify({ keys }))),
    );
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
    add(() => new Promise(resolve => server.close(resolve)));
    const jwks = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
    const relay = track(await startRelay({ auth: { jwks } }));
    track(await RawNode.hello(relay.url, 'old-kid', await bearer(await mint({ alg: 'RS256', kid: 'old' }, oldKey.privateKey))));
    const before = fetches;
    keys = [newKey.jwk];
    const refused = await refusal(relay.url, await bearer(await mint({ alg: 'ES256', kid: 'new' }, newKey.privateKey)));
    expect([refused.status, fetches]).toEqual([401, before]);
  });

  it('L489: TOKEN_EXPIRING comes 60 s before exp by default: at once for a token with 30 s left, not for one with 120 s', async () => {
    const relay = track(await startRelay({ auth: hs }));
    const soon = track(await RawNode.hello(relay.url, 'soon', await bearer({ expiresIn: 30 })));
    expect(await soon.next(isExpiring, 2000)).toMatchObject({ expiresAt: expect.any(Number) });
    const later = track(await RawNode.hello(relay.url, 'later', await bearer({ expiresIn: 120 })));
    later.send({ type: FrameType.Ping });
    await later.next(f => f.type === FrameType.Pong);
    expect(
      await settlesWithin(
        later.next(isExpiring, 2000).catch(() => undefined),
        500,
      ),
    ).toBe('pending');
  });

  it('L491, L493: permissionsClaim and tenantClaim name the claims read for permissions and tenant', async () => {
    const relay = track(await startRelay({ auth: { ...hs }, permissionsClaim: 'acl', tenantClaim: 'org' }));
    const server = track(
      await RawNode.hello(relay.url, 'svc', { ...(await bearer({ claims: { ...SERVER, org: 'acme' } })), patterns: ['echo'] }),
    );
    server.socket.on('message', (data: Buffer) => {
      const f = server.codec.decode(data);
      if (f.type === FrameType.Request)
        server.send({ type: FrameType.Response, id: f.id, flags: ResponseFlag.DONE, payload: encodePayload('routed') });
    });
    const call = async (claims: Record<string, unknown>) => {
      const caller = track(await RawNode.hello(relay.url, undefined, await bearer({ claims: { ...CLIENT, ...claims } })));
      caller.send(request(1, 'echo'));
      const answer = await caller.next(answerTo(1));
      return answer.type === FrameType.Response ? decodePayload(answer.payload as Uint8Array) : answer;
    };
    expect(await call({ org: 'acme', acl: { call: ['other'] } })).toMatchObject({ code: RelayErrorCode.FORBIDDEN });
    expect(await call({ org: 'acme', perms: { call: ['other'] }, tenant: 'globex' })).toBe('routed');
    expect(await call({ org: 'globex' })).toMatchObject({ code: RelayErrorCode.MICROSERVICE_OFFLINE });
  });
});

describe('README claims: cluster, executable, commands, connection options', () => {
  const { add, track } = useCleanup();
  const redis = useTestRedis();

  const status = async (r: RunningRelay) => {
    const res = await fetch(`http://127.0.0.1:${r.port}/status`);
    return { http: res.status, body: (await res.json()) as unknown };
  };

  it("L98, L509, L531: clusters with their own channelPrefix ('wsrelay' by default) share a Redis apart; /status is 503 while Redis is away", async () => {
    const timing = { ...CLUSTER_TIMING };
    const unnamed = track(await startRelay({ relayId: 'unnamed', cluster: { redis: redis.url, ...timing } }));
    const named = track(await startRelay({ relayId: 'named', cluster: { redis: redis.url, channelPrefix: 'wsrelay', ...timing } }));
    const apart = track(await startRelay({ relayId: 'apart', cluster: { redis: redis.url, channelPrefix: 'elsewhere', ...timing } }));
    const peers = (r: RunningRelay) =>
      r.app
        .get(RelayCore)
        .status()
        .cluster.relays.map(x => x.relayId);
    await until(
      () => peers(unnamed).includes('named') && peers(named).includes('unnamed'),
      10_000,
      'the two default-prefix relays to meet',
    );
    expect([peers(unnamed), peers(named), peers(apart)]).toEqual([['named'], ['unnamed'], []]);

    const proxy = track(await CutOffProxy.start(redis.url));
    const cut = track(await startRelay({ cluster: { redis: proxy.url, channelPrefix: 'cut', ...timing } }));
    await untilAsync(async () => (await status(cut)).http === 200, 10_000, 'a ready relay');
    expect(await healthcheck(cut.port)).toBe(0);
    await proxy.cut();
    await untilAsync(async () => (await status(cut)).http === 503, 10_000, 'the relay to see Redis gone');
    expect((await status(cut)).body).toEqual({ status: 'unavailable', ready: false, reason: 'cluster backplane down' });
    expect(await healthcheck(cut.port)).toBe(1);
    await proxy.restore();
    await untilAsync(async () => (await status(cut)).http === 200, 10_000, 'the relay back');
  }, 40_000);

  it('L105-108: the executable drains and exits 0 on SIGINT too; a second signal exits at once', async () => {
    const idle = await spawnRelay({ RELAY_DRAIN_TIMEOUT_MS: '10000' });
    add(() => idle.kill());
    // Its first answer: the process is past its start (a signal in the instant after "listening" is printed is not handled yet).
    await idle.status();
    const idleExit = once(idle.child, 'exit');
    idle.child.kill('SIGINT');
    expect((await idleExit)[0]).toBe(0);
    expect(idle.output.join('\n')).toMatch(/SIGINT: draining/);

    const busy = await spawnRelay({ RELAY_DRAIN_TIMEOUT_MS: '30000' });
    add(() => busy.kill());
    const provider = track(await RawNode.hello(busy.url, 'busy-provider', { patterns: ['slow'] }));
    const caller = track(await RawNode.hello(busy.url, 'busy-caller'));
    caller.send(request(1, 'slow', 60_000));
    await provider.next(f => f.type === FrameType.Request);
    const busyExit = once(busy.child, 'exit');
    busy.child.kill('SIGTERM');
    await until(() => busy.output.some(l => /SIGTERM: draining/.test(l)), 10_000, 'the drain to start');
    const at = Date.now();
    busy.child.kill('SIGTERM');
    expect((await busyExit)[0]).toBe(1);
    expect(Date.now() - at).toBeLessThan(5000);
  }, 30_000);

  it('L74, L101-104, L111-112: npm test is what it says; npm run start:relay runs the executable with the Node flag; start:relay:dev runs apps/relay from source', async () => {
    const env = { RELAY_PORT: '0', RELAY_HOST: '127.0.0.1', RELAY_ID: 'npm-run' };
    for (const script of ['start:relay', 'start:relay:dev']) {
      const run = launch('npm', ['run', '--silent', script], env);
      add(() => run.stop());
      const [, url] = await run.line(/Relay listening on (ws:\/\/127\.0\.0\.1:\d+\/relay)/);
      expect(await welcomedBy(url)).toBe('npm-run');
      await run.stop();
    }
    const scripts = (JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { scripts: Record<string, string> }).scripts;
    expect(scripts['start:relay']).toMatch(/exec node --initial-old-space-size=128 libs\/relay\/dist\/bin\/wsrelay-relay\.js$/);
    expect(scripts['start:relay:dev']).toMatch(/apps\/relay\/src\/main\.ts$/);
    // L74: npm test is the type check, the lint, every spec and the packed packages in the examples.
    expect(scripts.test.split(' && ')).toEqual(['npm run typecheck', 'npm run lint', 'npm run test:jest', 'npm run test:packages']);
    expect(scripts.lint).toMatch(/^eslint \. && prettier --check \.$/);
  }, 120_000);

  it('L73, L77-79: npm run demo runs a relay, the greeter and the caller, and prints the replies and an event ack', async () => {
    const demo = launch('npm', ['run', 'demo']);
    add(() => demo.stop());
    const [code] = await demo.exit;
    const out = demo.lines.join('\n');
    expect([code, out]).toEqual([0, expect.stringMatching(/demo: OK/)]);
    expect(out).toMatch(/\[caller\].*greet -> Hello, Ada!/);
    expect(out).toMatch(/\[caller\].*countdown -> 3, 2, 1/);
    expect(out).toMatch(/\[caller\].*ack \{"recipients":1\}/);
    expect(out).toMatch(/\[relay\].*Relay listening on ws:/);
  }, 120_000);

  it('L122-126: the image runs the relay as the unprivileged node user, with a HEALTHCHECK that asks /status', () => {
    const lines = readFileSync(`${ROOT}Dockerfile`, 'utf8').split('\n');
    const runtime = lines.slice(lines.findIndex(l => /^FROM .* AS runtime/.test(l)));
    expect(runtime).toContain('USER node');
    expect(runtime.join('\n')).toMatch(/HEALTHCHECK [^\n]*\\\n\s*CMD \["node", "[^"]*wsrelay-relay\.js", "healthcheck"\]/);
  });

  it('L441, L439: a node id is a random UUID by default; the token travels in an Authorization header by default', async () => {
    const relay = track(await startRelay({ auth: hs }));
    const upgrades: IncomingMessage[] = [];
    (relay.app.getHttpServer() as Server).prependListener('upgrade', (req: IncomingMessage) => upgrades.push(req));
    const token = await mint({ claims: CLIENT });
    const [a, b] = [track(await startClient({ urls: [relay.url], token })), track(await startClient({ urls: [relay.url], token }))];
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
    expect([a.nodeId, b.nodeId]).toEqual([expect.stringMatching(uuid), expect.stringMatching(uuid)]);
    expect(a.nodeId).not.toBe(b.nodeId);
    expect((await a.discover()).map(n => n.nodeId)).toEqual(expect.arrayContaining([a.nodeId, b.nodeId]));
    expect(upgrades.map(r => [r.headers.authorization, r.url, r.headers['sec-websocket-protocol']])).toEqual(
      Array(2).fill([`Bearer ${token}`, '/relay', undefined]),
    );
  });

  it('L440: tls takes rejectUnauthorized, servername, and cert + key for mutual TLS', async () => {
    const key = readFileSync(new URL('./fixtures/key.pem', import.meta.url));
    // A relay that asks nodes for a certificate its CA (the test certificate itself) signed.
    const tls = { key, cert: TEST_CERT, ca: TEST_CERT, requestCert: true, rejectUnauthorized: true };
    const app = await createRelayApp({ relayId: 'mtls', startupGraceMs: 0, drainTimeoutMs: 0 }, { logger: false, tls });
    add(() => app.close());
    await app.listen(0, '127.0.0.1');
    const url = `wss://127.0.0.1:${((app.getHttpServer() as Server).address() as AddressInfo).port}/relay`;
    expect(await welcomedBy(url, { ca: TEST_CERT, cert: TEST_CERT, key })).toBe('mtls');
    expect(await rejection(welcomedBy(url, { ca: TEST_CERT }, 800))).toMatchObject({ code: RelayErrorCode.RELAY_UNAVAILABLE });
    expect(await welcomedBy(url, { rejectUnauthorized: false, cert: TEST_CERT, key })).toBe('mtls');
    expect(await welcomedBy(url, { ca: TEST_CERT, servername: 'localhost', cert: TEST_CERT, key })).toBe('mtls');
    const wrongName = await rejection(welcomedBy(url, { ca: TEST_CERT, servername: 'other.example', cert: TEST_CERT, key }, 800));
    expect(wrongName).toMatchObject({ code: RelayErrorCode.RELAY_UNAVAILABLE, message: expect.stringMatching(/other\.example/) });
    expect(await rejection(welcomedBy(url, { cert: TEST_CERT, key }, 800))).toMatchObject({
      message: expect.stringMatching(/certificate/i),
    });
  });
});
