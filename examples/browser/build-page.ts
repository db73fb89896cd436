import { fileURLToPath } from 'node:url';
import { build } from 'vite';

/** The page's sources: index.html, its script and its stylesheet. */
export const PAGE_ROOT = fileURLToPath(new URL('./page', import.meta.url));

/** Builds the page into `outDir` (emptied first): its script with @wsrelay/client bundled in. */
export async function buildPage(outDir: string): Promise<void> {
  await build({
    root: PAGE_ROOT,
    configFile: false,
    logLevel: 'warn',
    build: { outDir, emptyOutDir: true },
  });
}
