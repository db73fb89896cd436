#!/usr/bin/env node
// Packs the packages (built first: `npm run build:packages`) into OUT
// with `npm pack`, and writes OUT/relay-deployment.json: the package.json of
// a relay deployment (the relay and protocol tarballs, their peer
// dependencies pinned to the versions this repository is tested with, and
// ioredis as an optional dependency for clusters).
//
//   node scripts/deploy/pack.mjs OUT
//
// The Dockerfile and the test suite both run it.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

const PACKAGES = ['libs/protocol', 'libs/transport', 'libs/relay', 'libs/client'];
const root = resolve(import.meta.dirname, '../..');
const out = resolve(process.argv[2] ?? 'packs');
mkdirSync(out, { recursive: true });

const read = path => JSON.parse(readFileSync(resolve(root, path), 'utf8'));
const installed = name => read(`node_modules/${name}/package.json`).version;

const tarballs = {};
for (const dir of PACKAGES) {
  const [packed] = JSON.parse(
    execFileSync('npm', ['pack', '--json', '--pack-destination', out], {
      cwd: resolve(root, dir),
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    }),
  );
  tarballs[packed.name] = packed.filename;
  console.log(`${packed.filename}: ${packed.entryCount} files, ${packed.size} bytes`);
}

const relay = read('libs/relay/package.json');
const dependencies = {
  '@wsrelay/relay': `file:./${tarballs['@wsrelay/relay']}`,
  '@wsrelay/protocol': `file:./${tarballs['@wsrelay/protocol']}`,
};
const optionalDependencies = {};
for (const name of Object.keys(relay.peerDependencies)) {
  if (relay.peerDependenciesMeta?.[name]?.optional) optionalDependencies[name] = installed(name);
  else dependencies[name] = installed(name);
}
const deployment = {
  name: 'wsrelay-relay-deployment',
  version: relay.version,
  private: true,
  description: 'A deployed wsrelay relay: run node_modules/.bin/wsrelay-relay',
  dependencies,
  optionalDependencies,
};
writeFileSync(resolve(out, 'relay-deployment.json'), `${JSON.stringify(deployment, null, 2)}\n`);
console.log(`relay-deployment.json: @wsrelay/relay ${relay.version} with ${Object.keys(dependencies).length - 2} pinned peers`);
