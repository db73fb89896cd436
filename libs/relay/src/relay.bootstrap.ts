import type { INestApplication, LoggerService, LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { RelayModuleOptions } from './interfaces/relay-options.interface.js';
import { RelayModule } from './relay.module.js';
import { RelayCore } from './core/relay-core.js';
import { RelayWsAdapter } from './gateway/relay-ws.adapter.js';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

export const DEFAULT_STATUS_PATH = '/status';
export const DEFAULT_STATUS_DETAIL_PATH = '/status/detail';

/** Options of the relay's Nest app itself (not of the routing). */
export interface RelayAppOptions {
  logger?: LoggerService | LogLevel[] | false;
  /**
   * HTTP path of the public readiness endpoint, for load balancers and
   * health checks: 200 `{"status":"ok","ready":true}`, or 503 with
   * `ready: false` and a short reason while the relay drains or, in a
   * cluster, while its backplane is down or it has not yet synced with the
   * other relays. It discloses nothing else. `false` for none.
   * @default '/status'
   */
  statusPath?: string | false;
  /**
   * HTTP path of the detailed status (JSON: connection counts, memory,
   * budgets, cluster membership and instance ids), served only with
   * `Authorization: Bearer <statusToken>` (401 otherwise); not served at all
   * without a `statusToken` (404). `false` for none.
   * @default '/status/detail'
   */
  statusDetailPath?: string | false;
  /**
   * The bearer token that `statusDetailPath` asks for (environment:
   * RELAY_STATUS_TOKEN). Without one the detail is not served.
   */
  statusToken?: string;
  /** Serve `wss://` with this PEM key and certificate (and optional CA chain). */
  tls?: { key: string | Buffer; cert: string | Buffer; ca?: string | Buffer | Array<string | Buffer> };
}

/**
 * Creates a relay app (not yet listening) with the relay adapter in place:
 * `const app = await createRelayApp(options); await app.listen(8787)`.
 */
export async function createRelayApp(options: RelayModuleOptions = {}, appOptions: RelayAppOptions = {}): Promise<INestApplication> {
  const paths = statusPaths(appOptions);
  const app = await NestFactory.create(RelayModule.forRoot(options), {
    logger: appOptions.logger,
    abortOnError: false,
    httpsOptions: appOptions.tls,
  });
  app.useWebSocketAdapter(new RelayWsAdapter(app));
  const core = app.get(RelayCore);
  const http = app.getHttpAdapter();
  if (paths.ready !== false) {
    http.get(paths.ready, (_req: unknown, res: ServerResponse) => {
      const { ready, reason } = core.readiness();
      answer(res, ready ? 200 : 503, ready ? { status: 'ok', ready } : { status: 'unavailable', ready, reason });
    });
  }
  const token = appOptions.statusToken;
  if (paths.detail !== false && token !== undefined) {
    const expected = digest(token);
    http.get(paths.detail, (req: IncomingMessage, res: ServerResponse) => {
      const given = /^Bearer +(\S+) *$/i.exec(req.headers.authorization ?? '')?.[1];
      // Compared as digests of equal length, in constant time: the answer says nothing about how close a guess was.
      if (given === undefined || !timingSafeEqual(digest(given), expected)) {
        res.setHeader('www-authenticate', 'Bearer realm="relay status"');
        answer(res, 401, { error: 'the detailed status needs the status token (Authorization: Bearer <token>)' });
        return;
      }
      answer(res, 200, core.status());
    });
  }
  return app;
}

/** The two paths, checked once: a bad combination is a TypeError naming the options. */
function statusPaths(o: RelayAppOptions): { ready: string | false; detail: string | false } {
  const ready = o.statusPath ?? DEFAULT_STATUS_PATH;
  const detail = o.statusDetailPath ?? DEFAULT_STATUS_DETAIL_PATH;
  for (const [name, path] of [
    ['statusPath', ready],
    ['statusDetailPath', detail],
  ] as const) {
    if (path !== false && (typeof path !== 'string' || !path.startsWith('/'))) {
      throw new TypeError(`createRelayApp: ${name} must be a path starting with "/" or false, got ${JSON.stringify(path)}`);
    }
  }
  if (ready !== false && ready === detail) throw new TypeError(`createRelayApp: statusPath and statusDetailPath are both "${ready}"`);
  if (o.statusToken !== undefined && (typeof o.statusToken !== 'string' || !/^\S+$/.test(o.statusToken))) {
    throw new TypeError(
      'createRelayApp: statusToken must be a non-empty string without spaces (it is sent as `Authorization: Bearer <statusToken>`)',
    );
  }
  return { ready, detail };
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

function answer(res: ServerResponse, status: number, body: unknown): void {
  res.statusCode = status;
  res.setHeader('content-type', 'application/json');
  res.setHeader('cache-control', 'no-store');
  res.end(JSON.stringify(body));
}
