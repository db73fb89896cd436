import { type CryptoKey, exportJWK, exportSPKI, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose';

export const SECRET = 'test-secret-that-is-long-enough-for-hs256!';
export const ISSUER = 'https://issuer.test';
export const AUDIENCE = 'wsrelay-tests';

export interface Mint {
  /** Claims besides the registered ones (role, perms, tenant, ...). */
  claims?: JWTPayload;
  sub?: string;
  /** Seconds from now; negative for an expired token; null for none. */
  expiresIn?: number | null;
  /** Seconds from now for `nbf`. */
  notBefore?: number;
  issuer?: string;
  audience?: string;
  kid?: string;
  alg?: string;
}

const now = () => Math.floor(Date.now() / 1000);

/** A real signed JWT (HS256 with SECRET unless a key is given). */
export async function mint(m: Mint = {}, key: CryptoKey | Uint8Array = new TextEncoder().encode(SECRET)): Promise<string> {
  const jwt = new SignJWT({ ...m.claims })
    .setProtectedHeader({ alg: m.alg ?? 'HS256', ...(m.kid ? { kid: m.kid } : {}) })
    .setIssuedAt()
    .setIssuer(m.issuer ?? ISSUER)
    .setAudience(m.audience ?? AUDIENCE);
  if (m.sub !== undefined) jwt.setSubject(m.sub);
  if (m.expiresIn !== null) jwt.setExpirationTime(now() + (m.expiresIn ?? 3600));
  if (m.notBefore !== undefined) jwt.setNotBefore(now() + m.notBefore);
  return jwt.sign(key);
}

/** Upgrade options carrying a token as a Bearer header: the token itself, or one minted (mint()) from `m`. */
export async function bearer(token: string | Mint): Promise<{ headers: { authorization: string } }> {
  return { headers: { authorization: `Bearer ${typeof token === 'string' ? token : await mint(token)}` } };
}

/** A token with `alg: none` (unsigned), built by hand since no library signs one. */
export function unsigned(claims: JWTPayload): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ iss: ISSUER, aud: AUDIENCE, exp: now() + 3600, ...claims })}.`;
}

export interface KeyPair {
  privateKey: CryptoKey;
  publicPem: string;
  jwk: JWK;
}

export async function keyPair(alg: 'RS256' | 'ES256', kid?: string): Promise<KeyPair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), alg, use: 'sig', ...(kid ? { kid } : {}) };
  return { privateKey, publicPem: await exportSPKI(publicKey), jwk };
}

/** Server and client roles, as the relay's default isServerConnection reads them. */
export const SERVER = { role: 'server' } as const;
export const CLIENT = { role: 'client' } as const;
