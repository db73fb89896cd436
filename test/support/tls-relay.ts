import { createRelayApp, type RelayModuleOptions } from '@wsrelay/relay';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RunningRelay } from './harness.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/${name}`, import.meta.url));

/** The self-signed test certificate (IP 127.0.0.1, DNS localhost); test-only, see test/fixtures/README.md. */
export const TEST_CERT = fixture('cert.pem');
const TEST_KEY = fixture('key.pem');

/** Boots a real relay app serving wss:// on 127.0.0.1 with the test certificate. */
export async function startTlsRelay(options: RelayModuleOptions = {}): Promise<RunningRelay> {
  const app = await createRelayApp(options, { logger: false, tls: { key: TEST_KEY, cert: TEST_CERT } });
  await app.listen(0, '127.0.0.1');
  const { port } = (app.getHttpServer() as Server).address() as AddressInfo;
  return {
    app,
    port,
    url: `wss://127.0.0.1:${port}${options.path ?? '/relay'}`,
    close: () => app.close(),
  };
}
