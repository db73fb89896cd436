import {
  IsArray,
  IsBoolean,
  IsInt,
  IsNotEmpty,
  IsOptional,
  IsString,
  Matches,
  Max,
  Min,
  ValidateBy,
  validateSync,
  type ValidationError,
  type ValidationOptions,
} from 'class-validator';
import { permissionsProblem } from './auth/permissions.js';
import type { RelayAuthOptions, RelayClusterOptions, RelayModuleOptions } from './interfaces/relay-options.interface.js';

/** A property checked by `check(value)`, which says what is wrong (null: nothing). */
function Satisfies(check: (value: unknown) => string | null, options?: ValidationOptions) {
  return ValidateBy(
    {
      name: 'satisfies',
      validator: {
        validate: (v: unknown) => check(v) === null,
        defaultMessage: a => `${a?.property} ${check(a?.value) ?? ''}`,
      },
    },
    options,
  );
}

const isFunction = (v: unknown) => (typeof v === 'function' ? null : 'must be a function (claims, request) => boolean');
const isPermissions = (v: unknown) => permissionsProblem(v);
const isRedis = (v: unknown) =>
  (typeof v === 'string' && /^rediss?:\/\//.test(v)) || (typeof v === 'object' && v !== null)
    ? null
    : `must be a redis:// or rediss:// URL or ioredis options, got ${JSON.stringify(v)}`;
const isRateLimit = (v: unknown) =>
  v === false || (typeof v === 'object' && v !== null) ? null : 'must be { perSecond, burst? } or false';
const isObject = (v: unknown) => (typeof v === 'object' && v !== null ? null : 'must be an object');
const isAuth = (v: unknown) => (v === false || (typeof v === 'object' && v !== null) ? null : 'must be an object or false');
const isBackplane = (v: unknown) =>
  typeof v === 'object' &&
  v !== null &&
  ['start', 'publish', 'send', 'close'].every(m => typeof (v as Record<string, unknown>)[m] === 'function')
    ? null
    : 'must implement the Backplane interface (start, publish, send, close)';

class RelayOptionsSchema {
  @IsOptional() @IsString() @Matches(/^\//, { message: 'path must start with "/"' }) path?: string;
  @IsOptional() @IsInt() @Min(64) maxPayloadBytes?: number;
  @IsOptional() @IsInt() @Min(10) heartbeatIntervalMs?: number;
  @IsOptional() @IsInt() @Min(1) handshakeTimeoutMs?: number;
  @IsOptional() @IsInt() @Min(1) maxBadFrames?: number;
  @IsOptional() @IsString() @IsNotEmpty() relayId?: string;
  @IsOptional() @Satisfies(isAuth) auth?: unknown;
  @IsOptional() @Satisfies(isFunction) isServerConnection?: unknown;
  @IsOptional() @IsString() @IsNotEmpty() permissionsClaim?: string;
  @IsOptional() @Satisfies(isPermissions) defaultPermissions?: unknown;
  @IsOptional() @IsString() @IsNotEmpty() tenantClaim?: string;
  @IsOptional() @IsInt() @Min(1) maxConnections?: number;
  @IsOptional() @IsInt() @Min(1) maxConnectionsPerSubject?: number;
  @IsOptional() @IsInt() @Min(1) maxConnectionsPerIp?: number;
  @IsOptional() @IsInt() @Min(1) maxHandshakesPerSubject?: number;
  @IsOptional() @IsInt() @Min(1) maxHandshakesPerIp?: number;
  @IsOptional() @IsBoolean() trustProxy?: boolean;
  @IsOptional() @IsInt() @Min(1) upgradeTimeoutMs?: number;
  @IsOptional() @Satisfies(isRateLimit) rateLimit?: unknown;
  @IsOptional() @IsInt() @Min(1) maxInFlightPerConnection?: number;
  @IsOptional()
  @IsArray()
  @IsString({ each: true, message: 'allowedOrigins must be an array of origins like "https://app.example.com"' })
  allowedOrigins?: string[];
  @IsOptional() @IsBoolean() perMessageDeflate?: boolean;
  @IsOptional() @IsBoolean() tracing?: boolean;
  @IsOptional() @IsInt() @Min(0) nodeIdReservationMs?: number;
  @IsOptional() @IsInt() @Min(0) drainTimeoutMs?: number;
  @IsOptional() @IsInt() @Min(1024) maxBufferedBytes?: number;
  @IsOptional() @IsInt() @Min(1) eventAckTimeoutMs?: number;
  @IsOptional() @IsInt() @Min(1) maxEventAttempts?: number;
  @IsOptional() @IsInt() @Min(0) startupGraceMs?: number;
  @IsOptional() @IsInt() @Min(1) @Max(0x7fff_ffff) maxWaitTimeoutMs?: number;
  @IsOptional() @Satisfies(isObject) budgets?: unknown;
}

class BudgetsSchema {
  @IsOptional() @IsInt() @Min(0) waitBytes?: number;
  @IsOptional() @IsInt() @Min(0) heldBytes?: number;
  @IsOptional() @IsInt() @Min(0) retainedBytes?: number;
  @IsOptional() @IsInt() @Min(0) unsentBytes?: number;
  @IsOptional() @IsInt() @Min(0) routeCacheBytes?: number;
}

class RateLimitSchema {
  @IsInt() @Min(1) perSecond!: number;
  @IsOptional() @IsInt() @Min(1) burst?: number;
}

class AuthSchema {
  @IsOptional() @IsArray() @IsString({ each: true }) algorithms?: string[];
  @IsOptional() @IsInt() @Min(0) clockToleranceSec?: number;
  @IsOptional() @IsInt() @Min(0) jwksCooldownMs?: number;
  @IsOptional() @IsInt() @Min(0) expiryWarningMs?: number;
  @IsOptional() @IsInt() @Min(1) maxRefreshFailures?: number;
}

class ClusterSchema {
  @IsOptional() @Satisfies(isRedis) redis?: unknown;
  @IsOptional() @IsString() @IsNotEmpty() channelPrefix?: string;
  @IsOptional() @Satisfies(isBackplane) backplane?: unknown;
  @IsOptional() @IsInt() @Min(10) heartbeatIntervalMs?: number;
  @IsOptional() @IsInt() @Min(1) timeoutMs?: number;
  @IsOptional() @IsInt() @Min(1024) maxMessageBytes?: number;
}

function messages(errors: ValidationError[], prefix: string): string[] {
  return errors.flatMap(e => [
    ...Object.values(e.constraints ?? {}).map(m => prefix + m),
    ...messages(e.children ?? [], `${prefix}${e.property}.`),
  ]);
}

function problemsOf<T extends object>(schema: T, input: object, prefix = ''): string[] {
  return messages(validateSync(Object.assign(schema, input), { forbidUnknownValues: false }), prefix);
}

/** What is wrong with the auth options besides their types: one key, never "none". */
function authProblems(a: RelayAuthOptions): string[] {
  const problems = problemsOf(new AuthSchema(), a, 'auth.');
  const keys = [a.secret, a.publicKey, a.jwks].filter(k => k !== undefined && k !== '');
  if (keys.length !== 1) problems.push('auth needs exactly one of secret, publicKey or jwks');
  if (a.algorithms?.some(alg => alg.toLowerCase() === 'none')) problems.push('auth.algorithms must not include "none"');
  return problems;
}

function clusterProblems(c: RelayClusterOptions): string[] {
  const problems = problemsOf(new ClusterSchema(), c, 'cluster.');
  if (c.redis !== undefined && c.backplane !== undefined)
    problems.push('cluster.redis and cluster.backplane cannot be used together; give one');
  return problems;
}

/** Throws a TypeError naming every bad relay option. */
export function validateRelayOptions(o: RelayModuleOptions): void {
  if (typeof o !== 'object' || o === null) throw new TypeError('RelayModule: options must be an object');
  const problems = problemsOf(new RelayOptionsSchema(), o);
  if (typeof o.rateLimit === 'object' && o.rateLimit !== null)
    problems.push(...problemsOf(new RateLimitSchema(), o.rateLimit, 'rateLimit.'));
  if (typeof o.auth === 'object' && o.auth !== null) problems.push(...authProblems(o.auth));
  if (typeof o.cluster === 'object' && o.cluster !== null) problems.push(...clusterProblems(o.cluster));
  if (typeof o.budgets === 'object' && o.budgets !== null) problems.push(...problemsOf(new BudgetsSchema(), o.budgets, 'budgets.'));
  if (problems.length > 0) throw new TypeError(`RelayModule: invalid options: ${problems.join('; ')}`);
}
