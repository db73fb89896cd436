/**
 * What a user installs, used the way a user uses it. The packages are
 * packed with `npm pack` (scripts/deploy/pack.mjs, as the Dockerfile does);
 * the tarballs must hold their build, README and LICENSE only, and pass
 * publint and Are the Types Wrong. They are installed into fresh copies of
 * examples/ (a CommonJS Nest HTTP app, an ESM microservice) outside the
 * workspace, which are built with their own TypeScript settings; the relay is
 * installed as the image installs it (scripts/deploy/install-relay.sh) and
 * started from its packed `wsrelay-relay` executable. Then, on each Node
 * version, a call, a stream and an event go from the HTTP app through the
 * relay to the microservice, and SIGTERM to the relay drains what is in
 * flight and exits within drainTimeoutMs.
 *
 * Node versions other than this machine's come from the npm registry's
 * `node` package (WSRELAY_NODE_VERSIONS=22,24 to choose others).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type ChildProcess, execFile, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { RELAY_NODE_FLAGS, startNode, type Started, type StartOptions, stop } from '../../scripts/processes.js';
import { untilAsync } from '../support/harness.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');
const WORK = mkdtempSync(join(tmpdir(), 'wsrelay-packages-'));
const PACKS = join(WORK, 'packs');
const PACKAGES = ['protocol', 'transport', 'relay', 'client'] as const;
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'libs/relay/package.json'), 'utf8')) as { version: string }).version;
const tarball = (name: string) => join(PACKS, `wsrelay-${name}-${VERSION}.tgz`);
const OTHER_NODES = (process.env.WSRELAY_NODE_VERSIONS ?? '22,24,26').split(',').filter(Boolean);
const DRAIN_MS = 5000;

const children = new Set<ChildProcess>();

async function npm(cwd: string, args: string[]): Promise<void> {
  await run('npm', [...args, '--no-audit', '--no-fund', '--no-update-notifier'], { cwd, maxBuffer: 16 * 1024 * 1024 });
}

/** A copy of examples/NAME outside the workspace, with the packed packages in place of the published ones, installed and built. */
async function installExample(name: string): Promise<string> {
  const dir = join(WORK, name);
  cpSync(join(ROOT, 'examples', name), dir, { recursive: true, filter: src => !/node_modules|dist$/.test(src) });
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  // Not on the registry yet: the tarballs stand in for the published versions (protocol comes with transport).
  expect(manifest.dependencies['@wsrelay/transport']).toBe(`^${VERSION}`);
  manifest.dependencies['@wsrelay/transport'] = `file:${tarball('transport')}`;
  manifest.dependencies['@wsrelay/protocol'] = `file:${tarball('protocol')}`;
  writeFileSync(join(dir, 'package.json'), JSON.stringify(manifest, null, 2));
  await npm(dir, ['install']);
  await run(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { cwd: dir });
  return dir;
}

function start(entry: string, options: StartOptions & { node: string }): Started {
  const started = startNode(entry, options);
  children.add(started.child);
  started.child.once('exit', () => children.delete(started.child));
  return started;
}

/** The `node` binary of a major version, from the npm registry's `node` package. */
function nodeBinary(major: string): string {
  return execFileSync('npx', ['-y', `node@${major}`, '-e', 'process.stdout.write(process.execPath)'], { encoding: 'utf8' });
}

/** The packed relays' status token (RELAY_STATUS_TOKEN), and how their detailed status is asked for with it. */
const STATUS_TOKEN = 'packed-status-token';
const STATUS_AUTH: RequestInit = { headers: { authorization: `Bearer ${STATUS_TOKEN}` } };

async function json<T>(url: string, init?: RequestInit): Promise<T> {
  const res = await fetch(url, init);
  expect(res.status).toBeLessThan(300);
  return (await res.json()) as T;
}

let examples: { service: string; gateway: string };
let deployment: string;

beforeAll(async () => {
  execFileSync(process.execPath, [join(ROOT, 'scripts/deploy/pack.mjs'), PACKS], { stdio: 'ignore' });
  deployment = join(WORK, 'relay');
  const [service, gateway] = await Promise.all([
    installExample('nest-esm-service'),
    installExample('nest-cjs-gateway'),
    run('sh', [join(ROOT, 'scripts/deploy/install-relay.sh'), PACKS, deployment]),
  ]);
  examples = { service, gateway };
}, 240_000);

afterAll(async () => {
  await Promise.all([...children].map(child => stop(child, 10_000)));
  rmSync(WORK, { recursive: true, force: true });
});

/** The protocol's test vectors, shipped for other implementations. */
const isProtocolVector = (name: string, file: string) => name === 'protocol' && file === 'package/vectors/frames.json';

describe('the packed tarballs', () => {
  it.each(PACKAGES)('@wsrelay/%s holds its build, README and LICENSE, and nothing else', async name => {
    const { stdout } = await run('tar', ['tzf', tarball(name)]);
    const files = stdout.trim().split('\n').sort();
    const unexpected = files.filter(
      f => !/^package\/(package\.json|README\.md|LICENSE|dist\/.+\.(js|js\.map|d\.ts))$/.test(f) && !isProtocolVector(name, f),
    );
    expect(unexpected).toEqual([]);
    expect(files).toEqual(
      expect.arrayContaining(['package/README.md', 'package/LICENSE', 'package/dist/index.js', 'package/dist/index.d.ts']),
    );
    expect(files.some(f => /\.spec\./.test(f))).toBe(false);
    if (name === 'relay') expect(files).toContain('package/dist/bin/wsrelay-relay.js');
    if (name === 'protocol') expect(files).toContain('package/vectors/frames.json');
  });

  it.each(PACKAGES)('@wsrelay/%s passes publint (strict)', async name => {
    const { stdout } = await run('npx', ['--no-install', 'publint', '--strict', join(ROOT, 'libs', name)]);
    expect(stdout).toContain('All good!');
  });

  // ESM only: CommonJS apps load it through require(esm) (Node 20.19+, TypeScript 5.8+ with module nodenext),
  // which attw's own TypeScript does not know yet. Its esm-only profile passes over exactly that report
  // (and the run fails on any other problem).
  it.each(PACKAGES)('@wsrelay/%s has types that resolve for ESM, CommonJS and bundlers (attw)', async name => {
    const { stdout } = await run('npx', ['--no-install', 'attw', tarball(name), '--profile', 'esm-only', '--format', 'json']);
    const report = JSON.parse(stdout) as { analysis: { problems: Array<{ kind: string; resolutionKind: string }> } };
    const problems = report.analysis.problems.filter(p => !(p.kind === 'CJSResolvesToESM' && p.resolutionKind === 'node16-cjs'));
    expect(problems).toEqual([]);
  });
});

describe('the image', () => {
  it('runs the relay with the Node flags the tests and the bench run it with', () => {
    const line = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')
      .split('\n')
      .find(l => l.startsWith('ENTRYPOINT '));
    expect(JSON.parse(line!.slice('ENTRYPOINT '.length))).toEqual([
      'node',
      ...RELAY_NODE_FLAGS,
      '/app/node_modules/@wsrelay/relay/dist/bin/wsrelay-relay.js',
    ]);
  });
});

describe('publishing', () => {
  it.each(PACKAGES)('npm publish --dry-run of @wsrelay/%s sends its build as the release version', async name => {
    const { stdout } = await run('npm', ['publish', '--dry-run', '--json'], { cwd: join(ROOT, 'libs', name) });
    const report = (JSON.parse(stdout) as Record<string, { id: string; files: Array<{ path: string }> }>)[`@wsrelay/${name}`];
    expect(report.id).toBe(`@wsrelay/${name}@${VERSION}`);
    expect(report.files.map(f => f.path)).toEqual(expect.arrayContaining(['LICENSE', 'README.md', 'dist/index.js', 'package.json']));
  });
});

describe.each([['this machine', process.execPath], ...OTHER_NODES.map(v => [`Node ${v}`, v] as const)])(
  'the examples and the packed relay on %s',
  (_label, which) => {
    let node: string;
    let relay: Started;
    let port: number;
    let gatewayUrl: string;
    let service: Started;

    beforeAll(async () => {
      node = which.includes('/') ? which : nodeBinary(which);
      // With the Node flags of the image's entrypoint (each Node version must take them).
      relay = start(join(deployment, 'node_modules/.bin/wsrelay-relay'), {
        node,
        nodeArgs: [...RELAY_NODE_FLAGS],
        env: { RELAY_PORT: '0', RELAY_HOST: '127.0.0.1', RELAY_DRAIN_TIMEOUT_MS: String(DRAIN_MS), RELAY_STATUS_TOKEN: STATUS_TOKEN },
      });
      port = Number((await relay.line(/Relay listening on ws:\/\/127\.0\.0\.1:(\d+)\/relay/))[1]);
      const relayUrl = `ws://127.0.0.1:${port}/relay`;
      service = start('dist/main.js', { node, cwd: examples.service, env: { RELAY_URL: relayUrl } });
      await service.line(/Greeter serving through/);
      const gateway = start('dist/main.js', { node, cwd: examples.gateway, env: { RELAY_URL: relayUrl, PORT: '0' } });
      gatewayUrl = (await gateway.line(/Gateway listening on (http:\/\/\S+)/))[1].replace('[::1]', '127.0.0.1');
    }, 120_000);

    afterAll(async () => {
      await Promise.all([...children].map(child => stop(child, 10_000)));
    });

    it('runs the Node version asked for', () => {
      const version = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
      expect(which.includes('/') ? version : version.split('.')[0]).toBe(which.includes('/') ? process.version : `v${which}`);
    });

    it('answers the container health check', async () => {
      // What the Dockerfile's HEALTHCHECK runs (a relay bound to 0.0.0.0 is asked on loopback).
      const check = start(join(deployment, 'node_modules/@wsrelay/relay/dist/bin/wsrelay-relay.js'), {
        node,
        args: ['healthcheck'],
        env: { RELAY_PORT: String(port), RELAY_HOST: '0.0.0.0' },
      }).child;
      const [code] = (await once(check, 'exit')) as [number];
      expect(code).toBe(0);
    });

    it('carries a call, a stream and an event from the CommonJS app to the ESM service', async () => {
      expect(await json(`${gatewayUrl}/greet/Ada`)).toEqual({ greeting: 'Hello, Ada!' });
      expect(await json(`${gatewayUrl}/countdown/3`)).toEqual({ values: [3, 2, 1] });
      const ack = await json(`${gatewayUrl}/greetings`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ to: 'Ada' }),
      });
      expect(ack).toEqual({ recipients: 1 });
      await service.line(/Event greetings\.sent: \{"to":"Ada"\}/, 5000);
    });

    it('drains on SIGTERM: the stream in flight completes, then the relay exits 0 within drainTimeoutMs', async () => {
      // 20 values at 100 ms: about 2 s, under the 5 s drain.
      const streaming = json<{ values: number[] }>(`${gatewayUrl}/countdown/20`);
      await untilAsync(
        async () => (await json<{ inFlight: number }>(`http://127.0.0.1:${port}/status/detail`, STATUS_AUTH)).inFlight > 0,
        10_000,
        'a call in flight',
      );
      const exited = once(relay.child, 'exit') as Promise<[number | null, string | null]>;
      const signalledAt = Date.now();
      relay.child.kill('SIGTERM');
      const { values } = await streaming;
      expect(values).toEqual(Array.from({ length: 20 }, (_, i) => 20 - i));
      const [code] = await exited;
      expect(code).toBe(0);
      expect(Date.now() - signalledAt).toBeLessThan(DRAIN_MS);
      expect(relay.history.some(l => /SIGTERM: draining/.test(l))).toBe(true);
    });
  },
);

describe('the packed relay and ioredis (an optional peer dependency)', () => {
  let redis: TestRedis;

  beforeAll(async () => {
    redis = await startTestRedis();
  });

  afterAll(async () => {
    await redis?.stop();
  });

  it('joins a Redis cluster where ioredis is installed (the image installs it)', async () => {
    const relay = start(join(deployment, 'node_modules/.bin/wsrelay-relay'), {
      node: process.execPath,
      env: {
        RELAY_PORT: '0',
        RELAY_HOST: '127.0.0.1',
        RELAY_REDIS_URL: redis.url,
        RELAY_CLUSTER_PREFIX: `pkg-${process.pid}`,
        RELAY_STATUS_TOKEN: STATUS_TOKEN,
      },
    });
    const port = Number((await relay.line(/Relay listening on ws:\/\/127\.0\.0\.1:(\d+)/))[1]);
    // 503 until the relay hears its own heartbeat back through Redis.
    await untilAsync(async () => (await fetch(`http://127.0.0.1:${port}/status`)).status === 200, 10_000, 'a healthy relay');
    const status = await json<{ cluster: { healthy: boolean; backplane: string } }>(`http://127.0.0.1:${port}/status/detail`, STATUS_AUTH);
    expect(status.cluster).toMatchObject({ healthy: true, backplane: expect.stringMatching(/^redis:\/\//) });
    await stop(relay.child, 10_000);
  });

  it('refuses to start without it, saying what to install', async () => {
    const bare = join(WORK, 'relay-without-ioredis');
    await run('sh', [join(ROOT, 'scripts/deploy/install-relay.sh'), PACKS, bare, '--omit=optional']);
    const relay = start(join(bare, 'node_modules/.bin/wsrelay-relay'), {
      node: process.execPath,
      env: { RELAY_PORT: '0', RELAY_HOST: '127.0.0.1', RELAY_REDIS_URL: redis.url },
    });
    const [code] = (await once(relay.child, 'exit')) as [number];
    expect(code).toBe(1);
    expect(relay.history.join('\n')).toMatch(/needs the "ioredis" package, which is not installed: run "npm install ioredis"/);
  }, 60_000);
});
