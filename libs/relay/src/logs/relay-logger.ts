import { ConsoleLogger, type LogLevel } from '@nestjs/common';

/** How the relay writes its log: text lines for people, or JSON lines for a collector. */
export type RelayLogFormat = 'text' | 'json';

/** The least severe level written (each level includes those above it). */
export type RelayLogLevel = 'error' | 'warn' | 'log' | 'debug' | 'verbose';

export const RELAY_LOG_FORMATS: readonly RelayLogFormat[] = ['text', 'json'];
export const RELAY_LOG_LEVELS: readonly RelayLogLevel[] = ['error', 'warn', 'log', 'debug', 'verbose'];

/** Options of `createRelayLogger()`. */
export interface RelayLoggerOptions {
  /** @default 'text' */
  format?: RelayLogFormat;
  /** @default every level (or NEST_LOG_LEVEL's) */
  level?: RelayLogLevel;
}

/** Nest's levels from the least severe up. */
const ORDER: readonly LogLevel[] = ['verbose', 'debug', 'log', 'warn', 'error', 'fatal'];

/** The levels written at `level`: it and every more severe one. */
export function relayLogLevels(level: RelayLogLevel): LogLevel[] {
  return ORDER.slice(ORDER.indexOf(level));
}

/**
 * The relay's logger: Nest's ConsoleLogger, writing JSON lines (one object
 * per line: level, pid, timestamp, message, context, and the fields a line
 * carries such as `event`) or text lines, coloured only on a terminal.
 * `createRelayApp(options, { logger: createRelayLogger({ format: 'json' }) })`.
 */
export function createRelayLogger(options: RelayLoggerOptions = {}, out: { isTTY?: boolean } = process.stdout): ConsoleLogger {
  const json = options.format === 'json';
  return new ConsoleLogger({
    json,
    // A file, a pipe or a collector gets no escape codes.
    colors: !json && out.isTTY === true && !process.env.NO_COLOR,
    logLevels: options.level === undefined ? undefined : relayLogLevels(options.level),
    // A line's fields (event, reason, ...) sit beside its message, not under `params`.
    flattenParams: json,
  });
}
