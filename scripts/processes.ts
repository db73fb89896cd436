import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

/** Node flags that run a TypeScript entry of this repo (decorators). */
export const TS_LOADER = ['--import', '@swc-node/register/esm-register'];

/** The relay as users run it: the `wsrelay-relay` executable of @wsrelay/relay's build (`npm run build`). */
export const RELAY_BIN = 'libs/relay/dist/bin/wsrelay-relay.js';

/**
 * The Node flags the relay runs with, as the Dockerfile's ENTRYPOINT gives
 * them (the README's "Node flags" says why): a larger initial old generation, so
 * that forwarding large payloads (buffers held outside the JavaScript heap)
 * does not set off a full garbage collection every few tens of milliseconds
 * in a heap that is small and barely growing.
 */
export const RELAY_NODE_FLAGS: readonly string[] = ['--initial-old-space-size=128'];

/** RELAY_NODE_FLAGS, and any a bench run adds (BENCH_RELAY_NODE_ARGS: profiling, tracing). */
export function relayNodeArgs(env: NodeJS.ProcessEnv = process.env): string[] {
  return [...RELAY_NODE_FLAGS, ...(env.BENCH_RELAY_NODE_ARGS ?? '').split(' ').filter(Boolean)];
}

export interface Started {
  child: ChildProcess;
  /** Output lines so far (stdout and stderr, the first thousand). */
  history: readonly string[];
  /** Resolves with the first output line matching `re` (its match), rejects if the process exits first. */
  line(re: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
}

export interface StartOptions {
  /** Added to this process's environment (and NO_COLOR=1). */
  env?: Record<string, string>;
  /** Each output line, as it comes. */
  onLine?: (line: string) => void;
  /** Node flags before the entry. */
  nodeArgs?: string[];
  /** Arguments after the entry. */
  args?: string[];
  /** The Node binary. @default this process's */
  node?: string;
  cwd?: string;
}

/** Spawns an entry (TypeScript through the loader, JavaScript as is) whose output is read line by line. */
export function startNode(entry: string, options: StartOptions = {}): Started {
  const loader = entry.endsWith('.ts') ? TS_LOADER : [];
  const onLine = options.onLine ?? (() => undefined);
  const child = spawn(options.node ?? process.execPath, [...(options.nodeArgs ?? []), ...loader, entry, ...(options.args ?? [])], {
    env: { ...process.env, NO_COLOR: '1', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: options.cwd,
  });
  const listeners = new Set<(line: string) => void>([onLine]);
  // Lines printed before anyone asks for them are kept, so line() cannot miss one.
  const history: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', line => {
      if (history.length < 1000) history.push(line);
      listeners.forEach(l => l(line));
    });
  }
  return {
    child,
    history,
    line: (re, timeoutMs = 30_000) =>
      new Promise((resolve, reject) => {
        for (const old of history) {
          const m = re.exec(old);
          if (m) return resolve(m);
        }
        const tail = () => history.slice(-20).join('\n');
        const timer = setTimeout(() => reject(new Error(`${entry}: no line matching ${re} within ${timeoutMs} ms:\n${tail()}`)), timeoutMs);
        const onExit = (code: number | null) => {
          clearTimeout(timer);
          reject(new Error(`${entry} exited (${code}) before printing ${re}:\n${tail()}`));
        };
        child.once('exit', onExit);
        const l = (line: string) => {
          const m = re.exec(line);
          if (!m) return;
          clearTimeout(timer);
          child.off('exit', onExit);
          listeners.delete(l);
          resolve(m);
        };
        listeners.add(l);
      }),
  };
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
export async function stop(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await once(child, 'exit');
  clearTimeout(timer);
}
