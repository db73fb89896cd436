import {
  ArrayMinSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsNotEmpty,
  IsNumber,
  IsObject,
  IsOptional,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateBy,
  validateSync,
  type ValidationError,
  type ValidationOptions,
} from 'class-validator';
import { MAX_CREDIT } from '@wsrelay/protocol';
import type { WsRelayClientOptions, WsRelayStrategyOptions } from './ws-relay-options.interface.js';
import { metricsProblems } from '../metrics/metrics-options.js';

const MAX_TIMER_MS = 0x7fff_ffff;

function IsStringOrFunction(options?: ValidationOptions) {
  return ValidateBy(
    {
      name: 'isStringOrFunction',
      validator: {
        validate: (v: unknown) => (typeof v === 'string' && v.length > 0) || typeof v === 'function',
        defaultMessage: a => `${a?.property} must be a non-empty string or a function returning one`,
      },
    },
    options,
  );
}

function HasMethod(method: string, options?: ValidationOptions) {
  return ValidateBy(
    {
      name: 'hasMethod',
      validator: {
        validate: (v: unknown) => typeof v === 'object' && v !== null && typeof (v as Record<string, unknown>)[method] === 'function',
        defaultMessage: a => `${a?.property} must be an object with a ${method}() method`,
      },
    },
    options,
  );
}

/** The `metrics` option: its own checks, each problem naming its field. */
function IsMetricsOptions(options?: ValidationOptions) {
  return ValidateBy(
    {
      name: 'isMetricsOptions',
      validator: {
        validate: (v: unknown) => metricsProblems(v).length === 0,
        defaultMessage: a => metricsProblems(a?.value).join('; '),
      },
    },
    options,
  );
}

class ReconnectOptionsSchema {
  @IsOptional() @IsInt() @Min(0) @Max(MAX_TIMER_MS) initialDelayMs?: number;
  @IsOptional() @IsInt() @Min(1) @Max(MAX_TIMER_MS) maxDelayMs?: number;
  @IsOptional() @IsNumber() @Min(1) multiplier?: number;
  @IsOptional() @IsNumber() @Min(0) @Max(1) jitter?: number;
}

class ConnectionOptionsSchema {
  @IsArray()
  @ArrayMinSize(1)
  @IsString({ each: true })
  @Matches(/^wss?:\/\/[^\s]+$/i, { each: true, message: 'each value in urls must be a ws:// or wss:// URL' })
  urls!: string[];

  @IsOptional() @IsStringOrFunction() token?: unknown;
  @IsOptional() @IsIn(['header', 'query', 'protocol']) tokenCarrier?: string;
  @IsOptional() @IsObject() tls?: object;
  @IsOptional() @IsString() @IsNotEmpty() @MaxLength(256) nodeId?: string;
  @IsOptional() @IsInt() @Min(10) @Max(MAX_TIMER_MS) heartbeatIntervalMs?: number;
  @IsOptional() @IsInt() @Min(1) @Max(MAX_TIMER_MS) connectTimeoutMs?: number;
  @IsOptional() @IsInt() @Min(1) @Max(MAX_TIMER_MS) handshakeTimeoutMs?: number;
  @IsOptional() @IsInt() @Min(0) maxOfflineQueue?: number;
  @IsOptional() @IsIn(['failover', 'all']) mode?: string;
  @IsOptional() @HasMethod('serialize') serializer?: unknown;
  @IsOptional() @HasMethod('deserialize') deserializer?: unknown;
  @IsOptional() @IsBoolean() tracing?: boolean;
  @IsOptional() @IsMetricsOptions() metrics?: unknown;
}

class StrategyOptionsSchema extends ConnectionOptionsSchema {
  @IsOptional() @IsString() @IsNotEmpty() @MaxLength(256) service?: string;
  @IsOptional() @IsString() @IsNotEmpty() @MaxLength(256) queue?: string;
  @IsOptional() @IsInt() @Min(0) @Max(MAX_TIMER_MS) drainTimeoutMs?: number;
  @IsOptional() @IsInt() @Min(1) maxStreamBufferedBytes?: number;
}

class ClientOptionsSchema extends ConnectionOptionsSchema {
  @IsOptional() @IsInt() @Min(1) @Max(MAX_TIMER_MS) timeoutMs?: number;
  @IsOptional() @IsIn(['relay', 'handlers']) eventAck?: string;
  @IsOptional() @IsInt() @Min(1) maxInFlight?: number;
  @IsOptional() @IsInt() @Min(1) maxBufferedBytes?: number;
  @IsOptional() @IsInt() @Min(0) @Max(MAX_CREDIT) streamWindow?: number;
}

function messages(errors: ValidationError[], prefix = ''): string[] {
  return errors.flatMap(e => [
    ...Object.values(e.constraints ?? {}).map(m => prefix + m),
    ...messages(e.children ?? [], `${prefix}${e.property}.`),
  ]);
}

function check<T extends object>(owner: string, schema: T, input: unknown): void {
  if (typeof input !== 'object' || input === null) {
    throw new TypeError(`${owner}: options must be an object with at least "urls"`);
  }
  Object.assign(schema, input);
  const problems = messages(validateSync(schema, { forbidUnknownValues: false }));
  const reconnect = (input as { reconnect?: unknown }).reconnect;
  if (reconnect !== undefined) {
    if (typeof reconnect !== 'object' || reconnect === null) {
      problems.push('reconnect must be an object');
    } else {
      const r = Object.assign(new ReconnectOptionsSchema(), reconnect);
      problems.push(...messages(validateSync(r), 'reconnect.'));
      if (r.initialDelayMs !== undefined && r.maxDelayMs !== undefined && r.initialDelayMs > r.maxDelayMs) {
        problems.push('reconnect.initialDelayMs must not be greater than reconnect.maxDelayMs');
      }
    }
  }
  if (problems.length > 0) {
    throw new TypeError(`${owner}: invalid options: ${problems.join('; ')}`);
  }
}

/** Throws a TypeError naming every bad option. */
export function validateStrategyOptions(options: WsRelayStrategyOptions): void {
  check('WsRelayStrategy', new StrategyOptionsSchema(), options);
}

/** Throws a TypeError naming every bad option. */
export function validateClientOptions(options: WsRelayClientOptions): void {
  check('WsRelayClient', new ClientOptionsSchema(), options);
}
