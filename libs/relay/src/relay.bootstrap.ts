import type { INestApplication, LoggerService, LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { RelayModuleOptions } from './interfaces/relay-options.interface.js';
import { RelayModule } from './relay.module.js';
import { RelayCore } from './core/relay-core.js';
import { RelayWsAdapter } from './gateway/relay-ws.adapter.js';
import type { ServerResponse } from 'node:http';

export const DEFAULT_STATUS_PATH = '/status';

/** Options of the relay's Nest app itself (not of the routing). */
export interface RelayAppOptions {
  logger?: LoggerService | LogLevel[] | false;
  /**
   * HTTP path of the status endpoint (JSON: connection counts, cluster
   * membership and health; no node ids); `false` for none. It answers 503
   * while the relay is cut off from a configured cluster, for load balancers.
   * @default '/status'
   */
  statusPath?: string | false;
  /** Serve `wss://` with this PEM key and certificate (and optional CA chain). */
  tls?: { key: string | Buffer; cert: string | Buffer; ca?: string | Buffer | Array<string | Buffer> };
}

/**
 * Creates a relay app (not yet listening) with the relay adapter in place:
 * `const app = await createRelayApp(options); await app.listen(8787)`.
 */
export async function createRelayApp(options: RelayModuleOptions = {}, appOptions: RelayAppOptions = {}): Promise<INestApplication> {
  const app = await NestFactory.create(RelayModule.forRoot(options), {
    logger: appOptions.logger,
    abortOnError: false,
    httpsOptions: appOptions.tls,
  });
  app.useWebSocketAdapter(new RelayWsAdapter(app));
  const statusPath = appOptions.statusPath ?? DEFAULT_STATUS_PATH;
  if (statusPath !== false) {
    const core = app.get(RelayCore);
    const clustered = options.cluster?.redis !== undefined || options.cluster?.backplane !== undefined;
    app.getHttpAdapter().get(statusPath, (_req: unknown, res: ServerResponse) => {
      const status = core.status();
      res.statusCode = clustered && !status.cluster.healthy ? 503 : 200;
      res.setHeader('content-type', 'application/json');
      res.setHeader('cache-control', 'no-store');
      res.end(JSON.stringify(status));
    });
  }
  return app;
}
