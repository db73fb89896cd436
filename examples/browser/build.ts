// Builds the page: `node --import @swc-node/register/esm-register examples/browser/build.ts <outDir>`
// (the browser test runs it so, in a process of its own).
import { fileURLToPath } from 'node:url';
import { buildPage } from './build-page.js';

await buildPage(process.argv[2] ?? fileURLToPath(new URL('./dist', import.meta.url)));
