/**
 * @wsrelay/client must stay small in a browser app: its whole build,
 * bundled for the browser and minified as an app's bundler would (esbuild),
 * MessagePack included, at most 15 KiB gzipped. It also must not need Node:
 * bundled for the browser platform, nothing resolves to a Node built-in.
 */
import { expect, it } from '@jest/globals';
import { build } from 'esbuild';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';

const ROOT = resolve(import.meta.dirname, '..');
const BUDGET_BYTES = 15 * 1024;

it('bundles, minified and gzipped, to at most 15 KiB', async () => {
  const result = await build({
    entryPoints: [join(ROOT, 'libs/client/dist/index.js')],
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  const [bundle] = result.outputFiles;
  const gzipped = gzipSync(bundle.contents).length;
  // What takes the room, by package, in minified bytes (before gzip).
  const byPackage = new Map<string, number>();
  for (const [path, { bytesInOutput }] of Object.entries(result.metafile.outputs[Object.keys(result.metafile.outputs)[0]].inputs)) {
    const name = /node_modules\/(@[^/]+\/[^/]+|[^/]+)/.exec(path)?.[1] ?? /libs\/([^/]+)/.exec(path)?.[1] ?? path;
    byPackage.set(name, (byPackage.get(name) ?? 0) + bytesInOutput);
  }
  console.log(
    `@wsrelay/client bundle: ${bundle.contents.length} bytes minified, ${gzipped} bytes gzipped (budget ${BUDGET_BYTES});`,
    [...byPackage].map(([name, bytes]) => `${name} ${bytes}`).join(', '),
  );
  expect(Object.keys(result.metafile.inputs).filter(p => p.startsWith('node:'))).toEqual([]);
  expect(gzipped).toBeLessThanOrEqual(BUDGET_BYTES);
});
