/** What a stream's reader drives: the exchange behind it. */
export interface StreamSource {
  /** Grants the relay `credit` more values (flow-controlled streams only). */
  grant(credit: number): void;
  /** The reader left before the end (break, return, throw): the relay is told. */
  stop(): void;
}

interface Reader<T> {
  resolve(result: IteratorResult<T>): void;
  reject(err: unknown): void;
}

/**
 * The values of a streamed call as an async iterator. Values the reader has
 * not taken yet wait here (at most a window of them when the stream is
 * flow-controlled); each time the reader has taken half a window, the relay
 * is granted as many more.
 */
export class ResponseStream<T> implements AsyncIterableIterator<T> {
  private readonly values: T[] = [];
  private readonly readers: Reader<T>[] = [];
  /** Set once the stream is over: `{}` when it completed, `{ err }` when it failed. */
  private end: { err?: unknown } | undefined;
  /** Values taken since the last grant, and how many earn one (0: the stream is not flow-controlled). */
  private taken = 0;
  private batch = 0;

  constructor(private readonly source: StreamSource) {}

  /** The stream is flow-controlled with `window`: credit is granted half a window at a time. */
  flowControl(window: number): void {
    this.batch = Math.max(1, Math.floor(window / 2));
  }

  /** A value from the relay. */
  push(value: T): void {
    if (this.end !== undefined) return;
    const reader = this.readers.shift();
    if (reader === undefined) this.values.push(value);
    else this.hand(reader, value);
  }

  /**
   * The stream is over: completed (no `err`) or failed. Values still waiting
   * are read first, unless `discard` (the reader gave up: an abort, a deadline).
   */
  close(err?: unknown, discard = false): void {
    if (this.end !== undefined) return;
    this.end = err === undefined ? {} : { err };
    if (discard) this.values.length = 0;
    for (const reader of this.readers.splice(0)) this.settle(reader);
  }

  next(): Promise<IteratorResult<T>> {
    return new Promise((resolve, reject) => {
      const reader = { resolve, reject };
      if (this.values.length > 0) this.hand(reader, this.values.shift() as T);
      else if (this.end !== undefined) this.settle(reader);
      else this.readers.push(reader);
    });
  }

  /** The reader left (a `break`, a `return` in the loop): the relay is told to stop the stream. */
  return(): Promise<IteratorResult<T>> {
    this.leave();
    return Promise.resolve({ done: true, value: undefined });
  }

  throw(err?: unknown): Promise<IteratorResult<T>> {
    this.leave();
    // What the reader threw in, as it is.
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
    return Promise.reject(err);
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }

  private leave(): void {
    const running = this.end === undefined;
    this.close(undefined, true);
    if (running) this.source.stop();
  }

  private hand(reader: Reader<T>, value: T): void {
    reader.resolve({ done: false, value });
    if (this.batch === 0 || this.end !== undefined || ++this.taken < this.batch) return;
    this.source.grant(this.taken);
    this.taken = 0;
  }

  private settle(reader: Reader<T>): void {
    const { err } = this.end ?? {};
    if (err === undefined) reader.resolve({ done: true, value: undefined });
    else reader.reject(err);
  }
}
