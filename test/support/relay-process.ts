import type { RelayStatus } from '@wsrelay/relay';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { RELAY_BIN } from '../../scripts/processes.js';

/** The relay's executable (`wsrelay-relay` of @wsrelay/relay's build) running in a process of its own. */
export interface RelayProcess {
  child: ChildProcess;
  port: number;
  url: string;
  /** Its `GET /status/detail` (with the status token every spawned relay gets). */
  status(): Promise<RelayStatus>;
  /** Lines it printed (logs), for a failing test's message. */
  output: string[];
  /** SIGKILL (or another signal) and wait for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** SIGTERM, then SIGKILL after 5 s. */
  stop(): Promise<void>;
}

/** The status token of the relays the tests spawn (RELAY_STATUS_TOKEN), for their detailed status. */
export const TEST_STATUS_TOKEN = 'test-status-token';

/** Starts the relay with `env` (RELAY_PORT defaults to 0) and resolves once it listens. */
export async function spawnRelay(env: Record<string, string>): Promise<RelayProcess> {
  const base = {
    NO_COLOR: '1',
    RELAY_PORT: '0',
    RELAY_HOST: '127.0.0.1',
    RELAY_STARTUP_GRACE_MS: '0',
    RELAY_STATUS_TOKEN: TEST_STATUS_TOKEN,
  };
  const child = spawn(process.execPath, [RELAY_BIN], {
    env: { ...process.env, ...base, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const listening = new Promise<number>((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`relay exited (${code}) before listening:\n${output.join('\n')}`));
    child.once('exit', onExit);
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on('line', line => {
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
      const res = await fetch(`http://127.0.0.1:${port}/status/detail`, { headers: { authorization: `Bearer ${TEST_STATUS_TOKEN}` } });
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
