/**
 * @wsrelay/transport's optional peer dependencies, as a user installs the
 * packed tarball: prom-client (the `metrics` option), @nestjs/terminus
 * (the `@wsrelay/transport/health` entry) and @opentelemetry/api (the
 * `tracing` option). In an app without them, the main entry loads from
 * CommonJS and from ESM, the `metrics` option fails at connect() and the
 * `tracing` option at construction, each saying what to install; in an app with them, the metrics land in
 * the app's registry and the health entry loads, from CommonJS and from ESM.
 * The apps live outside the workspace, so nothing resolves from the
 * repository's node_modules.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');
const WORK = mkdtempSync(join(tmpdir(), 'wsrelay-optional-peers-'));
const PACKS = join(WORK, 'packs');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'libs/transport/package.json'), 'utf8')) as { version: string }).version;
const installed = (name: string) =>
  (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
/** Nothing listens on port 9 (discard): connecting fails at once. */
const NOWHERE = 'ws://127.0.0.1:9/relay';

/** A Nest app's dependencies: the packed transport and its required peers, plus `extra`. */
function manifest(name: string, extra: string[]): object {
  const dependencies: Record<string, string> = {
    '@wsrelay/transport': `file:${join(PACKS, `wsrelay-transport-${VERSION}.tgz`)}`,
    '@wsrelay/protocol': `file:${join(PACKS, `wsrelay-protocol-${VERSION}.tgz`)}`,
  };
  for (const dep of ['@nestjs/common', '@nestjs/core', '@nestjs/microservices', 'reflect-metadata', 'rxjs', ...extra]) {
    dependencies[dep] = installed(dep);
  }
  return { name, version: '0.0.0', private: true, dependencies };
}

async function install(name: string, extra: string[]): Promise<string> {
  const dir = join(WORK, name);
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), JSON.stringify(manifest(name, extra), null, 2));
  await run('npm', ['install', '--no-audit', '--no-fund', '--no-update-notifier'], { cwd: dir, maxBuffer: 16 * 1024 * 1024 });
  return dir;
}

/** Runs `code` in `dir` as a CommonJS (`.cjs`) or an ESM (`.mjs`) file; its JSON output. */
async function script(dir: string, file: string, code: string): Promise<Record<string, unknown>> {
  writeFileSync(join(dir, file), code);
  const { stdout } = await run(process.execPath, [file], { cwd: dir });
  return JSON.parse(stdout) as Record<string, unknown>;
}

/** The same check, for CommonJS (`require`) and ESM (`import`). */
const load = {
  cjs: (spec: string) => `require(${JSON.stringify(spec)})`,
  mjs: (spec: string) => `await import(${JSON.stringify(spec)})`,
};
const wrap = {
  cjs: (body: string) => `require('reflect-metadata');\n(async () => {\n${body}\n})();\n`,
  mjs: (body: string) => `import 'reflect-metadata';\n${body}\n`,
};

let bare: string;
let full: string;

beforeAll(async () => {
  execFileSync(process.execPath, [join(ROOT, 'scripts/deploy/pack.mjs'), PACKS], { stdio: 'ignore' });
  [bare, full] = await Promise.all([install('bare', []), install('full', ['prom-client', '@nestjs/terminus'])]);
}, 240_000);

afterAll(() => {
  rmSync(WORK, { recursive: true, force: true });
});

describe.each(['cjs', 'mjs'] as const)('@wsrelay/transport from %s', kind => {
  it('loads without prom-client and @nestjs/terminus; the metrics option then fails at connect(), saying what to install', async () => {
    expect(existsSync(join(bare, 'node_modules/prom-client'))).toBe(false);
    expect(existsSync(join(bare, 'node_modules/@nestjs/terminus'))).toBe(false);
    expect(existsSync(join(bare, 'node_modules/@opentelemetry/api'))).toBe(false);
    const out = await script(
      bare,
      `missing.${kind}`,
      wrap[kind](`
const { WsRelayClient } = ${load[kind]('@wsrelay/transport')};
const registry = { registerMetric() {}, getSingleMetric() {} };
const client = new WsRelayClient({ urls: [${JSON.stringify(NOWHERE)}], metrics: { registry } });
const err = await client.connect().then(() => undefined, e => e);
await client.close();
let health;
try {
  ${load[kind]('@wsrelay/transport/health')};
} catch (e) {
  health = e.message;
}
let tracing;
try {
  new WsRelayClient({ urls: [${JSON.stringify(NOWHERE)}], tracing: true });
} catch (e) {
  tracing = e.message;
}
console.log(JSON.stringify({ client: typeof WsRelayClient, message: err && err.message, health, tracing }));`),
    );
    expect(out).toEqual({
      client: 'function',
      message: 'The "metrics" option needs the "prom-client" package, which is not installed: run "npm install prom-client"',
      tracing: 'The "tracing" option needs the "@opentelemetry/api" package, which is not installed: run "npm install @opentelemetry/api"',
      // Only the health entry needs terminus, and says so.
      health: expect.stringContaining("'@nestjs/terminus'"),
    });
  });

  it('with them installed, registers its metrics in the app registry and serves the health entry', async () => {
    const out = await script(
      full,
      `present.${kind}`,
      wrap[kind](`
const { Registry } = ${load[kind]('prom-client')};
const { WsRelayClient } = ${load[kind]('@wsrelay/transport')};
const { WsRelayHealthIndicator } = ${load[kind]('@wsrelay/transport/health')};
const { HealthIndicatorService } = ${load[kind]('@nestjs/terminus')};
const { lastValueFrom } = ${load[kind]('rxjs')};
const registry = new Registry();
const client = new WsRelayClient({ urls: [${JSON.stringify(NOWHERE)}], connectTimeoutMs: 100, metrics: { registry } });
const err = await lastValueFrom(client.send('x', 1)).then(() => undefined, e => e);
const text = await registry.metrics();
const down = new WsRelayHealthIndicator(new HealthIndicatorService()).isConnected('relay', client);
await client.close();
console.log(JSON.stringify({
  code: err && err.code,
  counted: /^wsrelay_client_calls_total\\{outcome="RELAY_UNAVAILABLE"\\} 1$/m.test(text),
  health: down.relay.status,
}));`),
    );
    expect(out).toEqual({ code: 'RELAY_UNAVAILABLE', counted: true, health: 'down' });
  });
});
