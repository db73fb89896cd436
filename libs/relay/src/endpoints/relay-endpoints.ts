import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RelayReadiness, RelayStatus } from '../core/relay-status.js';
import type { RelayMetrics } from '../metrics/relay-metrics.js';

export const DEFAULT_STATUS_PATH = '/status';
export const DEFAULT_STATUS_DETAIL_PATH = '/status/detail';
export const DEFAULT_LIVEZ_PATH = '/livez';
export const DEFAULT_READYZ_PATH = '/readyz';
export const DEFAULT_METRICS_PATH = '/metrics';

/** The relay's HTTP endpoints beside its WebSocket path: health, status and metrics. */
export interface RelayEndpointOptions {
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
  /**
   * HTTP path of the liveness probe: 200 `{"status":"ok"}` for as long as
   * the process serves HTTP (draining included). `false` for none.
   * @default '/livez'
   */
  livezPath?: string | false;
  /**
   * HTTP path of the readiness probe: the same answer as `statusPath`. `false` for none.
   * @default '/readyz'
   */
  readyzPath?: string | false;
  /**
   * HTTP path of the Prometheus metrics (text exposition format): the
   * relay's own (`wsrelay_relay_*`) and Node's process metrics. `false` for none.
   * @default '/metrics'
   */
  metricsPath?: string | false;
  /**
   * A bearer token the metrics ask for (`Authorization: Bearer <token>`, 401
   * otherwise; environment: RELAY_METRICS_TOKEN). Without one they are open
   * to whoever reaches the relay's port.
   */
  metricsToken?: string;
}

/** Each endpoint's path, checked (false: not served). */
export interface RelayEndpointPaths {
  status: string | false;
  detail: string | false;
  livez: string | false;
  readyz: string | false;
  metrics: string | false;
}

/** What the endpoints answer from. */
export interface EndpointSources {
  readiness(): RelayReadiness;
  status(): RelayStatus;
  metrics: RelayMetrics;
}

/** Where the relay's app serves its endpoints (Nest's HTTP adapter). */
export interface EndpointServer {
  get(path: string, handler: (req: IncomingMessage, res: ServerResponse) => void): unknown;
}

/** The paths and tokens, checked once: a bad one, or two endpoints on one path, is a TypeError naming the options. */
export function endpointPaths(o: RelayEndpointOptions): RelayEndpointPaths {
  const named = [
    ['statusPath', o.statusPath ?? DEFAULT_STATUS_PATH],
    ['statusDetailPath', o.statusDetailPath ?? DEFAULT_STATUS_DETAIL_PATH],
    ['livezPath', o.livezPath ?? DEFAULT_LIVEZ_PATH],
    ['readyzPath', o.readyzPath ?? DEFAULT_READYZ_PATH],
    ['metricsPath', o.metricsPath ?? DEFAULT_METRICS_PATH],
  ] as const;
  const taken = new Map<string, string>();
  for (const [name, path] of named) {
    if (path !== false && (typeof path !== 'string' || !path.startsWith('/'))) {
      throw new TypeError(`createRelayApp: ${name} must be a path starting with "/" or false, got ${JSON.stringify(path)}`);
    }
    if (path === false) continue;
    const other = taken.get(path);
    if (other !== undefined) throw new TypeError(`createRelayApp: ${other} and ${name} are both "${path}"`);
    taken.set(path, name);
  }
  for (const name of ['statusToken', 'metricsToken'] as const) {
    const token = o[name];
    if (token !== undefined && (typeof token !== 'string' || !/^\S+$/.test(token))) {
      throw new TypeError(
        `createRelayApp: ${name} must be a non-empty string without spaces (it is sent as \`Authorization: Bearer <${name}>\`)`,
      );
    }
  }
  const [status, detail, livez, readyz, metrics] = named.map(([, path]) => path);
  return { status, detail, livez, readyz, metrics };
}

/** Serves the endpoints the paths name on `http`. */
export function serveEndpoints(http: EndpointServer, paths: RelayEndpointPaths, o: RelayEndpointOptions, from: EndpointSources): void {
  const ready = (_req: IncomingMessage, res: ServerResponse): void => {
    const { ready, reason } = from.readiness();
    answer(res, ready ? 200 : 503, ready ? { status: 'ok', ready } : { status: 'unavailable', ready, reason });
  };
  if (paths.status !== false) http.get(paths.status, ready);
  if (paths.readyz !== false) http.get(paths.readyz, ready);
  if (paths.livez !== false) http.get(paths.livez, (_req, res) => answer(res, 200, { status: 'ok' }));
  if (paths.detail !== false && o.statusToken !== undefined) {
    const allowed = bearer(o.statusToken, 'relay status', 'the detailed status needs the status token (Authorization: Bearer <token>)');
    http.get(paths.detail, (req, res) => {
      if (allowed(req, res)) answer(res, 200, from.status());
    });
  }
  if (paths.metrics !== false) {
    const allowed =
      o.metricsToken === undefined
        ? () => true
        : bearer(o.metricsToken, 'relay metrics', 'the metrics need the metrics token (Authorization: Bearer <token>)');
    http.get(paths.metrics, (req, res) => {
      if (allowed(req, res)) scrape(from.metrics, res);
    });
  }
}

/** A check of `Authorization: Bearer <token>` that answers 401 itself when it fails. */
function bearer(token: string, realm: string, refusal: string): (req: IncomingMessage, res: ServerResponse) => boolean {
  const expected = digest(token);
  return (req, res) => {
    const given = /^Bearer +(\S+) *$/i.exec(req.headers.authorization ?? '')?.[1];
    // Compared as digests of equal length, in constant time: the answer says nothing about how close a guess was.
    if (given !== undefined && timingSafeEqual(digest(given), expected)) return true;
    res.setHeader('www-authenticate', `Bearer realm="${realm}"`);
    answer(res, 401, { error: refusal });
    return false;
  };
}

function scrape(metrics: RelayMetrics, res: ServerResponse): void {
  metrics.registry.metrics().then(
    text => {
      res.statusCode = 200;
      res.setHeader('content-type', metrics.registry.contentType);
      res.setHeader('cache-control', 'no-store');
      res.end(text);
    },
    (err: unknown) => answer(res, 500, { error: `metrics could not be collected: ${err instanceof Error ? err.message : String(err)}` }),
  );
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
