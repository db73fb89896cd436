import { Logger } from '@nestjs/common';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createRequire } from 'node:module';
import { DEFAULT_STATUS_PATH } from '../relay.bootstrap.js';
import { relayConfigFromEnv } from './relay-env.config.js';
import { runRelay } from './run-relay.js';

const HEALTHCHECK_TIMEOUT_MS = 3000;

const USAGE = `Usage: wsrelay-relay [healthcheck | --version | --help]

  (no argument)  run the relay; SIGTERM or SIGINT drains it and exits 0
  healthcheck    GET the running relay's /status on RELAY_HOST:RELAY_PORT; exit 0 when it answers 200 (ready)

Configured by environment variables: RELAY_PORT (8787), RELAY_HOST (127.0.0.1),
RELAY_PATH (/relay), RELAY_JWT_SECRET | RELAY_JWT_PUBLIC_KEY_FILE | RELAY_JWKS,
RELAY_REDIS_URL (cluster), RELAY_TLS_KEY_FILE + RELAY_TLS_CERT_FILE, and the
others in the table of the @wsrelay/relay README (node_modules/@wsrelay/relay/README.md).`;

/** The `wsrelay-relay` executable; resolves with its exit code, or never while the relay runs. */
export async function cli(args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number | undefined> {
  const [command] = args;
  if (command === '--help' || command === '-h') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (command === '--version' || command === '-v') {
    const pkg = createRequire(import.meta.url)('../../package.json') as { version: string };
    process.stdout.write(`${pkg.version}\n`);
    return 0;
  }
  if (command === 'healthcheck') return healthcheck(env);
  if (command !== undefined) {
    process.stderr.write(`wsrelay-relay: unknown argument "${command}"\n\n${USAGE}\n`);
    return 2;
  }
  await runRelay({ env });
  return undefined;
}

/** Asks a relay on this host for its status (what a container's HEALTHCHECK runs). */
function healthcheck(env: NodeJS.ProcessEnv): Promise<number> {
  const config = relayConfigFromEnv(env);
  // A relay bound to every interface is reached on loopback.
  const host = ['0.0.0.0', '::', ''].includes(config.host) ? '127.0.0.1' : config.host;
  const request = config.tls ? httpsRequest : httpRequest;
  return new Promise(resolve => {
    const req = request(
      // The relay's own certificate may not name the loopback address.
      { host, port: config.port, path: DEFAULT_STATUS_PATH, timeout: HEALTHCHECK_TIMEOUT_MS, rejectUnauthorized: false },
      res => {
        res.resume();
        const ok = res.statusCode === 200;
        (ok ? process.stdout : process.stderr).write(`relay at ${host}:${config.port}: HTTP ${res.statusCode}\n`);
        resolve(ok ? 0 : 1);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${HEALTHCHECK_TIMEOUT_MS} ms`)));
    req.on('error', err => {
      process.stderr.write(`relay at ${host}:${config.port}: ${err.message}\n`);
      resolve(1);
    });
    req.end();
  });
}

/** Runs the executable and exits with its code (the relay itself exits on its signals). */
export function runCli(): void {
  cli(process.argv.slice(2)).then(
    code => {
      if (code !== undefined) process.exit(code);
    },
    (err: unknown) => {
      new Logger('Relay').error(err instanceof Error ? err.message : String(err));
      process.exit(1);
    },
  );
}
