import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { compiledProject } from './compiled.js';

/** A line a provider printed, and when it arrived here (`Date.now()`). */
export interface ProviderLine {
  text: string;
  at: number;
}

/** `test/processes/provider.ts` running in a process of its own. */
export interface ProviderProcess {
  child: ChildProcess;
  nodeId: string;
  pid: number;
  /** What `work` answers with: node id and pid. */
  identity: string;
  /** Every line it printed (stdout and stderr), in order. */
  lines: ProviderLine[];
  /** The first line (printed already or to come) matching `re`; rejects when the process exits first or after `timeoutMs`. */
  line(re: RegExp, timeoutMs?: number): Promise<ProviderLine & { match: RegExpExecArray }>;
  /** Lines matching `re`, as matches. */
  matching(re: RegExp): RegExpExecArray[];
  /** Resolves with the exit code (null when killed by a signal) and signal once it exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /**
   * Sends `signal` (SIGKILL by default). SIGKILL and SIGTERM resolve once it
   * exited; SIGSTOP and SIGCONT at once.
   */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /**
   * Sends `signal` the moment a line matching `re` arrives (a new one, not one
   * printed already), from the reader itself: no turn of the event loop between
   * seeing the line and signalling. Resolves with when it was sent (`Date.now()`), for
   * SIGKILL once it exited.
   */
  killAtNext(re: RegExp, signal: NodeJS.Signals, timeoutMs?: number): Promise<number>;
  /** SIGTERM (after SIGCONT if stopped), SIGKILL after 10 s; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/**
 * Starts a provider with `env` (PROVIDER_URLS, PROVIDER_NODE_ID, ...: see
 * test/processes/provider.ts) and resolves once it printed READY.
 */
export async function spawnProvider(env: Record<string, string>): Promise<ProviderProcess> {
  const dir = await compiledProject();
  const child = spawn(process.execPath, [join(dir, 'test/processes/provider.js')], {
    env: { ...process.env, NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: ProviderLine[] = [];
  const listeners = new Set<(line: ProviderLine) => void>();
  let stopped = false;
  // 'close', not 'exit': by then its output has been read to the end.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(resolve =>
    child.once('close', (code, signal) => resolve({ code, signal })),
  );
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', text => {
      const line = { text, at: Date.now() };
      lines.push(line);
      for (const l of listeners) l(line);
    });
  }
  const gone = () => child.exitCode !== null || child.signalCode !== null;

  const line = (re: RegExp, timeoutMs = 10_000) =>
    new Promise<ProviderLine & { match: RegExpExecArray }>((resolve, reject) => {
      for (const old of lines) {
        const match = re.exec(old.text);
        if (match) return resolve({ ...old, match });
      }
      const done = () => {
        clearTimeout(timer);
        listeners.delete(listener);
        child.off('close', onExit);
      };
      const listener = (l: ProviderLine) => {
        const match = re.exec(l.text);
        if (!match) return;
        done();
        resolve({ ...l, match });
      };
      const onExit = (code: number | null, signal: string | null) => {
        done();
        reject(new Error(`provider exited (${code ?? signal}) before printing ${re}:\n${lines.map(l => l.text).join('\n')}`));
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(
            `provider printed no line matching ${re} within ${timeoutMs} ms:\n${lines
              .map(l => l.text)
              .slice(-20)
              .join('\n')}`,
          ),
        );
      }, timeoutMs).unref();
      listeners.add(listener);
      child.once('close', onExit);
    });

  let ready: ProviderLine & { match: RegExpExecArray };
  try {
    ready = await line(/^READY (\S+) pid=(\d+)$/, 30_000);
  } catch (err) {
    // Never left running: nobody holds a handle to it to clean it up.
    if (!gone()) child.kill('SIGKILL');
    throw err;
  }
  const nodeId = ready.match[1];
  const pid = Number(ready.match[2]);
  return {
    child,
    nodeId,
    pid,
    identity: `${nodeId}@${pid}`,
    lines,
    line,
    matching: re => lines.map(l => re.exec(l.text)).filter((m): m is RegExpExecArray => m !== null),
    exited,
    kill: async (signal = 'SIGKILL') => {
      if (gone()) return;
      child.kill(signal);
      if (signal === 'SIGSTOP') stopped = true;
      if (signal === 'SIGCONT') stopped = false;
      if (signal === 'SIGKILL' || signal === 'SIGTERM') {
        // A stopped process acts on SIGTERM only once it runs again.
        if (signal === 'SIGTERM' && stopped) child.kill('SIGCONT');
        await exited;
      }
    },
    killAtNext: (re, signal, timeoutMs = 5000) =>
      new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => {
          listeners.delete(listener);
          reject(new Error(`provider printed no line matching ${re} within ${timeoutMs} ms`));
        }, timeoutMs).unref();
        const listener = (l: ProviderLine) => {
          if (!re.test(l.text)) return;
          listeners.delete(listener);
          clearTimeout(timer);
          child.kill(signal);
          const at = Date.now();
          if (signal === 'SIGSTOP') stopped = true;
          resolve(signal === 'SIGKILL' ? exited.then(() => at) : at);
        };
        listeners.add(listener);
      }),
    stop: async () => {
      if (!gone()) {
        child.kill('SIGTERM');
        if (stopped) child.kill('SIGCONT');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      return (await exited).code;
    },
  };
}
