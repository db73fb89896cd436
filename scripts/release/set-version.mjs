#!/usr/bin/env node
// Sets one version on the packages: their own "version", the exact
// version each requires of its siblings, the range the examples install
// (^VERSION), and the root package. Then refreshes the lockfile (not with
// --no-lockfile, or when --root names another tree).
//
//   node scripts/release/set-version.mjs 0.2.0 [--root DIR] [--no-lockfile]
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const args = process.argv.slice(2);
const version = args[0];
const rootAt = args.indexOf('--root');
const root = rootAt === -1 ? resolve(import.meta.dirname, '../..') : resolve(args[rootAt + 1]);
const lockfile = rootAt === -1 && !args.includes('--no-lockfile');

if (!/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(version ?? '')) {
  console.error('usage: node scripts/release/set-version.mjs X.Y.Z[-pre] [--root DIR] [--no-lockfile]');
  process.exit(2);
}

const PACKAGES = ['libs/protocol', 'libs/transport', 'libs/relay', 'libs/client'];
const EXAMPLES = ['examples/nest-cjs-gateway', 'examples/nest-esm-service'];

function update(dir, change) {
  const path = join(root, dir, 'package.json');
  const text = readFileSync(path, 'utf8');
  const pkg = JSON.parse(text);
  change(pkg);
  writeFileSync(path, `${JSON.stringify(pkg, null, 2)}\n`);
}

const siblings = deps => {
  for (const name of Object.keys(deps ?? {})) if (name.startsWith('@wsrelay/')) deps[name] = version;
};
for (const dir of PACKAGES) {
  update(dir, pkg => {
    pkg.version = version;
    siblings(pkg.dependencies);
  });
}
for (const dir of EXAMPLES) {
  update(dir, pkg => {
    for (const name of Object.keys(pkg.dependencies)) if (name.startsWith('@wsrelay/')) pkg.dependencies[name] = `^${version}`;
  });
}
update('.', pkg => {
  pkg.version = version;
});
if (lockfile) execFileSync('npm', ['install', '--package-lock-only', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
console.log(`version ${version}: ${[...PACKAGES, ...EXAMPLES, '.'].join(', ')}`);
