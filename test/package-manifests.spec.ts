/**
 * Each package declares what its build imports, and imports only what it
 * declares: an undeclared import works in this repository (everything is
 * hoisted into one node_modules) and fails in a user's app. Read from the
 * build (libs/NAME/dist), which is what users get.
 */
import { describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

interface Manifest {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

const ROOT = resolve(import.meta.dirname, '..');
const PACKAGES = ['protocol', 'transport', 'relay', 'client'];

/** Declared but never imported by name, and why they are declared anyway. */
const USED_WITHOUT_IMPORT: Record<string, string> = {
  'reflect-metadata': "Nest's decorators need it loaded; the app imports it once",
  '@nestjs/platform-express': "NestFactory.create loads it to serve the relay's HTTP side (status, upgrades)",
};

function files(dir: string, suffix: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter(e => e.isFile() && e.name.endsWith(suffix))
    .map(e => join(e.parentPath, e.name));
}

/** Package names imported (statically or dynamically) by the files. */
function importedPackages(paths: string[]): Set<string> {
  const names = new Set<string>();
  // `import … from 'x'`, `export … from 'x'`, `import 'x'` (statements), `import('x')` anywhere, and
  // `createRequire(import.meta.url)('x')` (an optional peer loaded synchronously).
  const specifier =
    /^\s*(?:(?:import|export)\b[^'";]*?\bfrom\s*|import\s*)['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)|\bcreateRequire\(import\.meta\.url\)\(\s*['"]([^'"]+)['"]\s*\)/gm;
  for (const path of paths) {
    for (const [, stat, dynamic, required] of readFileSync(path, 'utf8').matchAll(specifier)) {
      const spec = stat ?? dynamic ?? required;
      if (spec.startsWith('.') || spec.startsWith('node:')) continue;
      names.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);
    }
  }
  return names;
}

describe.each(PACKAGES)('@wsrelay/%s', name => {
  const dir = join(ROOT, 'libs', name);
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;
  const declared = new Set([...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.peerDependencies ?? {})]);
  const optional = new Set(Object.entries(manifest.peerDependenciesMeta ?? {}).flatMap(([n, m]) => (m.optional ? [n] : [])));
  const code = importedPackages(files(join(dir, 'dist'), '.js'));
  const types = importedPackages(files(join(dir, 'dist'), '.d.ts'));

  it('imports only packages it declares, and Node built-ins with the node: prefix', () => {
    expect([...code].filter(p => !declared.has(p))).toEqual([]);
    expect([...code].filter(p => isBuiltin(p))).toEqual([]);
  });

  it('declares only packages it uses', () => {
    expect([...declared].filter(p => !code.has(p) && !(p in USED_WITHOUT_IMPORT))).toEqual([]);
  });

  it('does not need an optional peer dependency for its types', () => {
    expect([...types].filter(p => optional.has(p) || !declared.has(p))).toEqual([]);
  });

  it('depends on its sibling packages at its own version exactly', () => {
    for (const [dep, range] of Object.entries(manifest.dependencies ?? {})) {
      if (dep.startsWith('@wsrelay/')) expect(range).toBe(manifest.version);
    }
  });
});

it('the packages share one version', () => {
  const versions = PACKAGES.map(n => (JSON.parse(readFileSync(join(ROOT, 'libs', n, 'package.json'), 'utf8')) as Manifest).version);
  expect(new Set(versions).size).toBe(1);
});

it.each(['protocol', 'client'])('the %s package runs in browsers: no Node built-in or Node-only package in its build', name => {
  const dist = join(ROOT, 'libs', name, 'dist');
  const source = files(dist, '.js')
    .map(p => readFileSync(p, 'utf8'))
    .join('\n');
  expect(source).not.toMatch(/from\s*['"]node:|\bprocess\.|\bBuffer\b|\brequire\(/);
});

it('the release script sets one version on the packages, their sibling requirements and the examples', () => {
  const tree = mkdtempSync(join(tmpdir(), 'wsrelay-version-'));
  try {
    for (const dir of ['.', ...PACKAGES.map(n => `libs/${n}`), 'examples/nest-cjs-gateway', 'examples/nest-esm-service']) {
      cpSync(join(ROOT, dir, 'package.json'), join(tree, dir, 'package.json'));
    }
    execFileSync(process.execPath, [join(ROOT, 'scripts/release/set-version.mjs'), '2.3.4-rc.1', '--root', tree], { stdio: 'ignore' });
    const read = (dir: string) => JSON.parse(readFileSync(join(tree, dir, 'package.json'), 'utf8')) as Manifest;
    expect(read('.').version).toBe('2.3.4-rc.1');
    for (const n of PACKAGES) expect(read(`libs/${n}`).version).toBe('2.3.4-rc.1');
    expect(read('libs/relay').dependencies?.['@wsrelay/protocol']).toBe('2.3.4-rc.1');
    expect(read('libs/transport').dependencies?.['@wsrelay/protocol']).toBe('2.3.4-rc.1');
    expect(read('libs/client').dependencies?.['@wsrelay/protocol']).toBe('2.3.4-rc.1');
    expect(read('examples/nest-esm-service').dependencies?.['@wsrelay/transport']).toBe('^2.3.4-rc.1');
    // Peer ranges (Nest, rxjs) are not the release's to change.
    const original = JSON.parse(readFileSync(join(ROOT, 'libs/relay/package.json'), 'utf8')) as Manifest;
    expect(read('libs/relay').peerDependencies).toEqual(original.peerDependencies);
  } finally {
    rmSync(tree, { recursive: true, force: true });
  }
});

it("the README's install line for a Nest app is what the examples install", () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const install = /## Install[\s\S]*?```bash\n(npm install [^\n]+)\n```/.exec(readme)?.[1];
  expect(install).toBeDefined();
  const told = (install as string).replace('npm install', '').trim().split(/\s+/).sort();
  // What every Nest app has already (the README says so), and the HTTP platform of an HTTP app.
  const nestApp = new Set(['@nestjs/common', '@nestjs/core', 'reflect-metadata', 'rxjs', '@nestjs/platform-express']);
  for (const example of ['nest-cjs-gateway', 'nest-esm-service']) {
    const manifest = JSON.parse(readFileSync(join(ROOT, 'examples', example, 'package.json'), 'utf8')) as Manifest;
    expect(
      Object.keys(manifest.dependencies ?? {})
        .filter(d => !nestApp.has(d))
        .sort(),
    ).toEqual(told);
  }
});
