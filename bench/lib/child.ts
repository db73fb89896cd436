import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { stop, TS_LOADER } from '../../scripts/processes.js';

export interface ChildOptions {
  env?: Record<string, string>;
  /** Extra Node flags (before the TypeScript loader). */
  nodeArgs?: string[];
  /**
   * Open-file limit to ask for: the child is started through `sh -c 'ulimit -n …; exec node …'`,
   * falling back to the hard limit when the soft one cannot be raised that far.
   */
  fdLimit?: number;
}

const KEPT_LINES = 4000;

/** Every child not yet exited, so the bench can stop them all when it is interrupted. */
export const liveChildren = new Set<Child>();

let compiledRoot: string | undefined;

/** From now on, start entries as the JavaScript compiled under `root` (compile.ts) instead of through the TypeScript loader. */
export function runCompiled(root: string | undefined): void {
  compiledRoot = root;
}

/**
 * A bench process (a TypeScript entry, or a built one in JavaScript) whose output is read line by line, in
 * order: `next()` consumes lines up to the first one that matches, so a line
 * printed again later (`COUNT …`) is never answered from an old copy. Stdin is a
 * pipe; the bench peers exit when it closes, so no process outlives the bench.
 */
export class Child {
  readonly process: ChildProcess;
  private readonly lines: string[] = [];
  /** Index (in all lines ever printed) of lines[0]. */
  private base = 0;
  private cursor = 0;
  private wake: (() => void) | undefined;
  private readonly watchers = new Set<(line: string) => void>();
  private exited = false;

  constructor(
    readonly name: string,
    entry: string,
    options: ChildOptions = {},
  ) {
    const script = entry.endsWith('.js')
      ? [entry]
      : compiledRoot === undefined
        ? [...TS_LOADER, entry]
        : [join(compiledRoot, entry.replace(/\.ts$/, '.js'))];
    const node = [process.execPath, ...(options.nodeArgs ?? []), ...script];
    const env = { ...process.env, NO_COLOR: '1', ...options.env };
    const stdio: ['pipe', 'pipe', 'pipe'] = ['pipe', 'pipe', 'pipe'];
    this.process =
      options.fdLimit === undefined
        ? spawn(node[0], node.slice(1), { env, stdio })
        : spawn(
            '/bin/sh',
            ['-c', 'ulimit -n "$0" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', String(options.fdLimit), ...node],
            { env, stdio },
          );
    this.process.stdin!.on('error', () => undefined);
    for (const stream of [this.process.stdout!, this.process.stderr!]) {
      let rest = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        const parts = (rest + chunk).split('\n');
        rest = parts.pop() ?? '';
        for (const line of parts) this.push(line);
      });
    }
    liveChildren.add(this);
    this.process.once('exit', () => {
      liveChildren.delete(this);
      this.exited = true;
      this.wake?.();
    });
  }

  get pid(): number {
    return this.process.pid as number;
  }

  get alive(): boolean {
    return !this.exited;
  }

  /** Resolves with the next line matching `re`; rejects if the process exits or the time runs out. */
  async next(re: RegExp, timeoutMs = 30_000): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.cursor < this.base + this.lines.length) {
        const line = this.lines[this.cursor - this.base];
        this.cursor++;
        const m = re.exec(line);
        if (m) return m;
      }
      if (this.exited)
        throw new Error(`${this.name} exited (${this.process.exitCode ?? this.process.signalCode}) before printing ${re}\n${this.tail()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.name}: no line matching ${re} within ${timeoutMs} ms\n${this.tail()}`);
      await new Promise<void>(resolve => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  /**
   * Resolves with the first line printed from now on that matches `re`,
   * without moving `next()`'s place; any number may wait at once. Call it
   * before asking the process for the line.
   */
  expect(re: RegExp, timeoutMs = 30_000): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.watchers.delete(watch);
        this.process.off('exit', onExit);
      };
      const watch = (line: string) => {
        const m = re.exec(line);
        if (m === null) return;
        done();
        resolve(m);
      };
      const onExit = () => {
        done();
        reject(new Error(`${this.name} exited before printing ${re}\n${this.tail()}`));
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.name}: no line matching ${re} within ${timeoutMs} ms\n${this.tail()}`));
      }, timeoutMs);
      this.watchers.add(watch);
      this.process.once('exit', onExit);
    });
  }

  /** Writes one line to the child's stdin. */
  send(line: string): void {
    if (!this.exited) this.process.stdin!.write(`${line}\n`);
  }

  /** The last lines printed, for error messages. */
  tail(n = 15): string {
    return this.lines
      .slice(-n)
      .map(l => `  [${this.name}] ${l}`)
      .join('\n');
  }

  async stop(): Promise<void> {
    this.process.stdin!.end();
    await stop(this.process);
  }

  private push(line: string): void {
    this.lines.push(line);
    if (this.lines.length > KEPT_LINES) {
      const drop = this.lines.length - KEPT_LINES;
      this.lines.splice(0, drop);
      this.base += drop;
      if (this.cursor < this.base) this.cursor = this.base;
    }
    this.watchers.forEach(w => w(line));
    this.wake?.();
  }
}
