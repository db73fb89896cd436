import { jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import v8 from 'node:v8';
import vm from 'node:vm';

/**
 * Jest hands each test file a sandboxed `process` whose 'uncaughtException'
 * listeners never fire; the real one is the main context's.
 */
const realProcess = (): NodeJS.Process => vm.runInThisContext('process') as NodeJS.Process;

export interface LoggedError {
  /** The logger's context (the class that logged). */
  context: string | undefined;
  message: unknown;
}

export interface ProcessWatch {
  /** Uncaught exceptions and unhandled rejections anywhere in the process. */
  readonly uncaught: unknown[];
  /** Every `Logger#error` call (a relay logs what it caught but could not handle). */
  readonly logged: LoggedError[];
  stop(): void;
}

/** Records uncaught errors and error logs until `stop()`. */
export function watchProcess(): ProcessWatch {
  const proc = realProcess();
  const uncaught: unknown[] = [];
  const logged: LoggedError[] = [];
  const onError = (err: unknown) => uncaught.push(err);
  proc.on('uncaughtException', onError);
  proc.on('unhandledRejection', onError);
  const spy = jest.spyOn(Logger.prototype, 'error').mockImplementation(function (this: Logger, message: unknown) {
    logged.push({ context: (this as unknown as { context?: string }).context, message });
  });
  return {
    uncaught,
    logged,
    stop() {
      proc.off('uncaughtException', onError);
      proc.off('unhandledRejection', onError);
      spy.mockRestore();
    },
  };
}

/** `heapUsed` after a full garbage collection. */
export function heapAfterGc(): number {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}
