import { Inject, Injectable } from '@nestjs/common';
import { encodePayload, RelayErrorMessages } from '@wsrelay/protocol';
import { createLocalJWKSet, createRemoteJWKSet, errors, type JSONWebKeySet, type JWTPayload, type JWTVerifyGetKey, jwtVerify } from 'jose';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type { RelayAuthOptions, RelayClaims, ResolvedRelayOptions } from '../interfaces/relay-options.interface.js';
import { ALL_PERMISSIONS, RELAY_OPTIONS } from '../relay.constants.js';
import { Permissions, permissionsProblem } from './permissions.js';
import { tokenOf } from './token.js';

/** Who a connection is, settled at the upgrade (and again on an in-band token refresh). */
export interface ConnectionIdentity {
  readonly claims: RelayClaims | null;
  /** The claims as MessagePack, encoded once, forwarded to providers with each request and event. */
  readonly encodedClaims: Uint8Array | null;
  /** The token's `sub`, when it has one. */
  readonly subject: string | null;
  /** '' without a tenant claim. */
  readonly tenant: string;
  /** A server connection may serve, subscribe and answer; a passive client may call, emit, and subscribe where its token grants it. */
  readonly isServer: boolean;
  readonly permissions: Permissions;
  /** When the token expires, in ms since the epoch; null when it does not. */
  readonly expiresAt: number | null;
}

/** A token the relay will not accept; `reason` is safe to show the client. */
export class TokenRefusal extends Error {
  override name = 'TokenRefusal';
  constructor(readonly reason: string) {
    super(RelayErrorMessages.unauthorized(reason));
  }
}

const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];
const DEFAULT_CLOCK_TOLERANCE_SEC = 5;
const MAX_COMPILED_PERMISSIONS = 1000;
const DEFAULT_JWKS_COOLDOWN_MS = 30_000;
export const DEFAULT_EXPIRY_WARNING_MS = 60_000;
export const DEFAULT_MAX_REFRESH_FAILURES = 5;

type Verify = (token: string) => Promise<JWTPayload>;

/**
 * Verifies JWTs with `jose` (the relay writes no crypto) and turns verified
 * claims into a connection's identity: subject, tenant, server or client,
 * and compiled permissions. Without `auth` every connection gets the
 * default identity.
 */
@Injectable()
export class RelayAuthService {
  readonly enabled: boolean;
  readonly expiryWarningMs: number;
  /** In-band refreshes refused on one connection before it is closed. */
  readonly maxRefreshFailures: number;
  private readonly verifyToken: Verify | undefined;
  private readonly defaultPermissions: Permissions;
  /** A passive client's without a permissions claim: the defaults without `subscribe` (it subscribes only where its own token grants it). */
  private readonly passiveDefaultPermissions: Permissions;
  /** Compiled permissions shared by tokens with the same claim (most tokens of a service are alike). */
  private readonly compiled = new Map<string, Permissions>();

  constructor(@Inject(RELAY_OPTIONS) private readonly options: ResolvedRelayOptions) {
    this.enabled = options.auth !== false;
    this.expiryWarningMs = (options.auth ? options.auth.expiryWarningMs : undefined) ?? DEFAULT_EXPIRY_WARNING_MS;
    this.maxRefreshFailures = (options.auth ? options.auth.maxRefreshFailures : undefined) ?? DEFAULT_MAX_REFRESH_FAILURES;
    this.verifyToken = options.auth ? buildVerifier(options.auth) : undefined;
    this.defaultPermissions = new Permissions(options.defaultPermissions);
    this.passiveDefaultPermissions = new Permissions({ ...options.defaultPermissions, subscribe: [] });
  }

  /** The identity of an upgrade request; throws TokenRefusal when auth is on and the token does not pass. */
  async authenticate(req: IncomingMessage): Promise<ConnectionIdentity> {
    if (this.verifyToken === undefined) {
      return this.identity(null, this.options.isServerConnection?.(null, req) ?? true);
    }
    const token = tokenOf(req);
    if (token === undefined) {
      throw new TokenRefusal('no token (send "Authorization: Bearer <jwt>", "?token=<jwt>" or an "access_token.<jwt>" subprotocol)');
    }
    const claims = await this.verify(token);
    const isServer = this.options.isServerConnection?.(claims, req) ?? hasServerRole(claims);
    return this.identity(claims, isServer);
  }

  /**
   * A fresh token for a live connection: it must verify, and name the same
   * subject and tenant. The connection keeps its server/client role.
   */
  async refresh(current: ConnectionIdentity, token: string): Promise<ConnectionIdentity> {
    if (this.verifyToken === undefined) throw new TokenRefusal('authentication is off on this relay');
    const claims = await this.verify(token);
    const next = this.identity(claims, current.isServer);
    if (next.subject !== current.subject) throw new TokenRefusal('the new token names a different subject');
    if (next.tenant !== current.tenant) throw new TokenRefusal('the new token names a different tenant');
    return next;
  }

  private async verify(token: string): Promise<RelayClaims> {
    try {
      return await (this.verifyToken as Verify)(token);
    } catch (err) {
      throw new TokenRefusal(refusalReason(err));
    }
  }

  private compile(perms: Record<string, string[]>): Permissions {
    const key = JSON.stringify(perms);
    let compiled = this.compiled.get(key);
    if (compiled === undefined) {
      if (this.compiled.size >= MAX_COMPILED_PERMISSIONS) this.compiled.clear();
      compiled = new Permissions(perms);
      this.compiled.set(key, compiled);
    }
    return compiled;
  }

  private identity(claims: RelayClaims | null, isServer: boolean): ConnectionIdentity {
    // Secure by default: `defaultPermissions` (everything, unless set) would let every browser token read every event.
    let permissions = isServer ? this.defaultPermissions : this.passiveDefaultPermissions;
    let tenant = '';
    let subject: string | null = null;
    let expiresAt: number | null = null;
    if (claims !== null) {
      const perms = claims[this.options.permissionsClaim];
      if (perms !== undefined) {
        const problem = permissionsProblem(perms);
        if (problem) throw new TokenRefusal(`the "${this.options.permissionsClaim}" claim ${problem}`);
        permissions = this.compile(perms as Record<string, string[]>);
      }
      const t = claims[this.options.tenantClaim];
      if (t !== undefined) {
        if (typeof t !== 'string' || t.length === 0 || t.includes('\u0000')) {
          throw new TokenRefusal(`the "${this.options.tenantClaim}" claim must be a non-empty string without NUL characters`);
        }
        tenant = t;
      }
      // A `sub` that is not a string would leave the connection without a subject: no node-id binding, no subject check on refresh.
      if (claims.sub !== undefined) {
        if (typeof claims.sub !== 'string' || claims.sub.length === 0) throw new TokenRefusal('the "sub" claim must be a non-empty string');
        subject = claims.sub;
      }
      if (typeof claims.exp === 'number') expiresAt = claims.exp * 1000;
    }
    return {
      claims,
      encodedClaims: claims === null ? null : encodePayload(claims),
      subject,
      tenant,
      isServer,
      permissions,
      expiresAt,
    };
  }
}

function hasServerRole(claims: RelayClaims): boolean {
  return claims.role === 'server' || (Array.isArray(claims.roles) && claims.roles.includes('server'));
}

function buildVerifier(auth: RelayAuthOptions): Verify {
  const base = {
    issuer: auth.issuer,
    audience: auth.audience,
    clockTolerance: auth.clockToleranceSec ?? DEFAULT_CLOCK_TOLERANCE_SEC,
  };
  if (auth.secret !== undefined) {
    const key = typeof auth.secret === 'string' ? new TextEncoder().encode(auth.secret) : auth.secret;
    const options = { ...base, algorithms: auth.algorithms ?? ['HS256'] };
    return async token => (await jwtVerify(token, key, options)).payload;
  }
  if (auth.publicKey !== undefined) {
    const key = createPublicKey(auth.publicKey);
    // Checked whatever auth.algorithms says: jose can verify no token with an RSA-PSS key.
    const keyAlgorithms = algorithmsFor(key);
    const options = { ...base, algorithms: auth.algorithms ?? keyAlgorithms };
    return async token => (await jwtVerify(token, key, options)).payload;
  }
  const options = { ...base, algorithms: auth.algorithms ?? ASYMMETRIC };
  const getKey = jwksGetter(auth.jwks as NonNullable<RelayAuthOptions['jwks']>, auth.jwksCooldownMs ?? DEFAULT_JWKS_COOLDOWN_MS);
  return async token => (await jwtVerify(token, getKey, options)).payload;
}

function algorithmsFor(key: KeyObject): string[] {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return ['RS256', 'RS384', 'RS512'];
    case 'rsa-pss':
      // jose cannot verify with such a key: every token would be refused.
      throw new TypeError(
        "RelayModule: auth.publicKey is an RSA-PSS key, which cannot verify tokens; give the signer's RSA public key with auth.algorithms: ['PS256'] (or PS384, PS512)",
      );
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      return [curve === 'secp384r1' ? 'ES384' : curve === 'secp521r1' ? 'ES512' : 'ES256'];
    }
    case 'ed25519':
      return ['EdDSA', 'Ed25519'];
    default:
      throw new TypeError(`RelayModule: auth.publicKey of type ${key.asymmetricKeyType} is not supported`);
  }
}

/** A key getter over a JWKS URL (jose caches and refetches it), a file (re-read on an unknown kid), or a document. */
function jwksGetter(jwks: NonNullable<RelayAuthOptions['jwks']>, cooldownMs: number): JWTVerifyGetKey {
  if (typeof jwks !== 'string') return createLocalJWKSet(jwks);
  if (/^https?:\/\//i.test(jwks)) {
    return createRemoteJWKSet(new URL(jwks), { cooldownDuration: cooldownMs });
  }
  const read = () => createLocalJWKSet(JSON.parse(readFileSync(jwks, 'utf8')) as JSONWebKeySet);
  let local = read();
  let readAt = Date.now();
  return async (header, token) => {
    try {
      return await local(header, token);
    } catch (err) {
      if (!(err instanceof errors.JWKSNoMatchingKey) || Date.now() - readAt < cooldownMs) throw err;
      readAt = Date.now();
      local = read();
      return local(header, token);
    }
  };
}

function refusalReason(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'token expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf') return 'token not yet valid';
    if (err.claim === 'iss') return 'unexpected token issuer';
    if (err.claim === 'aud') return 'unexpected token audience';
    return `token claim "${err.claim}" is not acceptable (${err.reason})`;
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'token signature does not verify';
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) {
    return 'token algorithm is not accepted';
  }
  if (err instanceof errors.JWKSNoMatchingKey) return 'no key matches the token';
  if (err instanceof errors.JWKSMultipleMatchingKeys) return 'several keys match the token';
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid || err instanceof errors.JOSEError) {
    return 'malformed token';
  }
  return 'token could not be verified';
}

/** The identity of every connection when auth is off and no `isServerConnection` narrows it. */
export const OPEN_IDENTITY: ConnectionIdentity = Object.freeze({
  claims: null,
  encodedClaims: null,
  subject: null,
  tenant: '',
  isServer: true,
  permissions: new Permissions(ALL_PERMISSIONS),
  expiresAt: null,
});
