import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { compileProject } from '../../scripts/compile.js';

const CACHE = 'node_modules/.cache';
let compiled: Promise<string> | undefined;

/**
 * The project as JavaScript, compiled once per test file, for the relay and
 * provider processes tests start (they then start in well under a second).
 * Each test process compiles into a directory of its own (named by its pid),
 * so that test runs side by side never rewrite what another is starting
 * processes from; directories of test processes that are gone are removed.
 */
export function compiledProject(): Promise<string> {
  compiled ??= (() => {
    for (const entry of existsSync(CACHE) ? readdirSync(CACHE) : []) {
      const m = /^wsrelay-test-(\d+)$/.exec(entry);
      if (m && Number(m[1]) !== process.pid && !alive(Number(m[1]))) rmSync(join(CACHE, entry), { recursive: true, force: true });
    }
    return compileProject(join(CACHE, `wsrelay-test-${process.pid}`));
  })();
  return compiled;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
