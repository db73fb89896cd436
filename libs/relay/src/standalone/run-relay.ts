import { type INestApplication, Logger } from '@nestjs/common';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRelayLogger } from '../logs/relay-logger.js';
import { createRelayApp } from '../relay.bootstrap.js';
import { DEFAULT_RELAY_DRAIN_TIMEOUT_MS, DEFAULT_RELAY_PATH } from '../relay.constants.js';
import { relayConfigFromEnv } from './relay-env.config.js';

/** How long past its drain a stopping relay may take to close before the process exits anyway. */
const STOP_GRACE_MS = 5000;

/** Options of `runRelay()`. */
export interface RunRelayOptions {
  /**
   * Where the settings come from (see `relayConfigFromEnv`).
   * @default process.env
   */
  env?: NodeJS.ProcessEnv;
  /**
   * Stop on SIGTERM and SIGINT: drain (up to `drainTimeoutMs`), close, exit 0;
   * a second signal exits at once (1).
   * @default true
   */
  handleSignals?: boolean;
}

/** A relay started by `runRelay()`. */
export interface RunningRelay {
  app: INestApplication;
  /** Where nodes connect, e.g. `ws://127.0.0.1:8787/relay`. */
  url: string;
  /** Drains and closes the relay (what SIGTERM does, without exiting). */
  close(): Promise<void>;
}

/**
 * Starts the relay the way the `wsrelay-relay` executable does: configured by
 * the environment (RELAY_PORT, RELAY_HOST, RELAY_JWT_SECRET, ...), listening
 * once the promise resolves. It logs as RELAY_LOG_FORMAT and RELAY_LOG_LEVEL
 * say (text from 'log' up by default, or NEST_LOG_LEVEL's levels when that is set).
 */
export async function runRelay(options: RunRelayOptions = {}): Promise<RunningRelay> {
  const logger = new Logger('Relay');
  const env = options.env ?? process.env;
  const config = relayConfigFromEnv(env);
  const level = config.log?.level ?? (env.NEST_LOG_LEVEL ? undefined : 'log');
  const { tls, statusToken, metricsPath, metricsToken } = config;
  const app = await createRelayApp(config.relay, {
    tls,
    statusToken,
    metricsPath,
    metricsToken,
    logger: createRelayLogger({ format: config.log?.format, level }),
  });
  // Before it listens: a signal that comes as soon as it accepts connections drains it too.
  let closing: Promise<void> | undefined;
  const signals: NodeJS.Signals[] = options.handleSignals === false ? [] : ['SIGTERM', 'SIGINT'];
  const close = () => (closing ??= app.close());
  if (signals.length > 0) {
    const drainMs = config.relay.drainTimeoutMs ?? DEFAULT_RELAY_DRAIN_TIMEOUT_MS;
    const onSignal = (signal: NodeJS.Signals) => {
      if (closing !== undefined) {
        logger.warn(`${signal} again: exiting without waiting for the drain`);
        process.exit(1);
      }
      logger.log(`${signal}: draining (up to ${drainMs} ms), then closing`);
      // A close that hangs (a stuck socket) must not keep the process from exiting.
      setTimeout(() => {
        logger.error(`The relay did not close within ${drainMs + STOP_GRACE_MS} ms of ${signal}; exiting`);
        process.exit(1);
      }, drainMs + STOP_GRACE_MS).unref();
      close().then(
        () => {
          logger.log('Relay closed');
          process.exit(0);
        },
        (err: unknown) => {
          logger.error(`Relay close failed: ${err instanceof Error ? err.message : String(err)}`);
          process.exit(1);
        },
      );
    };
    for (const signal of signals) process.on(signal, onSignal);
  }
  await app.listen(config.port, config.host);
  const { port } = (app.getHttpServer() as Server).address() as AddressInfo;
  const url = `${config.tls ? 'wss' : 'ws'}://${config.host}:${port}${config.relay.path ?? DEFAULT_RELAY_PATH}`;
  logger.log(`Relay listening on ${url}`);
  return { app, url, close };
}
