/**
 * What a connection may subscribe to without a permissions claim: a server
 * gets `defaultPermissions`, a passive client (a browser) gets them without
 * `subscribe`, so that allowing passive subscribers did not let every
 * existing client token read every event.
 */
import { describe, expect, it } from '@jest/globals';
import { SignJWT } from 'jose';
import type { IncomingMessage } from 'node:http';
import type { RelayModuleOptions } from '../interfaces/relay-options.interface.js';
import { resolveRelayOptions } from '../relay.options.js';
import { RelayAuthService } from './relay-auth.service.js';

const SECRET = 'a secret long enough for HS256 tokens';

function token(claims: Record<string, unknown>): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('sub-1')
    .setExpirationTime(Math.floor(Date.now() / 1000) + 3600)
    .sign(new TextEncoder().encode(SECRET));
}

function upgrade(bearer?: string): IncomingMessage {
  return { headers: bearer === undefined ? {} : { authorization: `Bearer ${bearer}` }, url: '/relay' } as IncomingMessage;
}

async function permissionsOf(claims: Record<string, unknown>, options: RelayModuleOptions = {}) {
  const service = new RelayAuthService(resolveRelayOptions({ auth: { secret: SECRET }, ...options }));
  return (await service.authenticate(upgrade(await token(claims)))).permissions;
}

describe('RelayAuthService', () => {
  describe('permissions without a permissions claim', () => {
    it('let a server subscribe to everything (the default), and a passive client to nothing, all else alike', async () => {
      const server = await permissionsOf({ role: 'server' });
      const client = await permissionsOf({ role: 'client' });
      expect(server.allows('subscribe', '>')).toBe(true);
      expect(client.allows('subscribe', 'orders.created')).toBe(false);
      expect(client.allows('call', 'orders.get')).toBe(true);
      expect(client.allows('publish', 'orders.created')).toBe(true);
    });

    it("give a passive client the relay's defaultPermissions without their subscribe list", async () => {
      const defaultPermissions = { call: ['public.*'], subscribe: ['public.>'] };
      const client = await permissionsOf({ role: 'client' }, { defaultPermissions });
      expect(client.allows('call', 'public.x')).toBe(true);
      expect(client.allows('call', 'private.x')).toBe(false);
      expect(client.allows('subscribe', 'public.news')).toBe(false);
      expect((await permissionsOf({ role: 'server' }, { defaultPermissions })).allows('subscribe', 'public.news')).toBe(true);
    });

    it('hold for a passive client after a token refresh, and without auth for a connection classified passive', async () => {
      const service = new RelayAuthService(resolveRelayOptions({ auth: { secret: SECRET } }));
      const granted = await service.authenticate(upgrade(await token({ role: 'client', perms: { subscribe: ['orders.>'] } })));
      expect(granted.permissions.allows('subscribe', 'orders.>')).toBe(true);
      const refreshed = await service.refresh(granted, await token({ role: 'client' }));
      expect(refreshed.permissions.allows('subscribe', 'orders.>')).toBe(false);
      const open = new RelayAuthService(resolveRelayOptions({ isServerConnection: () => false }));
      expect((await open.authenticate(upgrade())).permissions.allows('subscribe', 'x')).toBe(false);
    });
  });

  it("let a passive client subscribe where its token's permissions claim grants it, covering each subscription whole", async () => {
    const client = await permissionsOf({ role: 'client', perms: { subscribe: ['orders.>', 'audit.eu.*'] } });
    expect(client.allows('subscribe', 'orders.>')).toBe(true);
    expect(client.allows('subscribe', 'audit.eu.login')).toBe(true);
    expect(client.allows('subscribe', 'audit.>')).toBe(false);
    expect(client.allows('subscribe', 'audit.eu.>')).toBe(false);
  });
});
