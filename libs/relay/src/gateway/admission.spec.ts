/**
 * The upgrade gate's fairness (issue 13, point 4: one token that never said
 * HELLO held 199 of 200 slots): quotas per address and per token subject,
 * counted from the upgrade until the TCP connection closes, and a tighter cap
 * on connections still in their handshake. Also the default origin rule
 * (point 5) and where an address comes from.
 */
import { describe, expect, it } from '@jest/globals';
import { SignJWT } from 'jose';
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { RelayAuthService } from '../auth/relay-auth.service.js';
import type { RelayModuleOptions } from '../interfaces/relay-options.interface.js';
import { resolveRelayOptions } from '../relay.options.js';
import type { Session } from '../session/session.js';
import { Admission, type AdmissionCore, clientAddress, sameHost } from './admission.js';

const SECRET = 'a secret long enough for HS256 tokens';

/** An upgrade request from `address` (its TCP socket an emitter that can be closed). */
function upgrade(address = '10.0.0.1', headers: Record<string, string> = {}) {
  const socket = Object.assign(new EventEmitter(), { remoteAddress: address, destroyed: false });
  const req = { headers, url: '/relay', socket } as unknown as IncomingMessage;
  return { req, close: () => socket.emit('close') };
}

const bearer = async (sub: string) => ({
  authorization: `Bearer ${await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).sign(new TextEncoder().encode(SECRET))}`,
});

/** A gate over a relay with no connections yet; `established` holds the sockets whose HELLO was accepted. */
function gate(options: RelayModuleOptions) {
  const resolved = resolveRelayOptions(options);
  const established = new Set<unknown>();
  const core: AdmissionCore = {
    accepting: true,
    connectionCount: 0,
    sessionOf: socket => socket as unknown as Session,
    membership: { nodeOf: session => (established.has(session) ? {} : undefined) },
  };
  const admission = new Admission(resolved, new RelayAuthService(resolved), core);
  const server = new EventEmitter();
  admission.watch(server);
  /** Attempts an upgrade; resolves with the status it was refused with (101 when admitted) and the reason. */
  const admit = (req: IncomingMessage, origin?: string) =>
    new Promise<{ status: number; message?: string; code?: string }>(resolve =>
      admission.admit({ origin, req }, (ok, status, message, headers) =>
        resolve(ok ? { status: 101 } : { status: status ?? 0, message, code: headers?.['X-WsRelay-Error'] }),
      ),
    );
  /** The upgrade became `socket` and its HELLO was accepted. */
  const hello = (req: IncomingMessage, socket: object = {}) => {
    server.emit('connection', socket, req);
    established.add(socket);
  };
  return { admission, admit, hello };
}

describe('Admission', () => {
  it('caps the connections of one address, counting them until their TCP connection closes', async () => {
    const { admission, admit, hello } = gate({ maxConnectionsPerIp: 2 });
    const [a, b, c] = [upgrade(), upgrade(), upgrade()];
    expect((await admit(a.req)).status).toBe(101);
    expect((await admit(b.req)).status).toBe(101);
    hello(a.req);
    hello(b.req);
    expect(await admit(c.req)).toEqual({
      status: 429,
      code: 'RATE_LIMITED',
      message: 'Rate limited: address 10.0.0.1 already has 2 connections to this relay, its limit; close one or retry later.',
    });
    // Another address is not affected.
    expect((await admit(upgrade('10.0.0.2').req)).status).toBe(101);
    a.close();
    expect((await admit(c.req)).status).toBe(101);
    for (const u of [b, c]) u.close();
    expect(admission.counted).toEqual({ addresses: 1, subjects: 0 });
  });

  it('caps the connections of one address still in their handshake; each accepted HELLO frees a place', async () => {
    const { admission, admit, hello } = gate({ maxHandshakesPerIp: 2 });
    const [a, b, c] = [upgrade(), upgrade(), upgrade()];
    expect((await admit(a.req)).status).toBe(101);
    // Admitted but never said HELLO (or its socket not even open yet): still in its handshake.
    expect((await admit(b.req)).status).toBe(101);
    expect(await admit(c.req)).toMatchObject({
      status: 429,
      message: expect.stringMatching(/2 connections that have not completed HELLO/),
    });
    hello(a.req);
    expect((await admit(c.req)).status).toBe(101);
    for (const u of [a, b, c]) u.close();
    expect(admission.counted).toEqual({ addresses: 0, subjects: 0 });
  });

  it('caps the connections and the handshakes of one token subject, whatever their addresses', async () => {
    const { admission, admit, hello } = gate({ auth: { secret: SECRET }, maxConnectionsPerSubject: 3, maxHandshakesPerSubject: 2 });
    const mallory = await Promise.all([1, 2, 3, 4].map(async i => upgrade(`10.0.1.${i}`, await bearer('mallory'))));
    expect((await admit(mallory[0].req)).status).toBe(101);
    expect((await admit(mallory[1].req)).status).toBe(101);
    expect(await admit(mallory[2].req)).toMatchObject({ status: 429, message: expect.stringMatching(/token subject "mallory" .* HELLO/) });
    // Another subject is not affected, and the refused upgrade counts nowhere.
    expect((await admit(upgrade('10.0.1.3', await bearer('alice')).req)).status).toBe(101);
    hello(mallory[0].req);
    hello(mallory[1].req);
    expect((await admit(mallory[2].req)).status).toBe(101);
    hello(mallory[2].req);
    expect(await admit(mallory[3].req)).toMatchObject({
      status: 429,
      message: expect.stringMatching(/"mallory" already has 3 connections/),
    });
    for (const u of mallory) u.close();
    expect(admission.counted.subjects).toBe(1); // alice's
  });

  it('counts upgrades whose token is still being checked: parallel upgrades get exactly the quota', async () => {
    const { admit } = gate({ auth: { secret: SECRET }, maxConnectionsPerSubject: 2, maxHandshakesPerSubject: 100 });
    const attempts = await Promise.all([1, 2, 3, 4, 5].map(async () => admit(upgrade('10.0.2.1', await bearer('bob')).req)));
    expect(attempts.map(a => a.status).sort()).toEqual([101, 101, 429, 429, 429]);
  });

  it('frees the place of an upgrade refused for its token', async () => {
    const { admission, admit } = gate({ auth: { secret: SECRET }, maxConnectionsPerIp: 1 });
    expect(await admit(upgrade('10.0.3.1', { authorization: 'Bearer nope' }).req)).toMatchObject({ status: 401, code: 'UNAUTHORIZED' });
    expect(admission.counted).toEqual({ addresses: 0, subjects: 0 });
    expect((await admit(upgrade('10.0.3.1', await bearer('carol')).req)).status).toBe(101);
  });

  it('without auth or allowedOrigins admits no Origin and same-host origins only; with auth, any; allowedOrigins decides when set', async () => {
    const open = gate({});
    const req = () => upgrade('10.0.4.1', { host: 'relay.example:8787' }).req;
    expect((await open.admit(req())).status).toBe(101);
    expect((await open.admit(req(), 'http://relay.example:8787')).status).toBe(101);
    expect(await open.admit(req(), 'https://evil.example')).toEqual({
      status: 403,
      code: 'FORBIDDEN',
      message: expect.stringMatching(/^Forbidden: origin https:\/\/evil.example is not allowed: .* only from its own host/),
    });
    expect(
      (await gate({ auth: { secret: SECRET } }).admit(upgrade('10.0.4.2', await bearer('d')).req, 'https://evil.example')).status,
    ).toBe(101);
    const listed = gate({ allowedOrigins: ['https://app.example'] });
    expect((await listed.admit(req(), 'https://app.example')).status).toBe(101);
    expect(await listed.admit(req(), 'http://relay.example:8787')).toMatchObject({
      status: 403,
      message: 'Forbidden: origin http://relay.example:8787 is not allowed.',
    });
  });
});

describe('sameHost', () => {
  it.each([
    ['http://relay.example:8787', 'relay.example:8787', true],
    ['https://relay.example', 'relay.example', true],
    ['https://relay.example', 'relay.example:443', true],
    ['http://RELAY.example', 'relay.example', true],
    ['http://relay.example:8787', 'relay.example', false],
    ['https://relay.example.evil', 'relay.example', false],
    ['http://evil.example', 'relay.example', false],
    ['null', 'relay.example', false],
    ['file://relay.example', 'relay.example', false],
    ['http://relay.example', undefined, false],
  ])('%s with Host %s: %s', (origin, host, expected) => {
    expect(sameHost(origin, host)).toBe(expected);
  });
});

describe('clientAddress', () => {
  const req = (remoteAddress: string, xff?: string) =>
    ({ socket: { remoteAddress }, headers: xff === undefined ? {} : { 'x-forwarded-for': xff } }) as unknown as IncomingMessage;

  it("is the peer's address, an IPv4-mapped one as IPv4; X-Forwarded-For is ignored unless the proxy is trusted", () => {
    expect(clientAddress(req('::ffff:10.1.2.3', '1.1.1.1'), false)).toBe('10.1.2.3');
    expect(clientAddress(req('2001:db8::1'), false)).toBe('2001:db8::1');
  });

  it('with trustProxy is the last X-Forwarded-For entry (the one the proxy appended), else the peer', () => {
    expect(clientAddress(req('10.0.0.9', 'spoofed, 203.0.113.7'), true)).toBe('203.0.113.7');
    expect(clientAddress(req('10.0.0.9', ' '), true)).toBe('10.0.0.9');
    expect(clientAddress(req('10.0.0.9'), true)).toBe('10.0.0.9');
  });
});
