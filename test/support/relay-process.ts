import type { RelayStatus } from '@wsrelay/relay';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { compileProject } from '../../scripts/compile.js';

let compiled: Promise<string> | undefined;
const CACHE = 'node_modules/.cache';

/**
 * The project as JavaScript (once per test file): a relay process then
 * starts in well under a second. Each test process compiles into a
 * directory of its own (named by its pid), so that test runs side by side
 * never rewrite what another is starting processes from; directories of
 * processes that are gone are removed.
 */
function compiledProject(): Promise<string> {
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

/** `apps/relay` running in a process of its own. */
export interface RelayProcess {
  child: ChildProcess;
  port: number;
  url: string;
  /** Its `GET /status`. */
  status(): Promise<RelayStatus>;
  /** Lines it printed (logs), for a failing test's message. */
  output: string[];
  /** SIGKILL (or another signal) and wait for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** SIGTERM, then SIGKILL after 5 s. */
  stop(): Promise<void>;
}

/** Starts `apps/relay` with `env` (RELAY_PORT defaults to 0) and resolves once it listens. */
export async function spawnRelay(env: Record<string, string>): Promise<RelayProcess> {
  const dir = await compiledProject();
  const child = spawn(process.execPath, [join(dir, 'apps/relay/src/main.js')], {
    env: { ...process.env, NO_COLOR: '1', RELAY_PORT: '0', RELAY_HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const listening = new Promise<number>((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`relay exited (${code}) before listening:\n${output.join('\n')}`));
    child.once('exit', onExit);
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream! }).on('line', line => {
        if (output.length < 2000) output.push(line);
        const m = /Relay listening on wss?:\/\/[^:]+:(\d+)/.exec(line);
        if (m) {
          child.off('exit', onExit);
          resolve(Number(m[1]));
        }
      });
    }
  });
  const port = await listening;
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  return {
    child,
    port,
    url: `ws://127.0.0.1:${port}${env.RELAY_PATH ?? '/relay'}`,
    output,
    status: async () => {
      const res = await fetch(`http://127.0.0.1:${port}/status`);
      return (await res.json()) as RelayStatus;
    },
    kill: async (signal = 'SIGKILL') => {
      if (exited()) return;
      const gone = once(child, 'exit');
      child.kill(signal);
      if (signal === 'SIGKILL' || signal === 'SIGTERM') await gone;
    },
    stop: async () => {
      if (exited()) return;
      const gone = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(timer);
    },
  };
}
