import type { INestApplication, LoggerService, LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { RelayCore } from './core/relay-core.js';
import { endpointPaths, type EndpointServer, type RelayEndpointOptions, serveEndpoints } from './endpoints/relay-endpoints.js';
import { RelayWsAdapter } from './gateway/relay-ws.adapter.js';
import type { RelayModuleOptions } from './interfaces/relay-options.interface.js';
import { RelayMetrics } from './metrics/relay-metrics.js';
import { RelayModule } from './relay.module.js';

export {
  DEFAULT_LIVEZ_PATH,
  DEFAULT_METRICS_PATH,
  DEFAULT_READYZ_PATH,
  DEFAULT_STATUS_DETAIL_PATH,
  DEFAULT_STATUS_PATH,
  type RelayEndpointOptions,
} from './endpoints/relay-endpoints.js';

/** Options of the relay's Nest app itself (not of the routing): its logger, TLS, and its HTTP endpoints. */
export interface RelayAppOptions extends RelayEndpointOptions {
  /** The app's logger (`createRelayLogger()` for JSON lines), log levels, or false for none. */
  logger?: LoggerService | LogLevel[] | false;
  /**
   * Node's default process metrics (CPU, memory, event loop, GC) in the
   * relay's registry, beside its own. Set false when you merge
   * `app.get(RelayMetrics).registry` into a registry that has them already.
   * @default true
   */
  processMetrics?: boolean;
  /** Serve `wss://` with this PEM key and certificate (and optional CA chain). */
  tls?: { key: string | Buffer; cert: string | Buffer; ca?: string | Buffer | Array<string | Buffer> };
}

/**
 * Creates a relay app (not yet listening) with the relay adapter in place:
 * `const app = await createRelayApp(options); await app.listen(8787)`. It
 * serves GET /livez, /readyz, /status, /status/detail (with a status token)
 * and /metrics beside the relay's WebSocket path.
 */
export async function createRelayApp(options: RelayModuleOptions = {}, appOptions: RelayAppOptions = {}): Promise<INestApplication> {
  const paths = endpointPaths(appOptions);
  const app = await NestFactory.create(RelayModule.forRoot(options), {
    logger: appOptions.logger,
    abortOnError: false,
    httpsOptions: appOptions.tls,
  });
  app.useWebSocketAdapter(new RelayWsAdapter(app));
  const core = app.get(RelayCore);
  const metrics = app.get(RelayMetrics);
  if (appOptions.processMetrics !== false) metrics.withProcessMetrics();
  serveEndpoints(app.getHttpAdapter() as EndpointServer, paths, appOptions, {
    readiness: () => core.readiness(),
    status: () => core.status(),
    metrics,
  });
  return app;
}
