/**
 * Compiles the bench peers, the scripts and the test processes to plain
 * JavaScript with the repository's own .swcrc (the settings the tests run
 * with), so that a process the bench measures or a test starts runs as a
 * built app does: `node file.js`. Under the TypeScript loader each process
 * would carry about 135 MB of compiler in its RSS and spend seconds of CPU
 * compiling at every start. The packages they import (`@wsrelay/*`) are
 * their builds (`npm run build`), found through node_modules as a user's app
 * finds them. Takes about 0.1 s.
 */
import swc from '@swc/core';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const SOURCES = ['bench', 'scripts', 'test/processes'];

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap(e => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'results' ? [] : tsFiles(path);
    return /\.ts$/.test(e.name) && !/\.(spec|e2e-spec|d)\.ts$/.test(e.name) ? [path] : [];
  });
}

/** Writes the JavaScript under `outDir` (a package of its own, "type": "module") and returns it. */
export async function compileProject(outDir: string): Promise<string> {
  const rc = JSON.parse(readFileSync('.swcrc', 'utf8')) as Record<string, unknown>;
  delete rc.$schema;
  rmSync(outDir, { recursive: true, force: true });
  for (const file of SOURCES.flatMap(tsFiles)) {
    const { code } = await swc.transformFile(file, { ...rc, swcrc: false, sourceMaps: false, filename: file });
    const out = join(outDir, file.replace(/\.ts$/, '.js'));
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, code);
  }
  // Inside node_modules (where the output goes, so that packages resolve),
  // Node stops looking for the project's package.json: say "module" here.
  writeFileSync(join(outDir, 'package.json'), '{ "type": "module", "private": true }\n');
  return outDir;
}
